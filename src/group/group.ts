/**
 * group: a Group is a named, byte-bounded cache whose misses fill themselves.
 *
 * A get checks the main cache (keys this process owns), then the hot cache
 * (popular keys other peers own). On a miss it joins the key's single flight
 * (fill.ts): the flight checks the caches again, asks the ring who owns the
 * key, fetches it from that peer over HTTP, or, when this process owns it
 * (or the owner cannot answer), runs the user's loader once and keeps the
 * result in main. So N concurrent gets of a key cost one load in this
 * process, and while the peers agree on the ring and are up, one load in
 * the whole cluster.
 *
 * This file is the user's API and the get path told top-down; the machinery
 * lives beside it: fill.ts (owner fetch, local load, previous-owner peek,
 * hot admission), entries.ts (codec, expiry, owned bytes), owner.ts (what
 * the owner does for peers), writes.ts (set, delete, clear across the
 * cluster), stale.ts and not-found.ts (the windows and the negative cache).
 * A Group holds them in private fields: nothing internal is reachable from it.
 */
import type { CacheEntry, CacheName } from '../cache.js'
import { ClosedError, InvalidArgumentError, NotFoundError } from '../errors.js'
import type { GroupStats } from '../stats.js'
import { checkValue, checkWriteOptions } from '../inputs.js'
import { quoteKey } from './entries.js'
import type { Fill } from './fill.js'
import type { GetOptions, SetOptions, SetValue } from './options.js'
import { markStale, type StalePolicy } from './stale.js'
import type { GroupState } from './state.js'
import type { GroupWrites, WriteReport } from './writes.js'

/**
 * ReadonlyBytes is a Uint8Array the type system will not let you write to:
 * the cache's own bytes, handed out without a copy by `peek`.
 */
export type ReadonlyBytes = Readonly<Omit<Uint8Array, 'set' | 'fill' | 'copyWithin' | 'reverse' | 'sort'>>

/** GroupParts are the machinery a Group is made of (create.ts puts them together). */
export interface GroupParts<T> {
  readonly state: GroupState<T>
  readonly fill: Fill<T>
  readonly writes: GroupWrites
}

/**
 * Group is one named cache; create it with `peercache.group(options)`. T is
 * what `get` resolves to: a Buffer for an untyped group, the codec's type
 * for a typed one.
 */
export class Group<T = Buffer> {
  readonly #g: GroupState<T>
  readonly #fill: Fill<T>
  readonly #writes: GroupWrites

  /** Groups are made by `peercache.group()`, which puts their parts together. */
  constructor(parts: GroupParts<T>) {
    this.#g = parts.state
    this.#fill = parts.fill
    this.#writes = parts.writes
  }

  /** name is the group's name, the same on every peer. */
  get name(): string {
    return this.#g.name
  }

  /**
   * get resolves to the key's value as a Buffer of the caller's own: a copy,
   * so mutating it does not change the cached value (measured in
   * BENCHMARKS.md; `getString`/`getJSON` skip the copy, `peek` is a no-copy
   * read-only view).
   */
  get(key: string, options?: GetOptions): Promise<T> {
    return this.#read(key, options?.signal, this.#g.coalesce, this.#g.entries.output)
  }

  /**
   * getString resolves to the value's bytes decoded as UTF-8, whatever the
   * codec. The text is decoded at the entry's first string read and kept
   * beside it while the entry is cached (it is not counted in cacheBytes: a
   * value read as a string costs up to its size again).
   */
  getString(key: string, options?: GetOptions): Promise<string> {
    return this.#read(key, options?.signal, this.#g.coalesce, this.#g.entries.text)
  }

  /** getJSON resolves to the value parsed as JSON; a value that is not JSON rejects with InvalidArgumentError. */
  async getJSON<R = unknown>(key: string, options?: GetOptions): Promise<R> {
    const text = await this.getString(key, options)
    try {
      return JSON.parse(text) as R
    } catch (err) {
      throw new InvalidArgumentError(`value of key ${quoteKey(key)} in group ${this.name} is not JSON`, { cause: err })
    }
  }

