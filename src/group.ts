/**
 * group: a Group is a named, byte-bounded cache whose misses fill themselves.
 *
 * A get checks the main cache (keys this process owns), then the hot cache
 * (popular keys other peers own). On a miss it joins the key's single flight:
 * the flight checks the caches again, asks the ring who owns the key, fetches
 * it from that peer over HTTP, or, when this process owns it (or the owner
 * cannot answer), runs the user's loader once and keeps the result in main.
 * So N concurrent gets of a key cost one load in this process, and while the
 * peers agree on the ring and are up, one load in the whole cluster.
 *
 * A peer's request is served by `serve()`, which never forwards: it loads
 * locally even when this process's ring names another owner, so two
 * processes that disagree about the peer list cannot bounce a key between
 * them (A→B→A) or wait on each other.
 *
 * Around that path: a typed group's codec (codecs.ts) turns values into the
 * bytes that are cached and sent, and keeps the decoded value beside them;
 * expired entries may still be answered within the stale windows (stale.ts:
 * at once while one refresh runs, or when the load fails); the loader's
 * not-founds may be remembered (not-found.ts). Writes that travel the
 * cluster (set, remove, clear) are writes.ts's; a group's options and their
 * checks are group-options.ts's.
 */
import { performance } from 'node:perf_hooks'
import { HotAdmission } from './admission.js'
import { CachePair, ENTRY_OVERHEAD_BYTES, detached, entrySize, ownedEntry, type ByteCache, type CacheEntry, type CacheName } from './cache.js'
import {
  AbortError,
  ClosedError,
  CodecError,
  InvalidArgumentError,
  LoadError,
  NotFoundError,
  PeercacheError,
  PeerError,
  isFinalLoadError,
} from './errors.js'
import type { Notifier } from './events.js'
import type { Tracer } from './tracing.js'
import type { Logger } from './logger.js'
import type { Peer, PeerEntry, PeerPicker } from './peer.js'
import { RequestRate } from './rate.js'
import { Singleflight, type FlightContext } from './singleflight.js'
import { GroupObservations, newCounters, type GroupCounters, type GroupStats } from './stats.js'
import { copyOut, toBytes, textDecoder } from './bytes.js'
import { peekOwner } from './peers/previous.js'
import { decodeValue, encodeValue, sharesDecoded, type Codec } from './codecs.js'
import { GroupWrites, type WriteReport } from './writes.js'
import { NotFoundMemory } from './not-found.js'
import { StalePolicy, markStale } from './stale.js'
import { checkValue, checkWriteOptions, describeValue, expiryProblem } from './inputs.js'
import { LoadContext } from './loader-context.js'
import { validateGroupOptions, type GetOptions, type LoaderContext, type GroupOptions, type LoadResult, type Loader, type SetOptions, type SetValue, type TypedGroupOptions, type TypedLoader } from './group-options.js'

/**
 * ReadonlyBytes is a Uint8Array the type system will not let you write to:
 * the cache's own bytes, handed out without a copy by `peek`.
 */
export type ReadonlyBytes = Readonly<Omit<Uint8Array, 'set' | 'fill' | 'copyWithin' | 'reverse' | 'sort'>>

/**
 * GroupContext is what a Group borrows from its Peercache (injected, never global).
 * @internal
 */
export interface GroupContext {
  picker: PeerPicker
  notify: Notifier
  logger: Logger
  /** Epoch milliseconds. */
  clock: () => number
  /** Uniform in [0, 1). */
  random: () => number
  /** The coin's probability, or undefined for frequency-aware admission. */
  hotCacheProbability: number | undefined
  coalesce: boolean
  tracer: Tracer
}

const DEFAULT_MAX_KEY_BYTES = 64 * 1024

/**
 * Group is one named cache; create it with `peercache.group(options)`. T is
 * what `get` resolves to: a Buffer for an untyped group, the codec's type
 * for a typed one.
 */
