/**
 * fill: how a miss is filled, once per key per process. The flight checks
 * the caches again, asks the ring who owns the key and fetches it from that
 * peer (mirroring popular values in hot), or — when this process owns it, or
 * the owner cannot answer — runs the loader in this process's one local
 * flight for the key, after a peek at the key's previous owner (a key that
 * just moved may still sit in its old owner's cache).
 */
import { performance } from 'node:perf_hooks'
import { detached, entrySize, type CacheEntry } from '../cache.js'
import { AbortError, ClosedError, CodecError, LoadError, NotFoundError, PeercacheError, isFinalLoadError } from '../errors.js'
import type { Peer, PeerEntry, PeerGetOptions } from '../peer.js'
import type { FlightContext } from '../singleflight.js'
import { quoteKey } from './entries.js'
import { LoadContext } from './loader-context.js'
import type { LoaderContext, LoadResult } from './options.js'
import { markStale } from './stale.js'
import type { GroupState } from './state.js'

/** Fill runs one group's miss flights (see the file comment). */
export class Fill<T> {
  readonly #g: GroupState<T>

  constructor(state: GroupState<T>) {
    this.#g = state
  }

  /**
   * run is one get flight: re-check, then the owner, then the local loader.
   * Not async, and the owner's path is one async function: a remote miss is
   * the common flight, and each async frame it waits in costs allocations
   * that live for the whole round trip.
   */
  run(key: string, ctx: FlightContext, coalesce: boolean): Promise<CacheEntry> {
    const g = this.#g
    // A flight that finished between this caller's cache miss and the start
    // of this flight has already stored the value: check again, so two
    // back-to-back flights do not load the key twice.
    const hit = g.caches.lookup(key, g.ctx.clock)
    if (hit !== undefined && g.fresh(hit)) {
      g.counters.cacheHits++
      // Cached entries leave here as promise results: with bytes of their own (a chunk is reused at the next store: cache.ts).
      return Promise.resolve(detached(hit))
    }
    g.counters.loadsDeduped++
    const peer = g.ctx.picker.pickPeer(key)
    // Holding an expired copy, this flight is a revalidation: it asks the owner for a fresh value (owner.ts serveFresh).
    const filled = peer === null ? this.#loadHere(key, ctx, undefined) : this.#fetchFromOwner(peer, key, ctx, hit === undefined ? coalesceOptions(coalesce) : FRESH)
    // An expired entry kept for the stale windows: the answer if this load fails (stale-if-error).
    if (hit !== undefined) {
      const kept = detached(hit)
      return filled.catch((err: unknown) => this.staleOnError(key, kept, err))
    }
    return filled
  }

  /**
   * loadLocal runs the loader in this process's one local flight for key
   * (a peer's request: never forwarded, see owner.ts).
   */
  loadLocal(key: string, signal?: AbortSignal): Promise<CacheEntry> {
    return this.#g.localFlights.do(key, (ctx) => this.#loadLocally(key, ctx), signal)
  }

  /**
   * stale-if-error: a load of key failed with err; answer `kept` (flagged
   * stale) if it is within the windows, else rethrow. Aborts and shutdowns
   * are never papered over.
   */
  staleOnError(key: string, kept: CacheEntry | undefined, err: unknown): CacheEntry {
    const g = this.#g
    const stale = g.stale
    if (kept === undefined || stale === undefined || err instanceof AbortError || err instanceof ClosedError) throw err
    const now = g.ctx.clock()
    if (stale.fresh(kept, now)) return kept
    if (!stale.usableOnError(kept, now)) throw err
    g.ctx.logger.warn({ group: g.name, err }, 'load failed, answering the stale value (staleIfError)')
    return markStale(kept)
  }

