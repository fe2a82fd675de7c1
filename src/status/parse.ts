/**
 * parse: reads a status report (a peer's answer) or a cluster status (what
 * the CLI fetches) back from JSON, checking every field's type and copying
 * only the known ones, so what the page renders and the CLI prints is
 * exactly the documented shape, whatever the other side sent. A bad field
 * throws StatusFormatError naming it.
 */
import { PeercacheError } from '../errors.js'
import { RING_KINDS, type RingKind } from '../placement.js'
import { RING_SEGMENTS } from './ring-share.js'
import { HISTORY_MINUTES } from './history.js'
import { STATUS_VERSION } from './types.js'
import type { CacheStatus, ClusterMemberStatus, ClusterStatus, GroupStatus, HitRatioPeriod, MemberState, PeerStatus, PeercacheStatus, RingArc } from './types.js'

/** StatusFormatError reports a status JSON that is not the documented shape (a peer of another version, a wrong URL). */
export class StatusFormatError extends PeercacheError {
  override readonly code: string = 'ERR_PEERCACHE_STATUS_FORMAT'
  override name = 'StatusFormatError'
}

/** Bounds on lists in a report (peers, groups): a report past them is refused, not rendered. */
const MAX_LIST = 10_000

type Obj = Record<string, unknown>

/** parseStatus reads one process's report. */
export function parseStatus(value: unknown, where = 'status'): PeercacheStatus {
  const o = object(value, where)
  if (o.version !== STATUS_VERSION) throw new StatusFormatError(`${where}.version must be ${STATUS_VERSION}, got ${JSON.stringify(o.version)}`)
  const ring = object(o.ring, `${where}.ring`)
  return {
    version: STATUS_VERSION,
    self: nullable(o.self, `${where}.self`, str),
    at: num(o.at, `${where}.at`),
    ring: {
      kind: nullable(ring.kind, `${where}.ring.kind`, ringKind),
      samples: num(ring.samples, `${where}.ring.samples`),
      arcs: list(ring.arcs, `${where}.ring.arcs`, arc, RING_SEGMENTS),
    },
    peers: list(o.peers, `${where}.peers`, peer),
    groups: list(o.groups, `${where}.groups`, group),
  }
}

/** parseClusterStatus reads a gathering (statusHandler's JSON). */
export function parseClusterStatus(value: unknown): ClusterStatus {
  const o = object(value, 'cluster')
  if (o.version !== STATUS_VERSION) throw new StatusFormatError(`cluster.version must be ${STATUS_VERSION}, got ${JSON.stringify(o.version)}`)
  return {
    version: STATUS_VERSION,
    gatheredBy: nullable(o.gatheredBy, 'cluster.gatheredBy', str),
    at: num(o.at, 'cluster.at'),
    members: list(o.members, 'cluster.members', member),
  }
}

const MEMBER_STATES: readonly MemberState[] = ['ok', 'unreachable', 'no-status', 'error']

function member(value: unknown, where: string): ClusterMemberStatus {
  const o = object(value, where)
  const state = str(o.state, `${where}.state`)
  if (!MEMBER_STATES.includes(state as MemberState)) throw new StatusFormatError(`${where}.state is not one of ${MEMBER_STATES.join(', ')}`)
  return {
    url: str(o.url, `${where}.url`),
    state: state as MemberState,
    roundTripMs: nullable(o.roundTripMs, `${where}.roundTripMs`, num),
    error: nullable(o.error, `${where}.error`, str),
    status: nullable(o.status, `${where}.status`, parseStatus),
  }
}

function peer(value: unknown, where: string): PeerStatus {
  const o = object(value, where)
  const health = str(o.health, `${where}.health`)
  if (health !== 'self' && health !== 'up' && health !== 'down') throw new StatusFormatError(`${where}.health must be self, up or down`)
  return {
    url: str(o.url, `${where}.url`),
    health,
    latencyMs: nullable(o.latencyMs, `${where}.latencyMs`, num),
    errors: num(o.errors, `${where}.errors`),
    ringShare: fraction(o.ringShare, `${where}.ringShare`),
  }
}

function arc(value: unknown, where: string): RingArc {
  const o = object(value, where)
  return { start: fraction(o.start, `${where}.start`), end: fraction(o.end, `${where}.end`), peer: str(o.peer, `${where}.peer`) }
}

function group(value: unknown, where: string): GroupStatus {
  const o = object(value, where)
  const count = (name: string): number => num(o[name], `${where}.${name}`)
  return {
    name: str(o.name, `${where}.name`),
    gets: count('gets'),
    hitRatio: nullable(o.hitRatio, `${where}.hitRatio`, fraction),
    main: cache(o.main, `${where}.main`),
    hot: cache(o.hot, `${where}.hot`),
    hotShare: nullable(o.hotShare, `${where}.hotShare`, fraction),
    loads: count('loads'),
    localLoads: count('localLoads'),
    peerFetches: count('peerFetches'),
    peerErrors: count('peerErrors'),
    bytes: count('bytes'),
    items: count('items'),
    evictions: count('evictions'),
    history: list(o.history, `${where}.history`, period, HISTORY_MINUTES),
  }
}

function cache(value: unknown, where: string): CacheStatus {
  const o = object(value, where)
  const count = (name: string): number => num(o[name], `${where}.${name}`)
  return {
    hitRatio: nullable(o.hitRatio, `${where}.hitRatio`, fraction),
    gets: count('gets'),
    hits: count('hits'),
    bytes: count('bytes'),
    items: count('items'),
    evictions: count('evictions'),
  }
}

function period(value: unknown, where: string): HitRatioPeriod {
  const o = object(value, where)
  return {
    start: num(o.start, `${where}.start`),
    minutes: num(o.minutes, `${where}.minutes`),
    gets: num(o.gets, `${where}.gets`),
    hits: num(o.hits, `${where}.hits`),
    hitRatio: nullable(o.hitRatio, `${where}.hitRatio`, fraction),
  }
}

function object(value: unknown, where: string): Obj {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new StatusFormatError(`${where} must be an object`)
  return value as Obj
}

function list<T>(value: unknown, where: string, item: (value: unknown, where: string) => T, max = MAX_LIST): T[] {
  if (!Array.isArray(value)) throw new StatusFormatError(`${where} must be an array`)
  if (value.length > max) throw new StatusFormatError(`${where} has ${value.length} entries, more than ${max}`)
  return value.map((entry, i) => item(entry, `${where}[${i}]`))
}

function nullable<T>(value: unknown, where: string, read: (value: unknown, where: string) => T): T | null {
  return value === null ? null : read(value, where)
}

function str(value: unknown, where: string): string {
  if (typeof value !== 'string' || value.length > 2048) throw new StatusFormatError(`${where} must be a string of at most 2048 characters`)
  return value
}

function num(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new StatusFormatError(`${where} must be a finite number ≥ 0`)
  return value
}

function fraction(value: unknown, where: string): number {
  const n = num(value, where)
  if (n > 1) throw new StatusFormatError(`${where} must be between 0 and 1`)
  return n
}

function ringKind(value: unknown, where: string): RingKind {
  if (!RING_KINDS.includes(value as RingKind)) throw new StatusFormatError(`${where} must be one of ${RING_KINDS.join(', ')}`)
  return value as RingKind
}