  /**
   * peek returns the cached value, or undefined; it never loads and never
   * waits. It is a read-only view of the cache's own bytes, not a copy (that
   * is what makes it as fast as a raw LRU lookup): the type forbids writes,
   * and writing through a cast would change the cached value for everyone.
   * Use `get` when you need bytes of your own. A peek is not a get: it
   * counts nothing in the group's stats and emits no event.
   *
   * The view is valid until this group next stores a value (a load, a `set`
   * arriving, a hot-cache fill, in this process): a value over 64 bytes lives
   * in a chunk of the group's slab arena, and a store may evict this key and
   * give its chunk to another value, whose bytes the view then shows. Read
   * it (or copy it) before anything else can run — before an `await`.
   */
  peek(key: string): ReadonlyBytes | undefined {
    const g = this.#g
    // Fast path: an entry of main that never expires needs no clock.
    const entry = g.main.entry(key)
    if (entry !== undefined && entry.expiresAt === 0) return entry.value
    // Otherwise check the entry in hand (main is not looked up twice), then hot.
    const clock = g.ctx.clock
    const live = g.main.live(key, entry, clock) ?? g.caches.hot.peek(key, clock)
    // A stale entry (kept for the stale windows) is not peeked: peek never serves past expiry.
    return live !== undefined && g.fresh(live) ? live.value : undefined
  }

  /**
   * getMany resolves to a Map of the keys found (a key the origin does not
   * have is absent). Remote keys are fetched with one batch request per
   * owner; keys in flight are joined, not fetched twice. All or nothing
   * beyond not-found: an invalid key rejects before anything is fetched, and
   * otherwise it waits for every key, then rejects with the failure of the
   * first failing key in the order given (getManySettled keeps the others).
   */
  async getMany(keys: Iterable<string>, options?: GetOptions): Promise<Map<string, T>> {
    const unique = [...new Set(keys)]
    for (const key of unique) this.#g.checkKey(key)
    const found = new Map<string, T>()
    for (const [key, result] of await this.getManySettled(unique, options)) {
      if (result.status === 'fulfilled') found.set(key, result.value)
      else if (!(result.reason instanceof NotFoundError)) throw result.reason
    }
    return found
  }

