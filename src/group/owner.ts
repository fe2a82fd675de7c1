/**
 * owner: what a group does for its peers — the owner's side. It answers a
 * peer's get from the caches or by loading locally, and never forwards: a
 * request that reaches us came from a peer, so two processes that disagree
 * about the peer list cannot bounce a key between them (A→B→A) or wait on
 * each other. It answers peeks (cache only, never a load) and applies the
 * writes that travel the cluster (set, remove, clear), detaching the loads
 * in flight so that a load that started before a write cannot store its
 * older value after it.
 *
 * The endpoint (src/endpoint/) reaches a group only through ServedGroup.
 */
import { ENTRY_OVERHEAD_BYTES, detached, type CacheEntry } from '../cache.js'
import { ClosedError } from '../errors.js'
import type { PeerEntry } from '../peer.js'
import type { Fill } from './fill.js'
import { RequestRate } from './rate.js'
import { markStale, type StalePolicy } from './stale.js'
import type { GroupState } from './state.js'
import type { LocalStore } from './writes.js'

/** ServedEntry is a value as the owner answers it: the entry and the key's request rate here (minute_qps, per second). */
export interface ServedEntry extends PeerEntry {
  readonly minuteQps: number
}

/** ServedGroup is everything the peer endpoint may do with a group. */
export interface ServedGroup extends LocalStore {
  readonly name: string
  /** Longest key the group accepts, in UTF-8 bytes. */
  readonly maxKeyBytes: number
  /** serve answers a peer's get: the cached entry at once, or a local load (never forwarded). */
  serve(key: string): ServedEntry | Promise<ServedEntry>
  /** serveCached is serve's synchronous half: the cached answer (counted), or undefined when key must be loaded. */
  serveCached(key: string): ServedEntry | undefined
  /** serveLoad is serve's second half: the local load of a key serveCached did not have. */
  serveLoad(key: string): Promise<ServedEntry>
  /**
   * serveFresh answers a revalidation get (the asker holds an expired copy):
   * like serve, but never the stale copy within staleWhileRevalidate — it
   * waits for the refresh (joining the one running), so the asker does not
   * cache a value one refresh behind. Stale only if that load fails (staleIfError).
   */
  serveFresh(key: string): ServedEntry | Promise<ServedEntry>
  /** fence applies a request's clear generation (writes.ts): a newer one than ours clears this process's group first. */
  fence(generation: number): void
  /** peek answers a previous-owner peek: the cached entry (main or hot) or undefined; never loads, counts nothing. */
  peek(key: string): ServedEntry | undefined
}

/** OwnerSide is a group's ServedGroup (see the file comment). */
export class OwnerSide<T> implements ServedGroup {
  readonly #g: GroupState<T>
  readonly #fill: Fill<T>
  /** Peers' requests per key, for the minute_qps of our answers; made at the first one. */
  #serveRate: RequestRate | undefined

  constructor(state: GroupState<T>, fill: Fill<T>) {
    this.#g = state
    this.#fill = fill
  }

  get name(): string {
    return this.#g.name
  }

  get maxKeyBytes(): number {
    return this.#g.maxKeyBytes
  }

  get generation(): number {
    return this.#g.generation
  }

  serve(key: string): ServedEntry | Promise<ServedEntry> {
    return this.serveCached(key) ?? this.serveLoad(key)
  }

  serveCached(key: string): ServedEntry | undefined {
    return this.#cached(key, true)
  }

  serveFresh(key: string): ServedEntry | Promise<ServedEntry> {
    return this.#cached(key, false) ?? this.serveLoad(key)
  }

