/**
 * stats: a group's counters, named as groupcache names them so dashboards and
 * habits carry over, plus the load-duration histogram the metrics export.
 */
import type { CacheStats } from './cache.js'

/** GroupCounters are groupcache's Stats: plain numbers a group increments. */
export interface GroupCounters {
  /** Every get, including those served from a cache. */
  gets: number
  /** Gets answered by the main or hot cache (also inside a flight, on the re-check). */
  cacheHits: number
  /** Values fetched successfully from the owning peer. */
  peerLoads: number
  /** Peer requests that failed for transport reasons (then loaded locally). */
  peerErrors: number
  /** Gets that missed the caches and went to a load (before deduplication). */
  loads: number
  /** Loads after deduplication: one per flight that really ran. */
  loadsDeduped: number
  /** Successful runs of this process's loader. */
  localLoads: number
  /** Failed runs of this process's loader. */
  localLoadErrs: number
  /** Requests served to other peers. */
  serverRequests: number
  /**
   * Loads answered "not found" from the group's memory of not-found keys
   * (`notFoundTtl`) instead of the loader: origin loads saved.
   */
  notFoundHits: number
  /** Gets answered with a stale value (`staleWhileRevalidate`, `staleIfError`). */
  staleHits: number
}

/** GroupStats is what `group.stats()` returns: the counters and both caches' stats. */
export interface GroupStats extends GroupCounters {
  main: CacheStats
  hot: CacheStats
}

/** newCounters returns a zeroed set of counters. */
export function newCounters(): GroupCounters {
  return {
    gets: 0,
    cacheHits: 0,
    peerLoads: 0,
    peerErrors: 0,
    loads: 0,
    loadsDeduped: 0,
    localLoads: 0,
    localLoadErrs: 0,
    serverRequests: 0,
    notFoundHits: 0,
    staleHits: 0,
  }
}

/** LOAD_BUCKETS_SECONDS are the load-duration histogram's upper bounds: 1 ms to 10 s. */
export const LOAD_BUCKETS_SECONDS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** Histogram is a cumulative-bucket histogram in Prometheus' shape, for load durations. */
export class Histogram {
  readonly bounds: readonly number[]
  readonly counts: number[]
  count = 0
  sum = 0

  constructor(bounds: readonly number[] = LOAD_BUCKETS_SECONDS) {
    this.bounds = bounds
    this.counts = bounds.map(() => 0)
  }

  /** observe records one value (in seconds). */
  observe(value: number): void {
    this.count++
    this.sum += value
    for (let i = 0; i < this.bounds.length; i++) {
      if (value <= (this.bounds[i] as number)) this.counts[i] = (this.counts[i] as number) + 1
    }
  }
}

/** LoadSource says where a loaded value came from: this process's loader or the key's owner. */
export type LoadSource = 'local' | 'peer'

/**
 * GroupObservations are what a group's metrics need beyond its counters:
 * load durations by source and peer errors by peer.
 */
export class GroupObservations {
  /** Load durations in seconds, by where the value came from. */
  readonly loadDurations: Readonly<Record<LoadSource, Histogram>> = { local: new Histogram(), peer: new Histogram() }
  /**
   * Failed peer requests by peer URL. Bounded by the current peer list:
   * forgetPeersBut drops a peer's count when it leaves the list (a request
   * in flight that fails after may add it back until the next change).
   */
  readonly peerErrors = new Map<string, number>()

  /** loaded records one successful load. */
  loaded(source: LoadSource, seconds: number): void {
    this.loadDurations[source].observe(seconds)
  }

  /** peerFailed counts one failed request to peer. */
  peerFailed(peer: string): void {
    this.peerErrors.set(peer, (this.peerErrors.get(peer) ?? 0) + 1)
  }

  /** forgetPeersBut drops the error counts of every peer not in current (peers that left the list). */
  forgetPeersBut(current: ReadonlySet<string>): void {
    for (const peer of this.peerErrors.keys()) if (!current.has(peer)) this.peerErrors.delete(peer)
  }
}
