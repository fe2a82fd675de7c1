/**
 * cache holds a group's two byte-bounded LRU caches, as groupcache does:
 *
 *  - main: keys this process owns (it loaded them);
 *  - hot: popular keys owned by other peers, mirrored here so that a hot key
 *    does not make one owner's network card the bottleneck.
 *
 * Both share one byte budget. Invariant kept by `populate`: main + hot bytes
 * never exceed `cacheBytes`; when both are full, hot is kept to about
 * 1/`hotRatio` of main (groupcache's 1/8), by evicting from whichever is over
 * its share. An entry's size is its key's UTF-8 bytes, its value's bytes and
 * their measured memory overhead (`entrySize`), so the budget bounds memory.
 *
 * Values larger than 64 bytes live in the pair's slab arena (slab.ts): a
 * value evicted frees its chunk for the next value of its size at once, so
 * the process's memory stays at the budget under churn. Invariant relied on
 * by every caller: a cached entry's value is valid until the pair next
 * stores a value (`populate`); an entry that must outlive that — anything
 * handed to a promise — is `detached` first.
 */
import { LRUCache } from 'lru-cache'
import { SlabArena, chunkBytes, type SlabOwner, type SlabPage } from './slab.js'
import { GROUP_DEFAULTS } from './options.js'
import { ON_HEAP_MAX_BYTES, detached, entrySize, ownedEntry } from './entry-size.js'
export { ENTRY_OVERHEAD_BYTES, OFF_HEAP_OVERHEAD_BYTES, detached, entrySize, ownedEntry } from './entry-size.js'

/** CacheEntry is one cached value and when it stops being servable. */
export interface CacheEntry {
  /** The value's bytes. Shared: never hand this array to a caller that may mutate it. */
  readonly value: Uint8Array
  /** Epoch milliseconds after which the entry is never served; 0 = never expires. */
  readonly expiresAt: number
  /**
   * A typed group's value decoded from `value`, kept so a hit does not decode
   * again; shared by every caller. Counted against the budget as the size of
   * its bytes once more (an estimate: a parsed value takes at least about
   * as much memory as its text).
   */
  readonly decoded?: unknown
  /**
   * True on an answer past its expiry, served within a group's
   * staleWhileRevalidate / staleIfError window: never stored as fresh.
   */
  readonly stale?: true
}

/** CacheStats are one cache's counters, groupcache's CacheStats. */
export interface CacheStats {
  bytes: number
  items: number
  gets: number
  hits: number
  evictions: number
}

/** CacheName names the two caches of a group. */
export type CacheName = 'main' | 'hot'

/** SizeOf is what one entry counts against a byte budget (at least 1, as lru-cache requires). */
export type SizeOf = (entry: CacheEntry, key: string) => number

/** EvictListener hears about entries pushed out to make room (not removals, not overwrites). */
export type EvictListener = (cache: CacheName, key: string, entry: CacheEntry) => void

/**
 * StoredEntry is an entry whose value is in the slab arena, as a cache holds
 * it: the owner of the value's chunk, which it gives back when it leaves the
 * cache. Other entries are kept as plain objects (smaller).
 */
class StoredEntry implements CacheEntry, SlabOwner {
  /** The value: a view of a slab chunk once `place`d, else bytes of its own. */
  value: Uint8Array
  readonly expiresAt: number
  readonly decoded: unknown
  declare readonly stale?: true
  readonly key: string
  readonly cache: CacheName
  page: SlabPage | undefined = undefined
  chunk = 0

  constructor(cache: CacheName, key: string, entry: CacheEntry, value: Uint8Array) {
    this.value = value
    this.expiresAt = entry.expiresAt
    this.decoded = entry.decoded
    if (entry.stale === true) this.stale = true
    this.key = key
    this.cache = cache
  }
}

/** ByteCache is one LRU cache that counts bytes, lookups, hits and evictions. */
export class ByteCache {
  readonly name: CacheName
  readonly #lru: LRUCache<string, CacheEntry>
  readonly #arena: SlabArena | undefined
  readonly #onEvict: EvictListener | undefined
  #gets = 0
  #hits = 0
  #evictions = 0

  /** Entries are kept (and returned) this many ms past their expiry: a group's stale windows. */
  readonly #grace: number

