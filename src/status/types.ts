/**
 * types: the shape of a status report, one process's (`cache.status()`, and
 * what a peer answers on the status path) and the whole cluster's (what
 * `cache.statusHandler()` serves as JSON and `peercache status` prints). It
 * travels between processes of different versions, so fields are only ever
 * added; `version` changes if one must change meaning. No key is ever part
 * of it: only peer URLs, group names and numbers.
 */
import type { RingKind } from '../ring.js'

/** STATUS_VERSION is the version of the status JSON this code writes and reads. */
export const STATUS_VERSION = 1

/**
 * PeerStatus is one peer of the ring as this process sees it. `health` is
 * `self` for this process; `down` while this process routes around the peer.
 */
export interface PeerStatus {
  url: string
  health: 'self' | 'up' | 'down'
  /**
   * Moving average of the round trips this process measured to the peer
   * when it gathered the cluster's status (statusHandler), in ms; null
   * before the first (and for self).
   */
  latencyMs: number | null
  /** Failed peer requests from this process to the peer, summed over groups (peerErrors by peer). */
  errors: number
  /** The fraction of the ring (of a fixed sample of ring positions) the peer owns, 0 to 1. */
  ringShare: number
}

/** RingArc is a stretch of the ring owned by one peer, as fractions of the circle from 0 (position 0) to 1. */
export interface RingArc {
  start: number
  end: number
  peer: string
}

/** CacheStatus is one cache of a group (main or hot). */
export interface CacheStatus {
  /** hits / gets of this cache, or null before its first lookup. */
  hitRatio: number | null
  gets: number
  hits: number
  bytes: number
  items: number
  evictions: number
}

/** HitRatioPeriod is the hit ratio of one period of a group's recent history (a minute, or several without a sample). */
export interface HitRatioPeriod {
  /** Start of the period, epoch ms (a minute boundary). */
  start: number
  /** Length of the period in minutes (1 unless minutes went by without a sample). */
  minutes: number
  gets: number
  hits: number
  /** hits / gets, or null without gets. */
  hitRatio: number | null
}

/** GroupStatus is one group's numbers in this process. */
export interface GroupStatus {
  name: string
  gets: number
  /** Gets answered by the main or hot cache / gets, or null before the first get. */
  hitRatio: number | null
  main: CacheStatus
  hot: CacheStatus
  /**
   * Of the gets of keys another peer owns, the share the hot cache answered:
   * hot hits / (hot hits + peer fetches + peer errors); null before the first.
   */
  hotShare: number | null
  /** Gets that missed the caches (before deduplication). */
  loads: number
  /** Successful runs of this process's loader. */
  localLoads: number
  /** Values fetched from the owning peer. */
  peerFetches: number
  /** Peer requests that failed (then loaded locally). */
  peerErrors: number
  /** Bytes, items and evictions of main and hot together. */
  bytes: number
  items: number
  evictions: number
  /** Hit ratio per recent minute, oldest first, the current minute last (bounded: see StatusHistory). */
  history: HitRatioPeriod[]
}

/** PeercacheStatus is one process's view of the cluster: `cache.status()`. */
export interface PeercacheStatus {
  version: typeof STATUS_VERSION
  /** This process's URL, or null when it runs without peers. */
  self: string | null
  /** When the report was made, epoch ms (the `clock` option). */
  at: number
  ring: {
    /** The ring's kind, or null without peers. */
    kind: RingKind | null
    /** How many ring positions the shares and arcs were measured at. */
    samples: number
    /** The ring drawn: each stretch of the circle and its owner (bounded: at most RING_SEGMENTS). */
    arcs: RingArc[]
  }
  /** Every peer of the ring, self included, sorted by URL. */
  peers: PeerStatus[]
  groups: GroupStatus[]
}

/**
 * MemberState is how the gathering went for one member: `ok` (it answered
 * its status), `unreachable` (no answer in time: down), `no-status` (a bare
 * 404: a peer without the status path, a Go groupcache peer?), `error` (it
 * answered something else: 401 when secrets differ, a bad body).
 */
export type MemberState = 'ok' | 'unreachable' | 'no-status' | 'error'

/** ClusterMemberStatus is one member of the cluster in a gathering. */
export interface ClusterMemberStatus {
  url: string
  state: MemberState
  /** Round trip of this gathering's status request in ms (0 for the gatherer itself); null without an answer. */
  roundTripMs: number | null
  /** What went wrong, for a member not `ok` (no key: the status path names none). */
  error: string | null
  /** The member's own report, when `ok`. */
  status: PeercacheStatus | null
}

/** NO_SELF is the gathering process's `url` among the members when it runs without peers (it has no URL). */
export const NO_SELF = '(this process, without peers)'

/** ClusterStatus is the whole cluster's status as one process gathered it: what statusHandler() serves as JSON. */
export interface ClusterStatus {
  version: typeof STATUS_VERSION
  /** The process that gathered it (its self URL), or null. */
  gatheredBy: string | null
  /** When the gathering ended (the gatherer made its own report), epoch ms. */
  at: number
  /** Every peer of the gatherer's ring, itself included (as NO_SELF when it has no peers), sorted by URL. */
  members: ClusterMemberStatus[]
}
