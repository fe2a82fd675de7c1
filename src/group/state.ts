/**
 * state: what the parts of one group share — its caches, flights, counters
 * and context — and how they report what happened (counters, events, logs).
 * The public Group (group.ts), the miss flight (fill.ts) and the owner's
 * side (owner.ts) each hold the same GroupState; none of them is reachable
 * from the Group object a user holds.
 */
import { performance } from 'node:perf_hooks'
import { HotAdmission } from './admission.js'
import { CachePair, ENTRY_OVERHEAD_BYTES, type ByteCache, type CacheEntry, type CacheName } from '../cache.js'
import { ClosedError, InvalidArgumentError, PeerError } from '../errors.js'
import type { Notifier } from '../events.js'
import type { Tracer } from '../tracing.js'
import type { Logger } from '../logger.js'
import type { PeerPicker } from '../peer.js'
import { Singleflight } from '../singleflight.js'
import { GroupObservations, newCounters, type GroupCounters, type GroupStats } from '../stats.js'
import { NotFoundMemory } from './not-found.js'
import { StalePolicy } from './stale.js'
import { Entries } from './entries.js'
import { GROUP_DEFAULTS } from '../options.js'
import { validateGroupOptions, type GroupOptions, type Loader, type TypedGroupOptions, type TypedLoader } from './options.js'

/** GroupContext is what a group borrows from its Peercache (injected, never global). */
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

/** GroupState is one group's shared machinery (see the file comment). */
export class GroupState<T> {
  readonly name: string
  readonly maxKeyBytes: number
  readonly ctx: GroupContext
  /** The user's loader; undefined in a group whose values come only from `set` (fill.ts answers not found). */
  readonly load: Loader | TypedLoader<T> | undefined
  readonly caches: CachePair
  /** caches.main, held directly: peek is one lookup deep. */
  readonly main: ByteCache
  readonly counters: GroupCounters = newCounters()
  readonly observations = new GroupObservations()
  /** Flights of gets: re-check, then peer or local. */
  readonly getFlights = new Singleflight<CacheEntry>()
  /** Flights of local loads, shared by gets and peers' requests: one origin load per key per process. */
  readonly localFlights = new Singleflight<CacheEntry>()
  readonly admission: HotAdmission
  readonly coalesce: boolean
  /** Keys the loader said do not exist, while `notFoundTtl` lasts (undefined when off). */
  readonly notFound: NotFoundMemory | undefined
  /** The stale windows (undefined when both are 0: expired entries are never seen). */
  readonly stale: StalePolicy | undefined
  /** Loader results and writes → entries, entries → what reads hand out. */
  readonly entries: Entries<T>
  /**
   * The group's clear generation here: the newest clear this process has
   * applied or heard of (0 before any). Every request about the group
   * carries it, and a process that hears of a newer one clears first
   * (the fence of group/writes.ts).
   */
  generation = 0
  closed = false

  constructor(options: GroupOptions | TypedGroupOptions<T>, ctx: GroupContext) {
    validateGroupOptions(options, ctx.clock())
    const d = GROUP_DEFAULTS
    this.name = options.name
    this.ctx = ctx
    this.load = options.load
    this.maxKeyBytes = options.maxKeyBytes ?? d.maxKeyBytes
    this.coalesce = options.coalesce ?? ctx.coalesce
    this.entries = new Entries<T>(options.codec, options.ttl ?? d.ttl, options.ttlJitter ?? d.ttlJitter, ctx)
    const stale = new StalePolicy(options.staleWhileRevalidate ?? d.staleWhileRevalidate, options.staleIfError ?? d.staleIfError)
    this.stale = stale.grace > 0 ? stale : undefined
    this.caches = new CachePair({
      staleMs: stale.grace,
      cacheBytes: options.cacheBytes,
      hotRatio: options.hotCacheRatio ?? d.hotCacheRatio,
      onEvict: (cache, key, entry) => this.#emitEvict(cache, key, entry),
    })
    this.main = this.caches.main
    this.admission = new HotAdmission({
      caches: this.caches,
      capacity: Math.ceil(options.cacheBytes / ENTRY_OVERHEAD_BYTES),
      probability: options.hotCacheProbability ?? ctx.hotCacheProbability,
      random: ctx.random,
      clock: ctx.clock,
    })
    const notFoundTtl = options.notFoundTtl ?? d.notFoundTtl
    this.notFound = notFoundTtl > 0 && options.cacheBytes > 0 ? new NotFoundMemory(notFoundTtl, Math.floor(options.cacheBytes / 8)) : undefined
  }

  /** fresh is true when entry may be answered as it is: not expired (or the group keeps no expired entries). */
  fresh(entry: CacheEntry): boolean {
    return this.stale === undefined || this.stale.fresh(entry, this.ctx.clock())
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

  assertOpen(): void {
    if (this.closed) throw new ClosedError(`group ${this.name} is closed`)
  }

  /** stats is a snapshot of groupcache's counters and both caches' stats. */
  stats(): GroupStats {
    return { ...this.counters, main: this.caches.main.stats(), hot: this.caches.hot.stats() }
  }

  /** Counts and announces a get answered with a stale entry; returns the entry. */
  countStale(key: string, entry: CacheEntry): CacheEntry {
    if (entry.stale !== true) return entry
    this.counters.staleHits++
    if (this.ctx.notify.wants('stale')) this.ctx.notify.emit('stale', { group: this.name, key, expiredAt: entry.expiresAt })
    return entry
  }

  recordLoad(key: string, started: number, source: 'local' | 'peer', peer: string | undefined): void {
    const durationMs = performance.now() - started
    this.observations.loaded(source, durationMs / 1000)
    if (!this.ctx.notify.wants('load')) return
    this.ctx.notify.emit('load', { group: this.name, key, durationMs, source, ...(peer === undefined ? {} : { peer }) })
  }

  loadFailed(key: string, error: Error): Error {
    if (this.ctx.notify.wants('load-error')) this.ctx.notify.emit('load-error', { group: this.name, key, error })
    return error
  }

  peerFailed(key: string, peer: string, err: unknown): void {
    this.counters.peerErrors++
    this.observations.peerFailed(peer)
    const error = err instanceof Error ? err : new PeerError(peer, String(err))
    this.ctx.logger.warn({ group: this.name, peer, err: error }, 'peer request failed, loading locally')
    if (this.ctx.notify.wants('peer-error')) this.ctx.notify.emit('peer-error', { group: this.name, key, peer, error })
  }

  #emitEvict(cache: CacheName, key: string, entry: CacheEntry): void {
    if (!this.ctx.notify.wants('evict')) return
    this.ctx.notify.emit('evict', { group: this.name, key, cache, bytes: entry.value.byteLength })
  }

  /** close stops new gets, waits up to `timeoutMs` for flights in progress, then aborts the rest. */
  async close(timeoutMs: number): Promise<void> {
    if (this.closed) return
    this.closed = true
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs)
    })
    await Promise.race([Promise.all([this.getFlights.drain(), this.localFlights.drain()]), timedOut])
    clearTimeout(timer)
    const reason = new ClosedError(`group ${this.name} closed`)
    this.getFlights.abortAll(reason)
    this.localFlights.abortAll(reason)
  }
}