  /**
   * Asks the key's owner. When the owner could not answer (a peer error,
   * counted) or its value arrived expired, loads locally instead. The
   * owner's final answers (not found, loader failed) are thrown.
   * `options` are shared constants (no signal): coalesced or not, or fresh.
   */
  async #fetchFromOwner(peer: Peer, key: string, ctx: FlightContext, options: PeerGetOptions): Promise<CacheEntry> {
    const g = this.#g
    const started = performance.now()
    let answer: PeerEntry
    let entry: CacheEntry
    try {
      const signal = ctx.abandonSignal
      answer = await g.ctx.tracer.fetch(peer, g.name, key, signal === undefined ? options : { ...options, signal })
      entry = g.entries.decoded(answer)
    } catch (err) {
      if (ctx.aborted) throw abortReason(ctx.reason)
      // Without a loader, the owner's not found only says nobody stored the key: a miss, not a load error.
      if (err instanceof NotFoundError && g.load === undefined) throw err
      if (isFinalLoadError(err) || err instanceof CodecError) throw g.loadFailed(key, err as Error)
      g.peerFailed(key, peer.url, err)
      return this.#loadHere(key, ctx, g.ctx.picker.pickPeer(key)?.url)
    }
    g.counters.peerLoads++
    g.recordLoad(key, started, 'peer', peer.url)
    // The owner's stale answer (flagged) is answered, never cached as fresh.
    if (entry.stale === true) return entry
    // Arrived expired: a miss. The owner already answered: it is not worth a peek on the way to the loader.
    if (entry.expiresAt !== 0 && entry.expiresAt <= g.ctx.clock()) return this.#loadHere(key, ctx, g.ctx.picker.pickPeer(key)?.url)
    if (ctx.isCurrent() && this.#admits(key, entry, answer.minuteQps)) g.caches.populate('hot', key, withoutRate(entry))
    else if (g.stale !== undefined && ctx.isCurrent()) this.#refreshHot(key, entry)
    return entry
  }

  /** Runs the loader here, in this process's one flight for the key (`asked`: the owner already asked, not peeked again). */
  async #loadHere(key: string, ctx: FlightContext, asked: string | undefined): Promise<CacheEntry> {
    try {
      return await this.#g.localFlights.do(key, (local) => this.#loadLocally(key, local, asked), ctx.abandonSignal)
    } catch (err) {
      // close() aborts this flight with ClosedError: report that, not the AbortError wrapping it.
      if (ctx.aborted) throw abortReason(ctx.reason)
      throw err
    }
  }

  /** Whether a value fetched from its owner is mirrored in hot (by frequency and the owner's minute_qps, or the coin). */
  #admits(key: string, entry: CacheEntry, minuteQps: number | undefined): boolean {
    const admission = this.#g.admission
    if (admission.coin) return admission.flip()
    return admission.admit(key, entrySize(entry, key), minuteQps, this.#g.ctx.picker.others().length)
  }

  /** A refresh brought a fresh value: replace the expired copy hot keeps for the stale windows, if any. */
  #refreshHot(key: string, entry: CacheEntry): void {
    if (this.#g.caches.hot.entry(key) !== undefined) this.#g.caches.populate('hot', key, withoutRate(entry))
  }

  /** Runs the user's loader once per local flight and keeps the value in main. */
  async #loadLocally(key: string, ctx: FlightContext, asked?: string): Promise<CacheEntry> {
    const g = this.#g
    const hit = g.caches.main.get(key, g.ctx.clock)
    // The flight's result outlives this step: bytes of its own (cache.ts).
    if (hit !== undefined && g.fresh(hit)) return detached(hit)
    this.#recallNotFound(key)
    const peeking = this.#peekPrevious(key, ctx, asked)
    const peeked = peeking === undefined ? undefined : await peeking
    if (peeked !== undefined) return peeked
    // A group without a loader has only what was set: nothing to load, nothing to remember (no notFoundTtl).
    const load = g.load
    if (load === undefined) throw notStored(g.name, key)
    const started = performance.now()
    let entry: CacheEntry
    const context = new LoadContext(ctx, g.ctx.clock)
    try {
      const loaded = await g.ctx.tracer.load<LoaderContext, LoadResult | T>(g.name, key, load, context)
      entry = g.entries.fromLoader(key, loaded, context.ttl)
    } catch (err) {
      g.counters.localLoadErrs++
      if (ctx.aborted) throw abortReason(ctx.reason)
      const error = asLoadError(key, err)
      // Like a value, a not-found learnt by a detached (removed, set) load is stale: not remembered.
      if (error instanceof NotFoundError && ctx.isCurrent()) g.notFound?.remember(key, error, g.ctx.clock())
      throw g.loadFailed(key, error)
    }
    g.counters.localLoads++
    g.recordLoad(key, started, 'local', undefined)
    // A remove or set while this load ran detached the flight: its value is stale.
    if (ctx.isCurrent()) g.caches.populate('main', key, entry)
    return entry
  }

  /**
   * A key that just moved (the ring changed) may still sit in its previous
   * owner's cache: ask that cache (a peek, never a load there) before the
   * origin, so a deploy does not cost an origin storm. Any failure is only a miss.
   */
  #peekPrevious(key: string, ctx: FlightContext, asked: string | undefined): Promise<CacheEntry | undefined> | undefined {
    const g = this.#g
    const previous = g.ctx.picker.previousOwner?.(key)
    if (previous == null || previous.peek === undefined || previous.url === asked) return undefined
    return peekOwner(previous, g.name, key, ctx.abandonSignal, g.ctx.clock).then((peeked) => {
      const entry = peeked === undefined ? undefined : g.entries.decodedOrMiss(peeked)
      if (entry !== undefined && ctx.isCurrent()) g.caches.populate('main', key, entry)
      return entry
    })
  }

  /** Throws the remembered NotFoundError while key is in the not-found memory (`notFoundTtl`): no loader run. */
  #recallNotFound(key: string): void {
    const g = this.#g
    const remembered = g.notFound?.recall(key, g.ctx.clock())
    if (remembered === undefined) return
    g.counters.notFoundHits++
    throw remembered
  }
}