export class Group<T = Buffer> {
  readonly name: string
  readonly maxKeyBytes: number
  readonly #load: Loader | TypedLoader<T>
  /** The typed group's codec, or undefined (values are bytes). */
  readonly #codec: Codec<T> | undefined
  /** True when decoded values are kept in the entries and shared (every codec but bytes()). */
  readonly #keepDecoded: boolean
  /** What a read hands the caller: a copy of the bytes, or the (kept) decoded value. */
  readonly #output: (entry: CacheEntry) => T
  readonly #ctx: GroupContext
  readonly #caches: CachePair
  /** this.#caches.main, held directly: peek is one lookup deep. */
  readonly #main: ByteCache
  readonly #counters: GroupCounters = newCounters()
  readonly #observations = new GroupObservations()
  /** Flights of gets: re-check, then peer or local. */
  readonly #getFlights = new Singleflight<CacheEntry>()
  /** Flights of local loads, shared by gets and peers' requests: one origin load per key per process. */
  readonly #localFlights = new Singleflight<CacheEntry>()
  readonly #admission: HotAdmission
  /** Peers' requests per key, for the minute_qps of our answers; made at the first one. */
  #serveRate: RequestRate | undefined
  readonly #ttl: number
  readonly #ttlJitter: number
  readonly #coalesce: boolean
  /** set/remove/clear across the cluster (writes.ts). */
  readonly #writes: GroupWrites
  /** Keys the loader said do not exist, while `notFoundTtl` lasts (undefined when off). */
  readonly #notFound: NotFoundMemory | undefined
  /** The stale windows (undefined when both are 0: expired entries are never seen). */
  readonly #stale: StalePolicy | undefined
  #closed = false

  /**
   * create builds a group for its Peercache. Users call `peercache.group()`:
   * the constructor is private and this factory is stripped from the published
   * types, so the context a group borrows is not part of the public API.
   * @internal
   */
  static create<T>(options: GroupOptions | TypedGroupOptions<T>, ctx: GroupContext): Group<T> {
    return new Group<T>(options, ctx)
  }

