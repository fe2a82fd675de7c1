/**
 * html: the status page. One static document (no script): the ring drawn
 * with its legend (ring-svg.ts), the peer table, the group table, and each
 * group's hit ratio over the recent minutes as small bars. Every text from
 * a report is escaped (escape.ts); no key appears, since reports hold none.
 */
import { escapeHtml } from './escape.js'
import { legend, ringSvg } from './ring-svg.js'
import { GROUP_COLUMNS, clusterView, type ClusterView, type HistoryRow, type PeerRow } from './view.js'
import type { ClusterStatus } from './types.js'

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.meta{color:#555;margin:0 0 16px}.top{display:flex;gap:24px;align-items:center;flex-wrap:wrap}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}td:first-child{white-space:nowrap}
tr.down td,li.down{color:#b00020}tr.no-status td,tr.error td{color:#8a5a00}
.legend{list-style:none;padding:0;margin:0}.legend li{margin:4px 0}
.swatch{display:inline-block;width:12px;height:12px;margin-right:6px;vertical-align:middle;border-radius:2px}
.bars{vertical-align:bottom}`

/** renderPage renders a gathering as the status page. */
export function renderPage(cluster: ClusterStatus): string {
  const view = clusterView(cluster)
  return [
    '<!doctype html><html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>peercache status</title><style>${STYLE}</style></head><body>`,
    '<h1>peercache cluster</h1>',
    `<p class="meta">gathered by <span id="gathered-by">${escapeHtml(view.gatheredBy)}</span> at ${escapeHtml(view.at)} UTC · ring: ${escapeHtml(view.ringKind)}</p>`,
    `<div class="top">${ringSvg(view.arcs, view.peers)}${legend(view.peers)}</div>`,
    '<h2>Peers</h2>',
    peerTable(view.peers),
    '<h2>Groups</h2>',
    groupTable(view),
    '<h2>Hit ratio per minute</h2>',
    historyTable(view.history),
    '</body></html>',
  ].join('\n')
}

const PEER_HEADERS = ['peer', 'state', 'seen from here', 'round trip', 'latency (avg)', 'ring share', 'errors from here', 'groups', 'items', 'bytes', 'note']

function peerTable(peers: readonly PeerRow[]): string {
  const rows = peers.map((p) => {
    const cells = [
      `<td><span class="swatch" style="background:${p.color}"></span>${escapeHtml(p.url)}</td>`,
      `<td class="state">${escapeHtml(p.label)}</td>`,
      text(p.seenFromHere),
      num(p.roundTrip),
      num(p.latency),
      num(`${(p.share * 100).toFixed(1)}%`),
      num(p.errors),
      num(p.groups),
      num(p.items),
      num(p.bytes),
      text(p.note),
    ]
    const cls = p.state === 'unreachable' ? 'down' : p.state === 'ok' && p.down ? 'down' : p.state
    return `<tr class="${cls}" data-peer="${escapeHtml(p.url)}">${cells.join('')}</tr>`
  })
  return table('peers', PEER_HEADERS, rows)
}

function groupTable(view: ClusterView): string {
  if (view.groups.length === 0) return '<p>No group answered.</p>'
  const rows = view.groups.map(
    (g) => `<tr data-peer="${escapeHtml(g.member)}" data-group="${escapeHtml(g.group)}">${text(g.member)}${text(g.group)}${GROUP_COLUMNS.map((c) => num(g.cells[c])).join('')}</tr>`,
  )
  return table('groups', ['peer', 'group', ...GROUP_COLUMNS], rows)
}

function historyTable(history: readonly HistoryRow[]): string {
  if (history.length === 0) return '<p>No history yet.</p>'
  const rows = history.map((h) => {
    const periods = h.periods.map((p) => `${escapeHtml(p.label)} ${escapeHtml(p.text)}`).join(' · ')
    return `<tr data-peer="${escapeHtml(h.member)}" data-group="${escapeHtml(h.group)}">${text(h.member)}${text(h.group)}<td class="bars">${bars(h)}</td>${text(periods)}</tr>`
  })
  return table('history', ['peer', 'group', 'hit ratio', 'per minute (UTC start, ratio of gets)'], rows)
}

/** bars draws a group's recent hit ratios as a small bar chart, oldest left. */
function bars(h: HistoryRow): string {
  const width = 10
  const height = 30
  const drawn = h.periods.map((p, i) => {
    const value = p.ratio ?? 0
    const bar = Math.max(1, Math.round(value * height))
    return `<rect x="${i * width}" y="${height - bar}" width="${width - 2}" height="${bar}" fill="${p.ratio === null ? '#ddd' : '#0072b2'}"><title>${escapeHtml(p.label)} ${escapeHtml(p.text)}</title></rect>`
  })
  return `<svg width="${Math.max(width, h.periods.length * width)}" height="${height}" xmlns="http://www.w3.org/2000/svg">${drawn.join('')}</svg>`
}

function table(id: string, headers: readonly string[], rows: readonly string[]): string {
  return `<table id="${id}"><thead><tr>${headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('\n')}</tbody></table>`
}

function text(value: string): string {
  return `<td>${escapeHtml(value)}</td>`
}

function num(value: string): string {
  return `<td class="num">${escapeHtml(value)}</td>`
}
