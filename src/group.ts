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
 */
import { performance } from 'node:perf_hooks'
import { CachePair, type CacheEntry, type CacheName } from './cache.js'
import {
  AbortError,
  ClosedError,
  InvalidArgumentError,
  LoadError,
  NotFoundError,
  PeercacheError,
  PeerError,
  isFinalLoadError,
} from './errors.js'
import { wants, type PeercacheEmitter } from './events.js'
import type { Logger } from './logger.js'
import type { PeerPicker } from './peer.js'
import { Singleflight, type FlightContext } from './singleflight.js'
import { Histogram, newCounters, type GroupCounters, type GroupStats } from './stats.js'
import { toBytes, textDecoder } from './bytes.js'

/**
 * LoadResult is what a loader returns: the value (bytes or a string, stored
 * as its UTF-8 bytes), or the value with its own expiry.
 */
export type LoadResult =
  | Uint8Array
  | string
  | {
      value: Uint8Array | string
      /** Time to live in milliseconds from now (overrides the group's `ttl`). */
      ttl?: number
      /** Absolute expiry in epoch milliseconds (overrides `ttl`). */
      expiresAt?: number
    }

/**
 * Loader fetches a key's value from the origin. It must be unversioned: the
 * same key must always mean the same value (or one that is fine to serve
 * until it expires), because the result is cached and shared across peers.
 * Throw `NotFoundError` for a key that does not exist; any other throw is a
 * load failure. The signal aborts when nobody waits for this load any more.
 */
export type Loader = (key: string, context: { signal: AbortSignal }) => LoadResult | Promise<LoadResult>

/** GroupOptions configures one group. */
export interface GroupOptions {
  /** The group's name: 1..255 UTF-8 bytes, no `/`. The same on every peer. */
  name: string
  /** Budget for main + hot caches, in bytes. 0 disables caching (gets still deduplicate). */
  cacheBytes: number
  /** Fills a miss on a key this process owns. */
  load: Loader
  /** Longest key accepted, in UTF-8 bytes. @default 65536 */
  maxKeyBytes?: number
  /** Hot is kept to about main / hotCacheRatio when the budget is full. @default 8 */
  hotCacheRatio?: number
  /** Chance that a value fetched from its owner is mirrored into the hot cache. @default the instance's, 0.1 */
  hotCacheProbability?: number
  /** Default time to live of loaded values, in milliseconds; 0 = no expiry. @default 0 */
  ttl?: number
  /** Up to this many milliseconds are taken off each ttl at random, so entries do not expire together. @default 0 */
  ttlJitter?: number
}

/** GetOptions are a caller's options for one get. */
export interface GetOptions {
  /** Ends this caller's wait (rejecting with AbortError); a shared load goes on for others. */
  signal?: AbortSignal
}

/** GroupContext is what a Group borrows from its Peercache (injected, never global). */
export interface GroupContext {
  picker: PeerPicker
  events: PeercacheEmitter
  logger: Logger
  /** Epoch milliseconds. */
  clock: () => number
  /** Uniform in [0, 1). */
  random: () => number
  hotCacheProbability: number
}

const DEFAULT_MAX_KEY_BYTES = 64 * 1024
const MAX_GROUP_NAME_BYTES = 255

/** Group is one named cache; create it with `peercache.group(options)`. */
export class Group {
  readonly name: string
  readonly maxKeyBytes: number
  readonly #load: Loader
  readonly #ctx: GroupContext
  readonly #caches: CachePair
  readonly #counters: GroupCounters = newCounters()
  readonly #loadDurations = new Histogram()
  /** Flights of gets: re-check, then peer or local. */
  readonly #getFlights = new Singleflight<CacheEntry>()
  /** Flights of local loads, shared by gets and peers' requests: one origin load per key per process. */
  readonly #localFlights = new Singleflight<CacheEntry>()
  readonly #hotProbability: number
  readonly #ttl: number
  readonly #ttlJitter: number
  #closed = false