/** peekOwner asks peer's cache for key; resolves undefined on a miss, an expired entry or any failure but the caller's abort. */
async function peekOwner(peer: Peer, group: string, key: string, signal: AbortSignal | undefined, clock: () => number): Promise<CacheEntry | undefined> {
  try {
    const entry = await peer.peek!(group, key, signal === undefined ? {} : { signal })
    if (entry === undefined || (entry.expiresAt !== 0 && entry.expiresAt <= clock())) return undefined
    return entry
  } catch (err) {
    if (signal?.aborted) throw err
    return undefined
  }
}

const COALESCED = { coalesce: true } as const
const NOT_COALESCED = { coalesce: false } as const
/** A revalidation's get: the owner answers a fresh value, never its stale copy (sent alone, not in a batch). */
const FRESH = { coalesce: false, fresh: true } as const

/** coalesceOptions are a peer get's options without a signal: shared, not made per request. */
function coalesceOptions(coalesce: boolean): { coalesce: boolean } {
  return coalesce ? COALESCED : NOT_COALESCED
}

/** withoutRate is the entry hot keeps: the owner's answer without its minute_qps (the shape of main's entries). */
function withoutRate(entry: PeerEntry): CacheEntry {
  return entry.minuteQps === undefined ? entry : { value: entry.value, expiresAt: entry.expiresAt }
}

/** notStored is a loaderless group's answer for a key nobody set: not found, from no origin. */
function notStored(group: string, key: string): NotFoundError {
  return new NotFoundError(`key ${quoteKey(key)} is not stored in group ${group} (it has no loader: values come only from set)`)
}

function asLoadError(key: string, err: unknown): PeercacheError {
  if (err instanceof NotFoundError || err instanceof LoadError || err instanceof CodecError) return err
  const message = err instanceof Error ? err.message : String(err)
  return new LoadError(`load of key ${quoteKey(key)} failed: ${message}`, { cause: err })
}

/** abortReason is what a caller whose wait ended sees: close()'s ClosedError as it is, anything else as an AbortError. */
export function abortReason(reason: unknown): Error {
  if (reason instanceof PeercacheError) return reason
  return new AbortError('load aborted', { cause: reason })
}