  /**
   * getManySettled resolves to a Map with one entry per distinct key, in the
   * order given: `{ status: 'fulfilled', value }` or `{ status: 'rejected',
   * reason }` (Promise.allSettled's shape). A failing key (not found, a load
   * error, an invalid key) never fails the others, and it never rejects
   * (an abort of `signal` shows as each unfinished key's AbortError).
   */
  async getManySettled(keys: Iterable<string>, options?: GetOptions): Promise<Map<string, PromiseSettledResult<T>>> {
    const unique = [...new Set(keys)]
    const output = this.#g.entries.output
    const settled = await Promise.allSettled(unique.map((key) => this.#read(key, options?.signal, true, output)))
    return new Map(unique.map((key, i) => [key, settled[i] as PromiseSettledResult<T>]))
  }

  /**
   * set stores value for key at its owner (PUT, mailgun-compatible) and then
   * drops every other peer's copy, so that once it resolves no peer serves
   * the old value. A load of key in flight anywhere it reached will not
   * store its (older) result. Rejects if the owner cannot be reached.
   */
  async set(key: string, value: SetValue<T>, options: SetOptions = {}): Promise<WriteReport> {
    const g = this.#g
    g.assertOpen()
    g.checkKey(key)
    checkWriteOptions(options, g.ctx.clock())
    // A typed group's value is the codec's to check; an untyped group takes only bytes or a string.
    if (g.entries.codec === undefined) checkValue(value)
    return this.#writes.set(key, g.entries.forWrite(value, options), options.signal)
  }

  /**
   * delete drops key at its owner, then at every other peer (DELETE,
   * mailgun-compatible), and reports the peers it could not reach — the name
   * Map, lru-cache and Keyv users know (`remove` is groupcache's alias).
   */
  async delete(key: string, options: GetOptions = {}): Promise<WriteReport> {
    const g = this.#g
    g.assertOpen()
    g.checkKey(key)
    checkWriteOptions(options, g.ctx.clock())
    return this.#writes.remove(key, options.signal)
  }

  /** remove is `delete` under groupcache's (mailgun's) name. */
  remove(key: string, options: GetOptions = {}): Promise<WriteReport> {
    return this.delete(key, options)
  }

  /**
   * clear drops every entry of the group on every peer, main and hot
   * caches (and remembered not-founds), and reports the peers it could not
   * reach. Loads in flight when it arrives do not store their results, as
   * with delete. It travels as a peercache-only request: a Go groupcache peer
   * does not receive it and is reported unreachable.
   */
  async clear(options: GetOptions = {}): Promise<WriteReport> {
    this.#g.assertOpen()
    return this.#writes.clear(options.signal)
  }

  /** stats is a snapshot of groupcache's counters and both caches' stats. */
  stats(): GroupStats {
    return this.#g.stats()
  }

  /**
   * The shared shape of get/getString/getMany: a hit settles at once (no async
   * function frame on the hit path, which costs as much as the lookup), a
   * miss waits for the key's flight. Errors always arrive as rejections.
   */
  #read<R>(key: string, signal: AbortSignal | undefined, coalesce: boolean, convert: (entry: CacheEntry) => R): Promise<R> {
    const tracer = this.#g.ctx.tracer
    if (tracer.tracesGets) return tracer.get(this.#g.name, key, () => this.#readNow(key, signal, coalesce, convert))
    return this.#readNow(key, signal, coalesce, convert)
  }

  #readNow<R>(key: string, signal: AbortSignal | undefined, coalesce: boolean, convert: (entry: CacheEntry) => R): Promise<R> {
    try {
      const hit = this.#hit(key)
      if (hit !== undefined) return Promise.resolve(convert(hit))
      const missed = this.#miss(key, signal, coalesce)
      if (this.#g.stale === undefined) return missed.then(convert)
      return missed.then((entry) => convert(this.#g.countStale(key, entry)))
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * The hit path, synchronous and allocation-free: counts the get and returns
   * the cached entry, or undefined on a miss. Keys are validated in full only
   * on a miss: an invalid key can never have been stored, so it cannot hit.
   */
  #hit(key: string): CacheEntry | undefined {
    const g = this.#g
    if (g.closed) throw new ClosedError(`group ${g.name} is closed`)
    if (typeof key !== 'string') throw new InvalidArgumentError(`key must be a string, got ${typeof key}`)
    g.counters.gets++
    const clock = g.ctx.clock
    let entry = g.main.get(key, clock)
    let cache: CacheName = 'main'
    if (entry === undefined) {
      entry = g.caches.hot.get(key, clock)
      cache = 'hot'
    }
    if (entry === undefined) return undefined
    if (g.stale !== undefined && entry.expiresAt !== 0 && !this.#hitExpired(key, entry, g.stale)) return undefined
    g.counters.cacheHits++
    if (g.ctx.notify.wants('hit')) g.ctx.notify.emit('hit', { group: g.name, key, cache })
    return entry
  }

  /**
   * Decides a hit on an entry that can expire, in a group with stale
   * windows: fresh → served; expired within staleWhileRevalidate → served
   * (counted stale) while one refresh runs behind, through the owner;
   * otherwise a miss, whose flight falls back on this entry if its load fails.
   */
  #hitExpired(key: string, entry: CacheEntry, stale: StalePolicy): boolean {
    const g = this.#g
    const now = g.ctx.clock()
    if (stale.fresh(entry, now)) return true
    if (!stale.revalidating(entry, now)) return false
    g.countStale(key, markStale(entry))
    // One refresh per key: a flight already running is joined, not doubled.
    g.getFlights.do(key, (ctx) => this.#fill.run(key, ctx, g.coalesce)).catch(ignore)
    return true
  }

  /** The miss path: validate, then join (or start) the key's flight. Call after #hit missed. */
  #miss(key: string, signal: AbortSignal | undefined, coalesce: boolean): Promise<CacheEntry> {
    const g = this.#g
    g.checkKey(key)
    g.admission.record(key)
    if (g.ctx.notify.wants('miss')) g.ctx.notify.emit('miss', { group: g.name, key })
    g.counters.loads++
    return g.getFlights.do(key, (ctx) => this.#fill.run(key, ctx, coalesce), signal)
  }
}

function ignore(): void {}