  /** The cached answer for a peer (counted), or undefined when key must be loaded; an expired one only if `staleOk`. */
  #cached(key: string, staleOk: boolean): ServedEntry | undefined {
    const g = this.#g
    if (g.closed) return undefined
    g.counters.serverRequests++
    this.#serveRate ??= new RequestRate(Math.ceil(g.caches.capacity / (4 * ENTRY_OVERHEAD_BYTES)), g.ctx.clock)
    const qps = this.#serveRate.record(key)
    const entry = g.caches.lookup(key, g.ctx.clock)
    if (entry === undefined) return undefined
    if (g.stale === undefined || entry.expiresAt === 0) return served(entry, qps)
    const answer = staleOk ? this.#serveExpired(key, entry, g.stale) : g.fresh(entry) ? entry : undefined
    return answer === undefined ? undefined : served(answer, qps)
  }

  /**
   * Loads one key serveCached did not have. No signal on purpose: nobody
   * aborts this wait. A client that hangs up only makes the answer go
   * unread, and the load goes on and lands in the cache either way (as in Go
   * groupcache), so a miss costs no AbortController, listener or
   * DOMException.
   */
  async serveLoad(key: string): Promise<ServedEntry> {
    const g = this.#g
    if (g.closed) throw new ClosedError(`group ${g.name} is closed`)
    const load = this.#fill.loadLocal(key)
    const entry = g.stale === undefined ? await load : await load.catch((err: unknown) => this.#fill.staleOnError(key, keptCopy(g.caches.lookup(key, g.ctx.clock)), err))
    return served(entry, this.#minuteQps(key))
  }

  peek(key: string): ServedEntry | undefined {
    const g = this.#g
    const entry = g.closed ? undefined : g.caches.lookup(key, g.ctx.clock)
    return entry === undefined ? undefined : served(entry, this.#minuteQps(key))
  }

  /** setLocal stores an entry in this process's main cache (a peer's PUT: it names us the owner). */
  setLocal(key: string, entry: CacheEntry): void {
    const stored = this.#g.entries.decoded(entry)
    this.removeLocal(key)
    this.#g.caches.populate('main', key, stored)
  }

  /** removeLocal drops key from this process's caches and detaches its loads in flight. */
  removeLocal(key: string): void {
    const g = this.#g
    g.getFlights.forget(key)
    g.localFlights.forget(key)
    g.caches.remove(key)
    g.notFound?.forget(key)
  }

  /**
   * clearLocal drops every entry of this process's caches (and remembered
   * not-founds) and detaches every load in flight, and adopts `generation`,
   * the clear's, when it is newer than ours (writes.ts).
   */
  clearLocal(generation = 0): void {
    const g = this.#g
    if (generation > g.generation) g.generation = generation
    g.getFlights.forgetAll()
    g.localFlights.forgetAll()
    g.caches.clear()
    g.notFound?.clear()
  }

  /**
   * fence: a request about this group carried the sender's clear
   * generation. Newer than ours, the sender has applied a clear we have not
   * heard of yet: apply it now, before answering, so that nothing loaded
   * before that clear (a load in flight here, a cached value) reaches a
   * process that applied it. Older or equal: nothing to do.
   */
  fence(generation: number): void {
    if (generation > this.#g.generation) this.clearLocal(generation)
  }

  /**
   * A peer asked for an expired entry we keep: within staleWhileRevalidate
   * answer it flagged stale (the asker will not cache it as fresh) and refresh
   * it here, once; past that, undefined: serveLoad loads, stale-if-error.
   */
  #serveExpired(key: string, entry: CacheEntry, stale: StalePolicy): CacheEntry | undefined {
    const now = this.#g.ctx.clock()
    if (stale.fresh(entry, now)) return entry
    if (!stale.revalidating(entry, now)) return undefined
    this.#fill.loadLocal(key).catch(ignore)
    return markStale(entry)
  }

  /** key's rate of requests from peers here (per second, over about the last minute), for the askers' hot admission. */
  #minuteQps(key: string): number {
    return this.#serveRate?.perSecond(key) ?? 0
  }
}

/** served is the owner's answer for entry: its fields and minute_qps, the shape the wire encodes. */
function served(entry: CacheEntry, minuteQps: number): ServedEntry {
  if (entry.stale === true) return { value: entry.value, expiresAt: entry.expiresAt, minuteQps, stale: true }
  return { value: entry.value, expiresAt: entry.expiresAt, minuteQps }
}

function ignore(): void {}

/** keptCopy is a cached entry that must outlive the next store (a promise's result): with bytes of its own (cache.ts). */
function keptCopy(entry: CacheEntry | undefined): CacheEntry | undefined {
  return entry === undefined ? undefined : detached(entry)
}
