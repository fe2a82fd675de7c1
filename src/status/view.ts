/**
 * view: a gathering turned into the rows both renderings show — the HTML
 * page (html.ts) and the CLI's tables (tables.ts) — with every number
 * formatted once, here, so the two always say the same.
 */
import { colorOf, percent } from './ring-svg.js'
import { NO_SELF, type ClusterMemberStatus, type ClusterStatus, type GroupStatus, type MemberState, type PeerStatus, type RingArc } from './types.js'

/** PeerRow is one member of the peer table. */
export interface PeerRow {
  url: string
  color: string
  state: MemberState
  /** The state as words: up, down (unreachable), no status (Go peer?), error. */
  label: string
  /** Down for the drawing: it did not answer, or the gatherer routes around it. */
  down: boolean
  /** Its health as the gathering process sees it: self, up or down. */
  seenFromHere: string
  roundTrip: string
  latency: string
  share: number
  errors: string
  groups: string
  items: string
  bytes: string
  note: string
}

/** GroupRow is one group of one member. */
export interface GroupRow {
  member: string
  group: string
  cells: Record<(typeof GROUP_COLUMNS)[number], string>
}

/** HistoryRow is one group of one member over its recent minutes. */
export interface HistoryRow {
  member: string
  group: string
  periods: Array<{ label: string; ratio: number | null; text: string }>
}

/** ClusterView is everything a rendering shows. */
export interface ClusterView {
  gatheredBy: string
  at: string
  ringKind: string
  arcs: readonly RingArc[]
  peers: PeerRow[]
  groups: GroupRow[]
  history: HistoryRow[]
}

/** GROUP_COLUMNS are the group table's numeric columns, in order. */
export const GROUP_COLUMNS = ['gets', 'hit ratio', 'main hits', 'hot hits', 'hot share', 'loads', 'peer fetches', 'bytes', 'items', 'evictions'] as const

const STATE_LABELS: Readonly<Record<MemberState, string>> = {
  ok: 'up',
  unreachable: 'down (unreachable)',
  'no-status': 'no status (Go peer?)',
  error: 'error',
}

/** clusterView builds the rows of a gathering; the ring and the health "seen from here" are the gatherer's. */
export function clusterView(cluster: ClusterStatus): ClusterView {
  const own = cluster.members.find((m) => m.url === (cluster.gatheredBy ?? NO_SELF))?.status ?? null
  const seen = new Map<string, PeerStatus>((own?.peers ?? []).map((peer) => [peer.url, peer]))
  const peers = cluster.members.map((member, index) => peerRow(member, index, seen.get(member.url)))
  const answered = cluster.members.filter((m) => m.status !== null)
  return {
    gatheredBy: cluster.gatheredBy ?? NO_SELF,
    at: timestamp(cluster.at),
    ringKind: own?.ring.kind ?? '–',
    arcs: own?.ring.arcs ?? [],
    peers,
    groups: answered.flatMap((m) => (m.status as NonNullable<typeof m.status>).groups.map((g) => groupRow(m.url, g))),
    history: answered.flatMap((m) => (m.status as NonNullable<typeof m.status>).groups.map((g) => historyRow(m.url, g))),
  }
}

function peerRow(member: ClusterMemberStatus, index: number, seen: PeerStatus | undefined): PeerRow {
  const groups = member.status?.groups ?? []
  const sum = (pick: (g: GroupStatus) => number): number => groups.reduce((total, g) => total + pick(g), 0)
  const answered = member.status !== null
  return {
    url: member.url,
    color: colorOf(index),
    state: member.state,
    label: STATE_LABELS[member.state],
    down: member.state === 'unreachable' || seen?.health === 'down',
    seenFromHere: seen?.health ?? '–',
    roundTrip: member.roundTripMs === null ? '–' : `${member.roundTripMs.toFixed(1)} ms`,
    latency: seen?.latencyMs == null ? '–' : `${seen.latencyMs.toFixed(1)} ms`,
    share: seen?.ringShare ?? 0,
    errors: seen === undefined ? '–' : String(seen.errors),
    groups: answered ? String(groups.length) : '–',
    items: answered ? String(sum((g) => g.items)) : '–',
    bytes: answered ? formatBytes(sum((g) => g.bytes)) : '–',
    note: member.error ?? '',
  }
}

function groupRow(member: string, g: GroupStatus): GroupRow {
  return {
    member,
    group: g.name,
    cells: {
      gets: String(g.gets),
      'hit ratio': percent(g.hitRatio),
      'main hits': percent(g.main.hitRatio),
      'hot hits': percent(g.hot.hitRatio),
      'hot share': percent(g.hotShare),
      loads: String(g.loads),
      'peer fetches': String(g.peerFetches),
      bytes: formatBytes(g.bytes),
      items: String(g.items),
      evictions: String(g.evictions),
    },
  }
}

function historyRow(member: string, g: GroupStatus): HistoryRow {
  return {
    member,
    group: g.name,
    periods: g.history.map((p) => ({
      label: timestamp(p.start).slice(11, 16) + (p.minutes > 1 ? ` (+${p.minutes - 1} min)` : ''),
      ratio: p.hitRatio,
      text: `${percent(p.hitRatio)} of ${p.gets}`,
    })),
  }
}

/** timestamp formats epoch ms as UTC `YYYY-MM-DD HH:MM:SS`. */
function timestamp(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ')
}

/** formatBytes formats a byte count with a binary unit. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`
}