  /** Use `peercache.group()`; the constructor is internal. */
  constructor(options: GroupOptions, ctx: GroupContext) {
    validateGroupOptions(options)
    this.name = options.name
    this.#load = options.load
    this.#ctx = ctx
    this.maxKeyBytes = options.maxKeyBytes ?? DEFAULT_MAX_KEY_BYTES
    this.#hotProbability = options.hotCacheProbability ?? ctx.hotCacheProbability
    this.#ttl = options.ttl ?? 0
    this.#ttlJitter = options.ttlJitter ?? 0
    this.#caches = new CachePair({
      cacheBytes: options.cacheBytes,
      hotRatio: options.hotCacheRatio ?? 8,
      onEvict: (cache, key, entry) => this.#emitEvict(cache, key, entry),
    })
  }

  /**
   * get resolves to the key's value. The bytes are a copy: mutating them does
   * not change the cached value (use `getString`/`getJSON` to skip the copy).
   */
  async get(key: string, options?: GetOptions): Promise<Uint8Array> {
    const entry = await this.#get(key, options?.signal)
    return entry.value.slice()
  }

  /** getString resolves to the value decoded as UTF-8 (no intermediate copy). */
  async getString(key: string, options?: GetOptions): Promise<string> {
    const entry = await this.#get(key, options?.signal)
    return textDecoder.decode(entry.value)
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

  /** loadDurations is the histogram of load durations (seconds), for metrics. */
  get loadDurations(): Readonly<Histogram> {
    return this.#loadDurations
  }

  /**
   * serve answers a peer's request for key. It never forwards (see the file
   * comment): it answers from the caches or loads locally.
   */
  async serve(key: string, signal?: AbortSignal): Promise<CacheEntry> {
    this.#assertOpen()
    this.#counters.serverRequests++
    const hit = this.#caches.lookup(key, this.#ctx.clock())
    if (hit !== undefined) return hit.entry
    return this.#localFlights.do(key, (ctx) => this.#loadLocally(key, ctx), signal)
  }

  /** checkKey throws InvalidArgumentError unless key is a string this group accepts. */
  checkKey(key: string): void {
    if (typeof key !== 'string') throw new InvalidArgumentError(`key must be a string, got ${typeof key}`)
    // Fast path: a UTF-16 length within the limit / 3 cannot exceed it in UTF-8.
    if (key.length * 3 > this.maxKeyBytes && Buffer.byteLength(key, 'utf8') > this.maxKeyBytes) {
      throw new InvalidArgumentError(`key of ${Buffer.byteLength(key, 'utf8')} bytes exceeds maxKeyBytes ${this.maxKeyBytes}`)
    }
    if (!key.isWellFormed()) throw new InvalidArgumentError('key contains a lone surrogate (not valid UTF-16)')
  }

  /** close stops new gets, waits up to `timeoutMs` for flights in progress, then aborts the rest. */
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

  async #get(key: string, signal: AbortSignal | undefined): Promise<CacheEntry> {
    this.#assertOpen()
    this.checkKey(key)
    this.#counters.gets++
    const hit = this.#caches.lookup(key, this.#ctx.clock())
    if (hit !== undefined) {
      this.#counters.cacheHits++
      if (wants(this.#ctx.events, 'hit')) this.#ctx.events.emit('hit', { group: this.name, key, cache: hit.cache })
      return hit.entry
    }
    if (wants(this.#ctx.events, 'miss')) this.#ctx.events.emit('miss', { group: this.name, key })
    this.#counters.loads++
    return this.#getFlights.do(key, (ctx) => this.#fill(key, ctx), signal)
  }

  /** Runs once per flight: re-check, then the owner, then the local loader. */
  async #fill(key: string, ctx: FlightContext): Promise<CacheEntry> {
    // A flight that finished between this caller's cache miss and the start
    // of this flight has already stored the value: check again, so two
    // back-to-back flights do not load the key twice.
    const hit = this.#caches.lookup(key, this.#ctx.clock())
    if (hit !== undefined) {
      this.#counters.cacheHits++
      return hit.entry
    }
    this.#counters.loadsDeduped++
    const fromPeer = await this.#fetchFromOwner(key, ctx)
    if (fromPeer !== undefined) return fromPeer
    return this.#localFlights.do(key, (local) => this.#loadLocally(key, local), ctx.signal)
  }

  /**
   * Asks the key's owner. Returns undefined when this process owns the key or
   * the owner could not answer (a peer error, counted): the caller then loads
   * locally. The owner's final answers (not found, loader failed) are thrown.
   */
  async #fetchFromOwner(key: string, ctx: FlightContext): Promise<CacheEntry | undefined> {
    const peer = this.#ctx.picker.pickPeer(key)
    if (peer === null) return undefined
    const started = performance.now()
    try {
      const entry = await peer.get(this.name, key, { signal: ctx.signal })
      this.#counters.peerLoads++
      this.#recordLoad(key, started, 'peer', peer.url)
      if (entry.expiresAt !== 0 && entry.expiresAt <= this.#ctx.clock()) return undefined // arrived expired: a miss
      if (ctx.isCurrent() && this.#ctx.random() < this.#hotProbability) this.#caches.populate('hot', key, entry)
      return entry
    } catch (err) {
      if (ctx.signal.aborted) throw abortReason(ctx.signal)
      if (isFinalLoadError(err)) throw this.#loadFailed(key, err as Error)
      this.#peerFailed(key, peer.url, err)
      return undefined
    }
  }

  /** Runs the user's loader once per local flight and keeps the value in main. */
  async #loadLocally(key: string, ctx: FlightContext): Promise<CacheEntry> {
    const hit = this.#caches.main.get(key, this.#ctx.clock())
    if (hit !== undefined) return hit
    const started = performance.now()
    let entry: CacheEntry
    try {
      entry = this.#toEntry(key, await this.#load(key, { signal: ctx.signal }))
    } catch (err) {
      this.#counters.localLoadErrs++
      if (ctx.signal.aborted) throw abortReason(ctx.signal)
      throw this.#loadFailed(key, asLoadError(key, err))
    }
    this.#counters.localLoads++
    this.#recordLoad(key, started, 'local', undefined)
    // A remove or set while this load ran detached the flight: its value is stale.
    if (ctx.isCurrent()) this.#caches.populate('main', key, entry)
    return entry
  }

  #toEntry(key: string, result: LoadResult): CacheEntry {
    if (typeof result === 'string' || result instanceof Uint8Array) {
      return { value: ownBytes(result), expiresAt: this.#expiryFromTtl(this.#ttl) }
    }
    if (result !== null && typeof result === 'object' && 'value' in result) {
      const value = result.value
      if (typeof value === 'string' || value instanceof Uint8Array) {
        return { value: ownBytes(value), expiresAt: this.#expiryOf(result) }
      }
    }
    throw new LoadError(`loader for key ${quoteKey(key)} returned ${describe(result)}, not a string or Uint8Array`)
  }

  #expiryOf(result: { ttl?: number; expiresAt?: number }): number {
    if (result.expiresAt !== undefined) {
      if (!Number.isFinite(result.expiresAt) || result.expiresAt < 0) throw new LoadError('loader returned an invalid expiresAt')
      return Math.floor(result.expiresAt)
    }
    return this.#expiryFromTtl(result.ttl ?? this.#ttl)
  }

  #expiryFromTtl(ttl: number): number {
    if (!Number.isFinite(ttl) || ttl < 0) throw new LoadError('loader returned an invalid ttl')
    if (ttl === 0) return 0
    const jitter = this.#ttlJitter > 0 ? Math.floor(this.#ctx.random() * Math.min(this.#ttlJitter, ttl - 1)) : 0
    return this.#ctx.clock() + ttl - jitter
  }

  #recordLoad(key: string, started: number, source: 'local' | 'peer', peer: string | undefined): void {
    const durationMs = performance.now() - started
    this.#loadDurations.observe(durationMs / 1000)
    if (!wants(this.#ctx.events, 'load')) return
    this.#ctx.events.emit('load', { group: this.name, key, durationMs, source, ...(peer === undefined ? {} : { peer }) })
  }

  #loadFailed(key: string, error: Error): Error {
    if (wants(this.#ctx.events, 'load-error')) this.#ctx.events.emit('load-error', { group: this.name, key, error })
    return error
  }

  #peerFailed(key: string, peer: string, err: unknown): void {
    this.#counters.peerErrors++
    const error = err instanceof Error ? err : new PeerError(peer, String(err))
    this.#ctx.logger.warn({ group: this.name, peer, err: error }, 'peer request failed, loading locally')
    if (wants(this.#ctx.events, 'peer-error')) this.#ctx.events.emit('peer-error', { group: this.name, key, peer, error })
  }

  #emitEvict(cache: CacheName, key: string, entry: CacheEntry): void {
    if (!wants(this.#ctx.events, 'evict')) return
    this.#ctx.events.emit('evict', { group: this.name, key, cache, bytes: entry.value.byteLength })
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError(`group ${this.name} is closed`)
  }
}

/** validateGroupName throws InvalidArgumentError unless name is a usable group name. */
export function validateGroupName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError('group name must be a non-empty string')
  if (name.includes('/')) throw new InvalidArgumentError(`group name ${JSON.stringify(name)} must not contain "/"`)
  if (!name.isWellFormed()) throw new InvalidArgumentError('group name contains a lone surrogate')
  if (Buffer.byteLength(name, 'utf8') > MAX_GROUP_NAME_BYTES) {
    throw new InvalidArgumentError(`group name exceeds ${MAX_GROUP_NAME_BYTES} bytes`)
  }
}

function validateGroupOptions(options: GroupOptions): void {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('group options must be an object')
  validateGroupName(options.name)
  if (typeof options.load !== 'function') throw new InvalidArgumentError('group option load must be a function')
  checkInteger('cacheBytes', options.cacheBytes, 0)
  if (options.maxKeyBytes !== undefined) checkInteger('maxKeyBytes', options.maxKeyBytes, 1)
  if (options.hotCacheRatio !== undefined) checkInteger('hotCacheRatio', options.hotCacheRatio, 1)
  if (options.ttl !== undefined) checkInteger('ttl', options.ttl, 0)
  if (options.ttlJitter !== undefined) checkInteger('ttlJitter', options.ttlJitter, 0)
  if (options.hotCacheProbability !== undefined) checkProbability('hotCacheProbability', options.hotCacheProbability)
}

/** checkInteger throws InvalidArgumentError unless value is a safe integer >= min. */
export function checkInteger(name: string, value: unknown, min: number): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got ${String(value)}`)
  }
}

/** checkProbability throws InvalidArgumentError unless value is a number in [0, 1]. */
export function checkProbability(name: string, value: unknown): void {
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
    throw new InvalidArgumentError(`${name} must be a number from 0 to 1, got ${String(value)}`)
  }
}

/** Copies the loader's bytes so later changes by the loader cannot reach the cache. */
function ownBytes(value: Uint8Array | string): Uint8Array {
  return typeof value === 'string' ? toBytes(value) : value.slice()
}

function asLoadError(key: string, err: unknown): PeercacheError {
  if (err instanceof NotFoundError || err instanceof LoadError) return err
  const message = err instanceof Error ? err.message : String(err)
  return new LoadError(`load of key ${quoteKey(key)} failed: ${message}`, { cause: err })
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason
  if (reason instanceof PeercacheError) return reason
  return new AbortError('load aborted', { cause: reason })
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'object') return `an object (${Object.prototype.toString.call(value)})`
  return `a ${typeof value}`
}

/** quoteKey shows a key in a message without flooding it (keys can be 64 KiB). */
export function quoteKey(key: string): string {
  return JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}…` : key)
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}
