/**
 * report: StatusReporter makes this process's status report (`cache.status()`)
 * from what Peercache holds: the ring and peer health from the pool, counters
 * and peer errors from the groups, the recent hit ratios (history.ts), the
 * ring shares (ring-share.ts, kept per ring: a ring is immutable) and the
 * round trips measured by cluster gatherings (latency.ts). Synchronous and
 * cheap, with no network: a peer answers its status path with it.
 */
import type { HashRing, RingKind } from '../ring.js'
import type { CacheStats } from '../cache.js'
import type { GroupObservations, GroupStats } from '../stats.js'
import { StatusHistory } from './history.js'
import { LatencyAverages } from './latency.js'
import { RING_SAMPLES, measureRing, type RingShares } from './ring-share.js'
import { STATUS_VERSION, type CacheStatus, type GroupStatus, type PeerStatus, type PeercacheStatus } from './types.js'

/** StatusGroup is what a report reads of a group. */
export interface StatusGroup {
  readonly name: string
  readonly observations: Readonly<GroupObservations>
  stats(): GroupStats
}

/** StatusPool is what a report reads of the peer pool: the ring, and every other peer's health. */
export interface StatusPool {
  readonly ring: HashRing
  others(): ReadonlyArray<{ readonly url: string; readonly health: { readonly up: boolean } }>
}

/** StatusSources are the report's inputs, read afresh at every report. */
export interface StatusSources {
  self: string | undefined
  /** Epoch ms. */
  clock: () => number
  pool(): StatusPool | undefined
  groups(): Iterable<StatusGroup>
}

/** StatusReporter makes reports and keeps what they need between calls (history, latencies, the last ring's shares). */
export class StatusReporter {
  /** Round trips measured by cluster gatherings, by peer URL. */
  readonly latency = new LatencyAverages()
  readonly #sources: StatusSources
  readonly #history = new StatusHistory()
  #measured: { ring: HashRing; shares: RingShares } | undefined

  constructor(sources: StatusSources) {
    this.#sources = sources
  }

  /** self is this process's URL, or undefined without peers. */
  get self(): string | undefined {
    return this.#sources.self
  }

  /** report makes this process's status report. */
  report(): PeercacheStatus {
    const now = this.#sources.clock()
    const pool = this.#sources.pool()
    const groups = [...this.#sources.groups()]
    const shares = pool === undefined ? undefined : this.#shares(pool.ring)
    return {
      version: STATUS_VERSION,
      self: this.#sources.self ?? null,
      at: now,
      ring: { kind: pool === undefined ? null : (pool.ring.kind as RingKind), samples: shares === undefined ? 0 : RING_SAMPLES, arcs: shares?.arcs ?? [] },
      peers: pool === undefined || shares === undefined ? [] : this.#peers(pool, shares, groups),
      groups: groups.map((group) => this.#group(group, now)),
    }
  }

  #shares(ring: HashRing): RingShares {
    if (this.#measured?.ring !== ring) this.#measured = { ring, shares: measureRing(ring) }
    return this.#measured.shares
  }

  #peers(pool: StatusPool, shares: RingShares, groups: readonly StatusGroup[]): PeerStatus[] {
    const up = new Map(pool.others().map((peer) => [peer.url, peer.health.up]))
    this.latency.keepOnly(up.keys())
    return pool.ring.peers.map((url) => ({
      url,
      health: url === this.#sources.self ? 'self' : up.get(url) === false ? 'down' : 'up',
      latencyMs: this.latency.average(url),
      errors: groups.reduce((sum, group) => sum + (group.observations.peerErrors.get(url) ?? 0), 0),
      ringShare: shares.shares.get(url) ?? 0,
    }))
  }

  #group(group: StatusGroup, now: number): GroupStatus {
    const stats = group.stats()
    const remote = stats.hot.hits + stats.peerLoads + stats.peerErrors
    return {
      name: group.name,
      gets: stats.gets,
      hitRatio: ratio(stats.cacheHits, stats.gets),
      main: cacheStatus(stats.main),
      hot: cacheStatus(stats.hot),
      hotShare: ratio(stats.hot.hits, remote),
      loads: stats.loads,
      localLoads: stats.localLoads,
      peerFetches: stats.peerLoads,
      peerErrors: stats.peerErrors,
      bytes: stats.main.bytes + stats.hot.bytes,
      items: stats.main.items + stats.hot.items,
      evictions: stats.main.evictions + stats.hot.evictions,
      history: this.#history.observe(group.name, now, { gets: stats.gets, hits: stats.cacheHits }),
    }
  }
}

function cacheStatus(stats: CacheStats): CacheStatus {
  return { hitRatio: ratio(stats.hits, stats.gets), gets: stats.gets, hits: stats.hits, bytes: stats.bytes, items: stats.items, evictions: stats.evictions }
}

/** ratio is part / whole, or null when whole is 0 (no ratio yet, rather than a made-up 0 or 1). */
export function ratio(part: number, whole: number): number | null {
  return whole === 0 ? null : part / whole
}