  /** Use `peercache.group()`. */
  private constructor(options: GroupOptions | TypedGroupOptions<T>, ctx: GroupContext) {
    validateGroupOptions(options, ctx.clock())
    this.name = options.name
    this.#load = options.load
    this.#codec = options.codec
    this.#keepDecoded = options.codec !== undefined && sharesDecoded(options.codec as Codec<unknown>)
    this.#output = this.#outputOf(options.codec)
    this.#ctx = ctx
    this.maxKeyBytes = options.maxKeyBytes ?? DEFAULT_MAX_KEY_BYTES
    this.#ttl = options.ttl ?? 0
    this.#ttlJitter = options.ttlJitter ?? 0
    this.#coalesce = options.coalesce ?? ctx.coalesce
    const stale = new StalePolicy(options.staleWhileRevalidate ?? 0, options.staleIfError ?? 0)
    this.#stale = stale.grace > 0 ? stale : undefined
    this.#caches = new CachePair({
      staleMs: stale.grace,
      cacheBytes: options.cacheBytes,
      hotRatio: options.hotCacheRatio ?? 8,
      onEvict: (cache, key, entry) => this.#emitEvict(cache, key, entry),
    })
    this.#main = this.#caches.main
    this.#admission = new HotAdmission({
      caches: this.#caches,
      capacity: Math.ceil(options.cacheBytes / ENTRY_OVERHEAD_BYTES),
      probability: options.hotCacheProbability ?? ctx.hotCacheProbability,
      random: ctx.random,
      clock: ctx.clock,
    })
    this.#writes = new GroupWrites(this, ctx.picker)
    const notFoundTtl = options.notFoundTtl ?? 0
    this.#notFound = notFoundTtl > 0 && options.cacheBytes > 0 ? new NotFoundMemory(notFoundTtl, Math.floor(options.cacheBytes / 8)) : undefined
  }

  /**
   * get resolves to the key's value as a Buffer of the caller's own: a copy,
   * so mutating it does not change the cached value (measured in
   * BENCHMARKS.md; `getString`/`getJSON` skip the copy, `peek` is a no-copy
   * read-only view).
   */
  get(key: string, options?: GetOptions): Promise<T> {
    return this.#read(key, options?.signal, this.#coalesce, this.#output)
  }

  /** getString resolves to the value's bytes decoded as UTF-8 (no intermediate copy), whatever the codec. */
  getString(key: string, options?: GetOptions): Promise<string> {
    return this.#read(key, options?.signal, this.#coalesce, entryText)
  }

  /**
   * The shared shape of get/getString/getMany: a hit settles at once (no async
   * function frame on the hit path, which costs as much as the lookup), a
   * miss waits for the key's flight. Errors always arrive as rejections.
   */
  #read<R>(key: string, signal: AbortSignal | undefined, coalesce: boolean, convert: (entry: CacheEntry) => R): Promise<R> {
    const tracer = this.#ctx.tracer
    if (tracer.tracesGets) return tracer.get(this.name, key, () => this.#readNow(key, signal, coalesce, convert))
    return this.#readNow(key, signal, coalesce, convert)
  }

  #readNow<R>(key: string, signal: AbortSignal | undefined, coalesce: boolean, convert: (entry: CacheEntry) => R): Promise<R> {
    try {
      const hit = this.#hit(key)
      if (hit !== undefined) return Promise.resolve(convert(hit))
      const missed = this.#miss(key, signal, coalesce)
      if (this.#stale === undefined) return missed.then(convert)
      return missed.then((entry) => convert(this.#countStale(key, entry)))
    } catch (err) {
      return Promise.reject(err)
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
    // Fast path: an entry of main that never expires needs no clock.
    const entry = this.#main.entry(key)
    if (entry !== undefined && entry.expiresAt === 0) return entry.value
    // Otherwise check the entry in hand (main is not looked up twice), then hot.
    const clock = this.#ctx.clock
    const live = this.#main.live(key, entry, clock) ?? this.#caches.hot.peek(key, clock)
    // A stale entry (kept for the stale windows) is not peeked: peek never serves past expiry.
    return live !== undefined && (this.#stale === undefined || this.#stale.fresh(live, clock())) ? live.value : undefined
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
    for (const key of unique) this.checkKey(key)
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
    const settled = await Promise.allSettled(unique.map((key) => this.#read(key, options?.signal, true, this.#output)))
    return new Map(unique.map((key, i) => [key, settled[i] as PromiseSettledResult<T>]))
  }

  /**
   * set stores value for key at its owner (PUT, mailgun-compatible) and then
   * drops every other peer's copy, so that once it resolves no peer serves
   * the old value. A load of key in flight anywhere it reached will not
   * store its (older) result. Rejects if the owner cannot be reached.
   */
  async set(key: string, value: SetValue<T>, options: SetOptions = {}): Promise<WriteReport> {
    this.#assertOpen()
    this.checkKey(key)
    checkWriteOptions(options, this.#ctx.clock())
    // A typed group's value is the codec's to check; an untyped group takes only bytes or a string.
    if (this.#codec === undefined) checkValue(value)
    const bytes = this.#codec === undefined ? ownBytes(value as Uint8Array | string) : encodeValue(this.#codec, value as T)
    // Not decoded here: setLocal decodes when this process is the owner.
    return this.#writes.set(key, { value: bytes, expiresAt: this.#expiryOf(options, this.#ttl) }, options.signal)
  }

  /**
   * remove drops key at its owner, then at every other peer (DELETE,
   * mailgun-compatible), and reports the peers it could not reach.
   */
  async remove(key: string, options: GetOptions = {}): Promise<WriteReport> {
    this.#assertOpen()
    this.checkKey(key)
    checkWriteOptions(options, this.#ctx.clock())
    return this.#writes.remove(key, options.signal)
  }

  /**
   * clear drops every entry of the group on every peer, main and hot
   * caches (and remembered not-founds), and reports the peers it could not
   * reach. Loads in flight when it arrives do not store their results, as
   * with remove. It travels as a peercache-only request: a Go groupcache peer
   * does not receive it and is reported unreachable.
   */
  async clear(options: GetOptions = {}): Promise<WriteReport> {
    this.#assertOpen()
    return this.#writes.clear(options.signal)
  }

  /**
   * setLocal stores an entry in this process's main cache (a peer's PUT: it
   * names us the owner). Loads of key in flight here will not overwrite it.
   * @internal
   */
  setLocal(key: string, entry: CacheEntry): void {
    const stored = this.#decoded(entry)
    this.removeLocal(key)
    this.#caches.populate('main', key, stored)
  }

  /**
   * clearLocal drops every entry of this process's caches (and remembered
   * not-founds) and detaches every load in flight, so that a load that
   * started before the clear cannot store its (stale) value after it.
   * @internal
   */
  clearLocal(): void {
    this.#getFlights.forgetAll()
    this.#localFlights.forgetAll()
    this.#caches.clear()
    this.#notFound?.clear()
  }

  /**
   * removeLocal drops key from this process's caches and detaches its loads
   * in flight, so that a load that started before the removal cannot store
   * its (stale) value after it.
   * @internal
   */
  removeLocal(key: string): void {
    this.#getFlights.forget(key)
    this.#localFlights.forget(key)
    this.#caches.remove(key)
    this.#notFound?.forget(key)
  }

  /** getJSON resolves to the value parsed as JSON; a value that is not JSON rejects with InvalidArgumentError. */
  async getJSON<T = unknown>(key: string, options?: GetOptions): Promise<T> {
    const text = await this.getString(key, options)
    try {
      return JSON.parse(text) as T
    } catch (err) {
      throw new InvalidArgumentError(`value of key ${quoteKey(key)} in group ${this.name} is not JSON`, { cause: err })
    }
  }

  /** stats is a snapshot of groupcache's counters and both caches' stats. */
  stats(): GroupStats {
    return { ...this.#counters, main: this.#caches.main.stats(), hot: this.#caches.hot.stats() }
  }

  /**
   * observations are load durations by source and peer errors by peer, for metrics.
   * @internal
   */
  get observations(): Readonly<GroupObservations> {
    return this.#observations
  }

  /**
   * serve answers a peer's request for key. It never forwards (see the file
   * comment): it answers from the caches or loads locally.
   * @internal
   */
  async serve(key: string, signal?: AbortSignal): Promise<CacheEntry> {
    // A promise's result outlives this step: a cached entry goes out with bytes of its own (cache.ts).
    const cached = this.serveCached(key)
    return cached !== undefined ? detached(cached) : this.serveLoad(key, signal)
  }

  /**
   * serveCached is the first half of `serve`, synchronous: it counts the
   * peer's request and returns the cached entry, or undefined when the key
   * must be loaded (or the group is closed): then call `serveLoad`. A hit
   * served this way needs no signal and no await.
   * @internal
   */
  serveCached(key: string): CacheEntry | undefined {
    if (this.#closed) return undefined
    this.#counters.serverRequests++
    this.#serveRate ??= new RequestRate(Math.ceil(this.#caches.capacity / (4 * ENTRY_OVERHEAD_BYTES)), this.#ctx.clock)
    this.#serveRate.record(key)
    const entry = this.#caches.lookup(key, this.#ctx.clock)
    if (entry === undefined || this.#stale === undefined || entry.expiresAt === 0) return entry
    return this.#serveExpired(key, entry, this.#stale)
  }

  /**
   * peekEntry returns the cached entry (main or hot), or undefined; it never
   * loads and counts nothing. It answers a peer's peek (rolling deploys).
   * @internal
   */
  peekEntry(key: string): CacheEntry | undefined {
    return this.#closed ? undefined : this.#caches.lookup(key, this.#ctx.clock)
  }

  /**
   * A peer asked for an expired entry we keep: within staleWhileRevalidate
   * answer it flagged stale (the asker will not cache it as fresh) and refresh
   * it here, once; past that, undefined: serveLoad loads, stale-if-error.
   */
  #serveExpired(key: string, entry: CacheEntry, stale: StalePolicy): CacheEntry | undefined {
    const now = this.#ctx.clock()
    if (stale.fresh(entry, now)) return entry
    if (!stale.revalidating(entry, now)) return undefined
    this.#localFlights.do(key, (ctx) => this.#loadLocally(key, ctx)).catch(ignore)
    return markStale(entry)
  }

  /**
   * minuteQps is key's rate of requests from peers here (per second, over
   * about the last minute): what our answers carry as `minute_qps`, for the
   * askers' hot cache admission.
   * @internal
   */
  minuteQps(key: string): number {
    return this.#serveRate?.perSecond(key) ?? 0
  }

  /**
   * serveLoad is the second half of `serve`: a local load (never forwarded) of a key serveCached did not have.
   * @internal
   */
  serveLoad(key: string, signal?: AbortSignal): Promise<CacheEntry> {
    if (this.#closed) return Promise.reject(new ClosedError(`group ${this.name} is closed`))
    const load = this.#localFlights.do(key, (ctx) => this.#loadLocally(key, ctx), signal)
    if (this.#stale === undefined) return load
    return load.catch((err: unknown) => {
      const kept = this.#caches.lookup(key, this.#ctx.clock)
      return this.#staleOnError(key, kept === undefined ? undefined : detached(kept), err)
    })
  }

  /**
   * checkKey throws InvalidArgumentError unless key is a string this group accepts.
   * @internal
   */
  checkKey(key: string): void {
    if (typeof key !== 'string') throw new InvalidArgumentError(`key must be a string, got ${typeof key}`)
    // Fast path: a UTF-16 length within the limit / 3 cannot exceed it in UTF-8.
    if (key.length * 3 > this.maxKeyBytes && Buffer.byteLength(key, 'utf8') > this.maxKeyBytes) {
      throw new InvalidArgumentError(`key of ${Buffer.byteLength(key, 'utf8')} bytes exceeds maxKeyBytes ${this.maxKeyBytes}`)
    }
    if (!key.isWellFormed()) throw new InvalidArgumentError('key contains a lone surrogate (not valid UTF-16)')
  }

  /**
   * close stops new gets, waits up to `timeoutMs` for flights in progress, then aborts the rest.
   * @internal
   */
  async close(timeoutMs: number): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await Promise.race([
      Promise.all([this.#getFlights.drain(), this.#localFlights.drain()]),
      delay(timeoutMs),
    ])
    const reason = new ClosedError(`group ${this.name} closed`)
    this.#getFlights.abortAll(reason)
    this.#localFlights.abortAll(reason)
  }

  /**
   * The hit path, synchronous and allocation-free: counts the get and returns
   * the cached entry, or undefined on a miss. Keys are validated in full only
   * on a miss: an invalid key can never have been stored, so it cannot hit.
   */
  #hit(key: string): CacheEntry | undefined {
    if (this.#closed) throw new ClosedError(`group ${this.name} is closed`)
    if (typeof key !== 'string') throw new InvalidArgumentError(`key must be a string, got ${typeof key}`)
    this.#counters.gets++
    const clock = this.#ctx.clock
    let entry = this.#main.get(key, clock)
    let cache: CacheName = 'main'
    if (entry === undefined) {
      entry = this.#caches.hot.get(key, clock)
      cache = 'hot'
    }
    if (entry === undefined) return undefined
    if (this.#stale !== undefined && entry.expiresAt !== 0 && !this.#hitExpired(key, entry, this.#stale)) return undefined
    this.#counters.cacheHits++
    if (this.#ctx.notify.wants('hit')) this.#ctx.notify.emit('hit', { group: this.name, key, cache })
    return entry
  }

  /**
   * Decides a hit on an entry that can expire, in a group with stale
   * windows: fresh → served; expired within staleWhileRevalidate → served
   * (counted stale) while one refresh runs behind, through the owner;
   * otherwise a miss, whose flight falls back on this entry if its load fails.
   */
  #hitExpired(key: string, entry: CacheEntry, stale: StalePolicy): boolean {
    const now = this.#ctx.clock()
    if (stale.fresh(entry, now)) return true
    if (!stale.revalidating(entry, now)) return false
    this.#countStale(key, markStale(entry))
    // One refresh per key: a flight already running is joined, not doubled.
    this.#getFlights.do(key, (ctx) => this.#fill(key, ctx, this.#coalesce)).catch(ignore)
    return true
  }

  /** Counts and announces a get answered with a stale entry; returns the entry. */
  #countStale(key: string, entry: CacheEntry): CacheEntry {
    if (entry.stale !== true) return entry
    this.#counters.staleHits++
    if (this.#ctx.notify.wants('stale')) this.#ctx.notify.emit('stale', { group: this.name, key, expiredAt: entry.expiresAt })
    return entry
  }

  /**
   * stale-if-error: a load of key failed with err; answer `kept` (flagged
   * stale) if it is within the windows, else rethrow. Aborts and shutdowns
   * are never papered over.
   */
  #staleOnError(key: string, kept: CacheEntry | undefined, err: unknown): CacheEntry {
    const stale = this.#stale
    if (kept === undefined || stale === undefined || err instanceof AbortError || err instanceof ClosedError) throw err
    const now = this.#ctx.clock()
    if (stale.fresh(kept, now)) return kept
    if (!stale.usableOnError(kept, now)) throw err
    this.#ctx.logger.warn({ group: this.name, err }, 'load failed, answering the stale value (staleIfError)')
    return markStale(kept)
  }

  /** The miss path: validate, then join (or start) the key's flight. Call after #hit missed. */
  #miss(key: string, signal: AbortSignal | undefined, coalesce: boolean): Promise<CacheEntry> {
    this.checkKey(key)
    this.#admission.record(key)
    if (this.#ctx.notify.wants('miss')) this.#ctx.notify.emit('miss', { group: this.name, key })
    this.#counters.loads++
    return this.#getFlights.do(key, (ctx) => this.#fill(key, ctx, coalesce), signal)
  }


  /**
   * Runs once per flight: re-check, then the owner, then the local loader.
   * Not async, and the owner's path is one async function: a remote miss is
   * the common flight, and each async frame it waits in costs allocations
   * that live for the whole round trip.
   */
  #fill(key: string, ctx: FlightContext, coalesce: boolean): Promise<CacheEntry> {
    // A flight that finished between this caller's cache miss and the start
    // of this flight has already stored the value: check again, so two
    // back-to-back flights do not load the key twice.
    const hit = this.#caches.lookup(key, this.#ctx.clock)
    // Cached entries leave here as promise results or wait out a load: with bytes of their own (cache.ts).
    if (hit !== undefined && (this.#stale === undefined || this.#stale.fresh(hit, this.#ctx.clock()))) {
      this.#counters.cacheHits++
      return Promise.resolve(detached(hit))
    }
    this.#counters.loadsDeduped++
    const peer = this.#ctx.picker.pickPeer(key)
    const filled = peer === null ? this.#loadHere(key, ctx, undefined) : this.#fetchFromOwner(peer, key, ctx, coalesce)
    // An expired entry kept for the stale windows: the answer if this load fails (stale-if-error).
    if (hit !== undefined) {
      const kept = detached(hit)
      return filled.catch((err: unknown) => this.#staleOnError(key, kept, err))
    }
    return filled
  }

  /**
   * Asks the key's owner. When the owner could not answer (a peer error,
   * counted) or its value arrived expired, loads locally instead. The
   * owner's final answers (not found, loader failed) are thrown.
   */
  async #fetchFromOwner(peer: Peer, key: string, ctx: FlightContext, coalesce: boolean): Promise<CacheEntry> {
    const started = performance.now()
    let answer: PeerEntry
    let entry: CacheEntry
    try {
      const signal = ctx.abandonSignal
      answer = await this.#ctx.tracer.fetch(peer, this.name, key, signal === undefined ? coalesceOptions(coalesce) : { signal, coalesce })
      entry = this.#decoded(answer)
    } catch (err) {
      if (ctx.aborted) throw abortReason(ctx.reason)
      if (isFinalLoadError(err) || err instanceof CodecError) throw this.#loadFailed(key, err as Error)
      this.#peerFailed(key, peer.url, err)
      return this.#loadAfterOwner(key, ctx)
    }
    this.#counters.peerLoads++
    this.#recordLoad(key, started, 'peer', peer.url)
    // The owner's stale answer (flagged) is answered, never cached as fresh.
    if (entry.stale === true) return entry
    if (entry.expiresAt !== 0 && entry.expiresAt <= this.#ctx.clock()) return this.#loadAfterOwner(key, ctx) // arrived expired: a miss
    if (ctx.isCurrent() && this.#admits(key, entry, answer.minuteQps)) this.#caches.populate('hot', key, withoutRate(entry))
    else if (this.#stale !== undefined && ctx.isCurrent()) this.#refreshHot(key, entry)
    return entry
  }

  /** The owner just failed: load here; it is not worth a peek at the owner on the way to the loader. */
  #loadAfterOwner(key: string, ctx: FlightContext): Promise<CacheEntry> {
    return this.#loadHere(key, ctx, this.#ctx.picker.pickPeer(key)?.url)
  }

  /** Runs the loader here, in this process's one flight for the key (`asked`: the owner already asked, not peeked again). */
  async #loadHere(key: string, ctx: FlightContext, asked: string | undefined): Promise<CacheEntry> {
    try {
      return await this.#localFlights.do(key, (local) => this.#loadLocally(key, local, asked), ctx.abandonSignal)
    } catch (err) {
      // close() aborts this flight with ClosedError: report that, not the AbortError wrapping it.
      if (ctx.aborted) throw abortReason(ctx.reason)
      throw err
    }
  }

  /** Whether a value fetched from its owner is mirrored in hot (by frequency and the owner's minute_qps, or the coin). */
  #admits(key: string, entry: CacheEntry, minuteQps: number | undefined): boolean {
    if (this.#admission.coin) return this.#admission.flip()
    return this.#admission.admit(key, entrySize(entry, key), minuteQps, this.#ctx.picker.others().length)
  }

  /** A refresh brought a fresh value: replace the expired copy hot keeps for the stale windows, if any. */
  #refreshHot(key: string, entry: CacheEntry): void {
    if (this.#caches.hot.entry(key) !== undefined) this.#caches.populate('hot', key, withoutRate(entry))
  }

  /** Runs the user's loader once per local flight and keeps the value in main. */
  async #loadLocally(key: string, ctx: FlightContext, asked?: string): Promise<CacheEntry> {
    const hit = this.#caches.main.get(key, this.#ctx.clock)
    // The flight's result outlives this step: bytes of its own (cache.ts).
    if (hit !== undefined && (this.#stale === undefined || this.#stale.fresh(hit, this.#ctx.clock()))) return detached(hit)
    this.#recallNotFound(key)
    const peeking = this.#peekPrevious(key, ctx, asked)
    const peeked = peeking === undefined ? undefined : await peeking
    if (peeked !== undefined) return peeked
    const started = performance.now()
    let entry: CacheEntry
    const context = new LoadContext(ctx, this.#ctx.clock)
    try {
      entry = this.#toEntry(key, await this.#ctx.tracer.load<LoaderContext, LoadResult | T>(this.name, key, this.#load, context), context.ttl ?? this.#ttl)
    } catch (err) {
      this.#counters.localLoadErrs++
      if (ctx.aborted) throw abortReason(ctx.reason)
      const error = asLoadError(key, err)
      // Like a value, a not-found learnt by a detached (removed, set) load is stale: not remembered.
      if (error instanceof NotFoundError && ctx.isCurrent()) this.#notFound?.remember(key, error, this.#ctx.clock())
      throw this.#loadFailed(key, error)
    }
    this.#counters.localLoads++
    this.#recordLoad(key, started, 'local', undefined)
    // A remove or set while this load ran detached the flight: its value is stale.
    if (ctx.isCurrent()) this.#caches.populate('main', key, entry)
    return entry
  }

  /**
   * A key that just moved (the ring changed) may still sit in its previous
   * owner's cache: ask that cache (a peek, never a load there) before the
   * origin, so a deploy does not cost an origin storm. See src/peers/previous.ts.
   */
  #peekPrevious(key: string, ctx: FlightContext, asked: string | undefined): Promise<CacheEntry | undefined> | undefined {
    const previous = this.#ctx.picker.previousOwner?.(key)
    if (previous == null || previous.peek === undefined || previous.url === asked) return undefined
    return peekOwner(previous, this.name, key, ctx.abandonSignal, this.#ctx.clock).then((peeked) => {
      const entry = peeked === undefined ? undefined : this.#decodedOrMiss(peeked)
      if (entry !== undefined && ctx.isCurrent()) this.#caches.populate('main', key, entry)
      return entry
    })
  }

  /** A peeked value that does not decode is only a miss: the loader runs. */
  #decodedOrMiss(entry: CacheEntry): CacheEntry | undefined {
    try {
      return this.#decoded(entry)
    } catch {
      return undefined
    }
  }

  /** Throws the remembered NotFoundError while key is in the not-found memory (`notFoundTtl`): no loader run. */
  #recallNotFound(key: string): void {
    const remembered = this.#notFound?.recall(key, this.#ctx.clock())
    if (remembered === undefined) return
    this.#counters.notFoundHits++
    throw remembered
  }

  #toEntry(key: string, loaded: unknown, ttl: number): CacheEntry {
    if (this.#codec !== undefined) return this.#decoded({ value: this.#encodeLoaded(key, loaded as T), expiresAt: this.#expiryFromTtl(ttl) })
    const result = loaded as LoadResult
    if (typeof result === 'string' || result instanceof Uint8Array) {
      return { value: ownBytes(result), expiresAt: this.#expiryFromTtl(ttl) }
    }
    if (result !== null && typeof result === 'object' && 'value' in result) {
      const value = result.value
      const problem = expiryProblem(result, this.#ctx.clock())
      if (problem !== undefined) throw new LoadError(`loader for key ${quoteKey(key)} returned a bad expiry: ${problem}`)
      if (typeof value === 'string' || value instanceof Uint8Array) {
        return { value: ownBytes(value), expiresAt: this.#expiryOf(result, ttl) }
      }
    }
    throw new LoadError(`loader for key ${quoteKey(key)} returned ${describeValue(result)}, not a string or Uint8Array`)
  }

  /** The loader's value through the codec: a value it cannot encode is the loader's failure. */
  #encodeLoaded(key: string, value: T): Uint8Array {
    try {
      return encodeValue(this.#codec as Codec<T>, value)
    } catch (err) {
      throw new LoadError(`loader for key ${quoteKey(key)} returned a value the codec cannot encode: ${(err as Error).message}`, { cause: err })
    }
  }

  /**
   * #decoded returns entry with its decoded value kept beside the bytes
   * (typed groups, except codecs.bytes()): decoded once per value that enters
   * this process, shared by every hit. Other groups' entries are returned as
   * they are. Throws CodecError for bytes the codec cannot decode.
   */
  #decoded(entry: CacheEntry): CacheEntry {
    if (!this.#keepDecoded) return entry
    // Own the bytes before decoding: a codec's decoded value may keep a view of them, and it is cached.
    const { value } = ownedEntry(entry)
    const decoded = decodeValue(this.#codec as Codec<T>, value)
    if (entry.stale === true) return { value, expiresAt: entry.expiresAt, decoded, stale: true }
    return { value, expiresAt: entry.expiresAt, decoded }
  }

  /** The read's output for this group's kind: a Buffer copy, a fresh decode (bytes()), or the kept decoded value. */
  #outputOf(codec: Codec<T> | undefined): (entry: CacheEntry) => T {
    if (codec === undefined) return entryCopy as (entry: CacheEntry) => T
    if (!this.#keepDecoded) return (entry) => decodeValue(codec, entry.value)
    return (entry) => entry.decoded as T
  }

  /** The expiry of a `{ value, ttl?, expiresAt? }` result: its own, else `ttl` (setTtl's, or the group's). */
  #expiryOf(result: { ttl?: number; expiresAt?: number }, ttl: number): number {
    if (result.expiresAt !== undefined) {
      if (!Number.isFinite(result.expiresAt) || result.expiresAt < 0) throw new LoadError('loader returned an invalid expiresAt')
      return Math.floor(result.expiresAt)
    }
    return this.#expiryFromTtl(result.ttl ?? ttl)
  }

  #expiryFromTtl(ttl: number): number {
    if (!Number.isFinite(ttl) || ttl < 0) throw new LoadError('loader returned an invalid ttl')
    if (ttl === 0) return 0
    const jitter = this.#ttlJitter > 0 ? Math.floor(this.#ctx.random() * Math.min(this.#ttlJitter, ttl - 1)) : 0
    return this.#ctx.clock() + ttl - jitter
  }

  #recordLoad(key: string, started: number, source: 'local' | 'peer', peer: string | undefined): void {
    const durationMs = performance.now() - started
    this.#observations.loaded(source, durationMs / 1000)
    if (!this.#ctx.notify.wants('load')) return
    this.#ctx.notify.emit('load', { group: this.name, key, durationMs, source, ...(peer === undefined ? {} : { peer }) })
  }

  #loadFailed(key: string, error: Error): Error {
    if (this.#ctx.notify.wants('load-error')) this.#ctx.notify.emit('load-error', { group: this.name, key, error })
    return error
  }

  #peerFailed(key: string, peer: string, err: unknown): void {
    this.#counters.peerErrors++
    this.#observations.peerFailed(peer)
    const error = err instanceof Error ? err : new PeerError(peer, String(err))
    this.#ctx.logger.warn({ group: this.name, peer, err: error }, 'peer request failed, loading locally')
    if (this.#ctx.notify.wants('peer-error')) this.#ctx.notify.emit('peer-error', { group: this.name, key, peer, error })
  }

  #emitEvict(cache: CacheName, key: string, entry: CacheEntry): void {
    if (!this.#ctx.notify.wants('evict')) return
    this.#ctx.notify.emit('evict', { group: this.name, key, cache, bytes: entry.value.byteLength })
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError(`group ${this.name} is closed`)
  }
}

const COALESCED = { coalesce: true } as const
const NOT_COALESCED = { coalesce: false } as const

/** coalesceOptions are a peer get's options without a signal: shared, not made per request. */
function coalesceOptions(coalesce: boolean): { coalesce: boolean } {
  return coalesce ? COALESCED : NOT_COALESCED
}

/** withoutRate is the entry hot keeps: the owner's answer without its minute_qps (the shape of main's entries). */
function withoutRate(entry: PeerEntry): CacheEntry {
  return entry.minuteQps === undefined ? entry : { value: entry.value, expiresAt: entry.expiresAt }
}

function entryText(entry: CacheEntry): string {
  return textDecoder.decode(entry.value)
}

function entryCopy(entry: CacheEntry): Buffer {
  return copyOut(entry.value)
}

/** Copies the loader's bytes so later changes by the loader cannot reach the cache. */
function ownBytes(value: Uint8Array | string): Uint8Array {
  // new Uint8Array(view) copies into an exact-size buffer; Buffer#slice would be a view of the loader's memory.
  return typeof value === 'string' ? toBytes(value) : new Uint8Array(value)
}

function asLoadError(key: string, err: unknown): PeercacheError {
  if (err instanceof NotFoundError || err instanceof LoadError || err instanceof CodecError) return err
  const message = err instanceof Error ? err.message : String(err)
  return new LoadError(`load of key ${quoteKey(key)} failed: ${message}`, { cause: err })
}

function ignore(): void {}

function abortReason(reason: unknown): Error {
  if (reason instanceof PeercacheError) return reason
  return new AbortError('load aborted', { cause: reason })
}

/** quoteKey shows a key in a message without flooding it (keys can be 64 KiB). */
export function quoteKey(key: string): string {
  return JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}…` : key)
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}
