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
 */
import { LRUCache } from 'lru-cache'
import { GROUP_DEFAULTS } from './options.js'

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

/** ByteCache is one LRU cache that counts bytes, lookups, hits and evictions. */
export class ByteCache {
  readonly name: CacheName
  readonly #lru: LRUCache<string, CacheEntry>
  #gets = 0
  #hits = 0
  #evictions = 0

  /** Entries are kept (and returned) this many ms past their expiry: a group's stale windows. */
  readonly #grace: number

  /** sizeOf is what an entry counts against maxBytes (`entrySize`; tests inject key + value bytes alone). */
  constructor(name: CacheName, maxBytes: number, onEvict: EvictListener | undefined, grace = 0, sizeOf: SizeOf = entrySize) {
    this.name = name
    this.#grace = grace
    this.#lru = new LRUCache<string, CacheEntry>({
      // lru-cache needs a positive bound; the shared budget is enforced by CachePair.
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: sizeOf,
      dispose: (entry, key, reason) => {
        if (reason !== 'evict') return
        this.#evictions++
        onEvict?.(name, key, entry)
      },
    })
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

  /** add stores an entry (an entry larger than the whole cache is not stored). */
  add(key: string, entry: CacheEntry): void {
    this.#lru.set(key, ownedEntry(entry))
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

  constructor(options: CachePairOptions) {
    this.#cacheBytes = options.cacheBytes
    this.#hotRatio = options.hotRatio ?? GROUP_DEFAULTS.hotCacheRatio
    this.main = new ByteCache('main', options.cacheBytes, options.onEvict, options.staleMs, options.sizeOf)
    this.hot = new ByteCache('hot', options.cacheBytes, options.onEvict, options.staleMs, options.sizeOf)
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

  /** populate stores entry in the named cache, then evicts until the budget holds again. */
  populate(cache: CacheName, key: string, entry: CacheEntry): void {
    if (!this.enabled) return
    this[cache].add(key, entry)
    this.#shrink()
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

/**
 * ENTRY_OVERHEAD_BYTES is what one entry costs on the heap beyond its key and
 * value bytes, counted in its size so that the budget bounds memory whatever
 * the entry sizes (8 MB of 5-byte entries once held 1.68 M entries in 663 MB).
 * Measured on Node 20 x64 (`npm run bench -- memory`, BENCHMARKS.md): the
 * lru-cache Map slot and index arrays with their growth slack (~110 B), the
 * key string's header (~24 B), the CacheEntry object (~40 B), the Uint8Array
 * and its ArrayBuffer objects (~200 B).
 */
export const ENTRY_OVERHEAD_BYTES = 400

/**
 * OFF_HEAP_OVERHEAD_BYTES is what a value larger than V8's on-heap typed
 * array limit (64 bytes) costs beyond its bytes: the malloc'd backing store's
 * bookkeeping (V8 BackingStore, ArrayBufferExtension, allocator headers) and
 * the fragmentation of freed ones. Measured with ENTRY_OVERHEAD_BYTES.
 */
export const OFF_HEAP_OVERHEAD_BYTES = 512

/** Largest typed array V8 keeps on its heap (V8_TYPED_ARRAY_MAX_SIZE_IN_HEAP). */
const ON_HEAP_MAX_BYTES = 64

/**
 * entrySize is what one entry costs against the budget: its key's UTF-8
 * bytes, its value's bytes (twice when a decoded value is kept beside them)
 * and their measured memory overhead.
 */
export function entrySize(entry: CacheEntry, key: string): number {
  const valueBytes = entry.value.byteLength
  const offHeap = valueBytes > ON_HEAP_MAX_BYTES ? OFF_HEAP_OVERHEAD_BYTES : 0
  const decoded = entry.decoded === undefined ? 0 : valueBytes
  return Buffer.byteLength(key, 'utf8') + valueBytes + decoded + ENTRY_OVERHEAD_BYTES + offHeap
}

/**
 * ownedEntry is entry with a value that owns exactly its bytes. Invariant:
 * every cached value does, so the budget counts what it pins and nobody
 * else's buffer changes it. A peer's answer is a view of the response body
 * (codec.ts): it is copied here, when it is kept, not for every get.
 */
export function ownedEntry(entry: CacheEntry): CacheEntry {
  const value = entry.value
  // A value of up to ON_HEAP_MAX_BYTES is copied whatever it is: V8 keeps
  // such an array on its heap, and reading its `buffer` would move it to a
  // malloc'd store of its own (hundreds of bytes per cached value, measured
  // in the memory bench), while a copy of it is cheap and stays on the heap.
  if (value.byteLength > ON_HEAP_MAX_BYTES && value.byteOffset === 0 && value.byteLength === value.buffer.byteLength) return entry
  return { ...entry, value: new Uint8Array(value) }
}