  /**
   * sizeOf is what an entry counts against maxBytes (`entrySize`; tests
   * inject key + value bytes alone); arena is where values over 64 bytes go
   * (CachePair's; none: each value keeps bytes of its own).
   */
  constructor(name: CacheName, maxBytes: number, onEvict: EvictListener | undefined, grace = 0, sizeOf: SizeOf = entrySize, arena?: SlabArena) {
    this.name = name
    this.#grace = grace
    this.#arena = arena
    this.#onEvict = onEvict
    this.#lru = new LRUCache<string, CacheEntry>({
      // lru-cache needs a positive bound; the shared budget is enforced by CachePair.
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: sizeOf,
      dispose: (entry, key, reason) => {
        // Whatever took the entry out (eviction, removal, overwrite, clear), its chunk is free from now on.
        if (entry instanceof StoredEntry) arena?.free(entry)
        if (reason === 'evict') this.#evicted(key, entry)
      },
    })
  }

  #evicted(key: string, entry: CacheEntry): void {
    this.#evictions++
    this.#onEvict?.(this.name, key, entry)
  }

  /** bytes is the sum of the sizes of the entries held. */
  get bytes(): number {
    return this.#lru.calculatedSize
  }

  /**
   * get returns the live entry for key, counting the lookup; an expired entry
   * is dropped. The clock is read only for entries that can expire: this is
   * the hit path, and a clock read costs as much as the lookup.
   */
  get(key: string, clock: () => number): CacheEntry | undefined {
    this.#gets++
    const entry = this.peek(key, clock)
    if (entry !== undefined) this.#hits++
    return entry
  }

  /** peek is get without the counting (for `group.peek`): the live entry, an expired one dropped. */
  peek(key: string, clock: () => number): CacheEntry | undefined {
    return this.live(key, this.#lru.get(key), clock)
  }

  /** entry is the raw lookup: the entry as stored, expired or not, counting nothing (a hit path's first step). */
  entry(key: string): CacheEntry | undefined {
    return this.#lru.get(key)
  }

  /** live returns entry (what `entry(key)` gave) unless it expired more than the grace ago; such an entry is dropped. */
  live(key: string, entry: CacheEntry | undefined, clock: () => number): CacheEntry | undefined {
    if (entry === undefined || entry.expiresAt === 0 || entry.expiresAt + this.#grace > clock()) return entry
    this.#lru.delete(key)
    return undefined
  }

  /** items is the number of entries held. */
  get items(): number {
    return this.#lru.size
  }

  /**
   * add stores an entry (an entry larger than the whole cache is not
   * stored). With an arena, it returns the stored entry when its value is
   * still the caller's bytes: `place` it (after making room) to move them
   * into the arena; until then nobody reads them.
   */
  add(key: string, entry: CacheEntry): StoredEntry | undefined {
    const bytes = entry.value.byteLength
    if (this.#arena === undefined || bytes <= ON_HEAP_MAX_BYTES || !this.#arena.holds(bytes)) {
      // Not in the arena: the plain entry, smaller on the heap than a StoredEntry (16-byte values: ~50 B of ~450).
      this.#lru.set(key, ownedEntry(entry))
      return undefined
    }
    const stored = new StoredEntry(this.name, key, entry, entry.value)
    this.#lru.set(key, stored)
    return stored
  }

  /** place copies an added entry's value into the arena (a no-op if the entry left the cache since). */
  place(stored: StoredEntry): void {
    if (this.#arena !== undefined && this.#lru.peek(stored.key) === stored) stored.value = this.#arena.store(stored.value, stored)
  }

  /** evict drops owner's entry as an eviction (the arena takes its chunk's page for another size). */
  evict(owner: StoredEntry): void {
    if (this.#lru.peek(owner.key) !== owner) return
    this.#lru.delete(owner.key)
    this.#evicted(owner.key, owner)
  }

  /** remove drops key; true when it was there. */
  remove(key: string): boolean {
    return this.#lru.delete(key)
  }

  /** oldestKey is the key of the least recently used entry (the next to be evicted), undefined when empty. */
  oldestKey(): string | undefined {
    return this.#lru.rkeys().next().value ?? undefined
  }

  /** removeOldest evicts the least recently used entry (counted as an eviction). */
  removeOldest(): void {
    this.#lru.pop()
  }

  /** clear drops every entry without counting evictions. */
  clear(): void {
    this.#lru.clear()
  }

  /** stats is a snapshot of this cache's counters. */
  stats(): CacheStats {
    return { bytes: this.bytes, items: this.items, gets: this.#gets, hits: this.#hits, evictions: this.#evictions }
  }
}

/** CachePairOptions configures the main/hot pair of a group. */
export interface CachePairOptions {
  /** The budget for main + hot, in bytes; 0 disables caching. */
  cacheBytes: number
  /** Hot is kept to about main / hotRatio. @default 8 */
  hotRatio?: number
  onEvict?: EvictListener
  /** How long past its expiry an entry is kept (and still returned, for the group to serve stale), in ms. @default 0 */
  staleMs?: number
  /** What an entry counts against the budget. @default entrySize (bytes + measured overhead) */
  sizeOf?: SizeOf
}

/** CachePair is a group's main and hot caches under one byte budget. */
export class CachePair {
  readonly main: ByteCache
  readonly hot: ByteCache
  readonly #cacheBytes: number
  readonly #hotRatio: number
  /** The values of both caches over 64 bytes (pages up to the budget); none when caching is off. */
  readonly #arena: SlabArena | undefined

  constructor(options: CachePairOptions) {
    this.#cacheBytes = options.cacheBytes
    this.#hotRatio = options.hotRatio ?? GROUP_DEFAULTS.hotCacheRatio
    const arena = options.cacheBytes > 0 ? new SlabArena(options.cacheBytes, (owner) => this.#evictOwner(owner as StoredEntry)) : undefined
    this.#arena = arena
    this.main = new ByteCache('main', options.cacheBytes, options.onEvict, options.staleMs, options.sizeOf, arena)
    this.hot = new ByteCache('hot', options.cacheBytes, options.onEvict, options.staleMs, options.sizeOf, arena)
  }

  /** slabPages is how many pages the arena holds (each `slabPageBytes`), for the memory bench and tests. */
  get slabPages(): number {
    return this.#arena?.pages ?? 0
  }

  /** slabPageBytes is the arena's page size (0 when caching is off). */
  get slabPageBytes(): number {
    return this.#arena?.pageBytes ?? 0
  }

  #evictOwner(owner: StoredEntry): void {
    this[owner.cache].evict(owner)
  }

  /** capacity is the budget, cacheBytes. */
  get capacity(): number {
    return this.#cacheBytes
  }

  /** enabled is false when cacheBytes is 0: nothing is ever stored. */
  get enabled(): boolean {
    return this.#cacheBytes > 0
  }

  /** lookup checks main, then hot (allocation-free: use main.get/hot.get to know which answered). */
  lookup(key: string, clock: () => number): CacheEntry | undefined {
    return this.main.get(key, clock) ?? this.hot.get(key, clock)
  }

  /**
   * populate stores entry in the named cache, evicts until the budget holds
   * again, then copies the value into the arena: the chunks the evictions
   * freed are the first it reuses. Any cached entry's value may now show
   * other bytes (see the file comment).
   */
  populate(cache: CacheName, key: string, entry: CacheEntry): void {
    if (!this.enabled) return
    const stored = this[cache].add(key, entry)
    this.#shrink()
    if (stored !== undefined) this[cache].place(stored)
  }

  /**
   * hotVictim tells what storing an entry of `size` budget bytes in hot would
   * push out of hot (see #shrink): null when nothing (the budget has room, or
   * hot stays within its share of main, whose oldest entries then go), else
   * the key of hot's oldest entry — undefined when hot is empty, that is when
   * the entry alone is over hot's share and would be evicted itself.
   */
  hotVictim(size: number): string | null | undefined {
    const mainBytes = this.main.bytes
    const hotBytes = this.hot.bytes
    if (mainBytes + hotBytes + size <= this.#cacheBytes) return null
    if (hotBytes + size <= mainBytes / this.#hotRatio) return null
    return this.hot.oldestKey()
  }

  /** remove drops key from both caches; true when either held it. */
  remove(key: string): boolean {
    const fromMain = this.main.remove(key)
    const fromHot = this.hot.remove(key)
    return fromMain || fromHot
  }

  /** clear drops every entry of both caches (a group's clear; not counted as evictions). */
  clear(): void {
    this.main.clear()
    this.hot.clear()
  }

  /** removeHot drops key from the hot cache only (another peer owns it). */
  removeHot(key: string): boolean {
    return this.hot.remove(key)
  }

  /**
   * Evicts until main + hot fit the budget (groupcache's populateCache loop).
   * Terminates: each round removes one entry from a cache that holds bytes
   * (hot when hot > main/ratio > 0 or main empty; else main, which then holds
   * more than the remaining budget), and the rounds are capped by the count.
   */
  #shrink(): void {
    let rounds = this.main.items + this.hot.items
    while (rounds-- > 0) {
      const mainBytes = this.main.bytes
      const hotBytes = this.hot.bytes
      if (mainBytes + hotBytes <= this.#cacheBytes) return
      const victim = hotBytes > mainBytes / this.#hotRatio ? this.hot : this.main
      victim.removeOldest()
    }
  }
}
