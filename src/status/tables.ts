/**
 * tables: a gathering as plain-text tables, what `npx peercache status <url>`
 * prints: the same rows as the page (view.ts), columns padded to their
 * widest cell. Control characters in texts from a report are replaced, so a
 * peer's answer cannot move a terminal's cursor or change its colours.
 */
import { GROUP_COLUMNS, clusterView } from './view.js'
import type { ClusterStatus } from './types.js'

/** renderTables renders a gathering as text: a header line, then the peer, group and history tables. */
export function renderTables(cluster: ClusterStatus): string {
  const view = clusterView(cluster)
  const peers = view.peers.map((p) => [p.url, p.label, p.seenFromHere, p.roundTrip, p.latency, `${(p.share * 100).toFixed(1)}%`, p.errors, p.groups, p.items, p.bytes, p.note])
  const groups = view.groups.map((g) => [g.member, g.group, ...GROUP_COLUMNS.map((c) => g.cells[c])])
  const history = view.history.map((h) => [h.member, h.group, h.periods.map((p) => `${p.label} ${p.text}`).join(', ')])
  return [
    `peercache cluster, gathered by ${clean(view.gatheredBy)} at ${view.at} UTC, ring: ${clean(view.ringKind)}`,
    '',
    'PEERS',
    table(['peer', 'state', 'seen from here', 'round trip', 'latency', 'ring share', 'errors', 'groups', 'items', 'bytes', 'note'], peers),
    '',
    'GROUPS',
    groups.length === 0 ? '(no group answered)' : table(['peer', 'group', ...GROUP_COLUMNS], groups),
    '',
    'HIT RATIO PER MINUTE (UTC start)',
    history.length === 0 ? '(no history yet)' : table(['peer', 'group', 'minutes'], history),
    '',
  ].join('\n')
}

/** table pads every column to its widest cell, two spaces apart. */
function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const all = [headers, ...rows].map((row) => row.map(clean))
  const widths = headers.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)))
  return all.map((row) => row.map((cell, i) => cell.padEnd(widths[i] as number)).join('  ').trimEnd()).join('\n')
}

/** clean replaces control characters (escape sequences included) with a `?`. */
function clean(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
}
