/**
 * ring-svg: the ring drawn as an SVG circle: each arc in its owner's colour
 * (a title names the owner), the arcs of a peer that is down dashed and
 * faded, and a legend beside it with each peer's colour, share and state.
 * Every text goes through escapeHtml; every number is formatted here.
 */
import { escapeHtml } from './escape.js'
import type { RingArc } from './types.js'

/** RingPeer is one peer as the drawing shows it. */
export interface RingPeer {
  url: string
  color: string
  share: number
  down: boolean
  /** The state as words: up, down (unreachable), no status (Go peer?), … */
  label: string
}

/** PALETTE colours the first peers (distinct for colour-blind readers too); later ones get hues by the golden angle. */
const PALETTE = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#f0e442', '#000000']

/** colorOf is the colour of the peer at index in the sorted member list. */
export function colorOf(index: number): string {
  return PALETTE[index] ?? `hsl(${Math.round((index * 137.508) % 360)}, 65%, 45%)`
}

const SIZE = 240
const CENTER = SIZE / 2
const RADIUS = 90
const WIDTH = 26

/** ringSvg draws arcs for peers (keyed by URL); an arc of a peer not in peers is grey. */
export function ringSvg(arcs: readonly RingArc[], peers: readonly RingPeer[]): string {
  const byUrl = new Map(peers.map((peer) => [peer.url, peer]))
  const paths = arcs.map((arc) => arcPath(arc, byUrl.get(arc.peer))).join('')
  const down = peers.filter((peer) => peer.down).length
  const caption = arcs.length === 0 ? 'no ring' : `${peers.length} peers${down === 0 ? '' : ` · ${down} down`}`
  const center = `<text class="caption" x="${CENTER}" y="${CENTER + 5}" text-anchor="middle" font-size="14"${down === 0 ? '' : ' fill="#b00020"'}>${escapeHtml(caption)}</text>`
  return (
    `<svg class="ring" role="img" aria-label="hash ring" width="${SIZE}" height="${SIZE}" viewBox="0 0 ${SIZE} ${SIZE}" xmlns="http://www.w3.org/2000/svg">` +
    `<circle cx="${CENTER}" cy="${CENTER}" r="${RADIUS}" fill="none" stroke="#eee" stroke-width="${WIDTH}"/>${paths}${center}</svg>`
  )
}

/** legend lists every peer with its colour swatch, share of the ring and state. */
export function legend(peers: readonly RingPeer[]): string {
  const items = peers.map(
    (peer) =>
      `<li class="${peer.down ? 'down' : 'up'}" data-peer="${escapeHtml(peer.url)}"><span class="swatch" style="background:${peer.color}"></span>` +
      `${escapeHtml(peer.url)} — ${percent(peer.share)} of the ring — <span class="state">${escapeHtml(peer.label)}</span></li>`,
  )
  return `<ul class="legend">${items.join('')}</ul>`
}

function arcPath(arc: RingArc, peer: RingPeer | undefined): string {
  const color = peer?.color ?? '#999'
  const dash = peer?.down === true ? ` stroke-dasharray="4 3" stroke-opacity="0.45"` : ''
  const title = `<title>${escapeHtml(arc.peer)}${peer?.down === true ? ' (down)' : ''}</title>`
  const attrs = `class="arc${peer?.down === true ? ' down' : ''}" data-peer="${escapeHtml(arc.peer)}" fill="none" stroke="${color}" stroke-width="${WIDTH}"${dash}`
  // A full circle cannot be one SVG arc: draw it as two halves.
  if (arc.end - arc.start >= 0.999) return `<path ${attrs} d="${arcD(0, 0.5)} ${arcD(0.5, 1, false)}">${title}</path>`
  return `<path ${attrs} d="${arcD(arc.start, arc.end)}">${title}</path>`
}

/** arcD is the path data of the arc from start to end (fractions of the circle, clockwise from the top). */
function arcD(start: number, end: number, move = true): string {
  const [x0, y0] = point(start)
  const [x1, y1] = point(end)
  const large = end - start > 0.5 ? 1 : 0
  return `${move ? `M ${x0} ${y0} ` : ''}A ${RADIUS} ${RADIUS} 0 ${large} 1 ${x1} ${y1}`
}

function point(fraction: number): [string, string] {
  const angle = fraction * 2 * Math.PI - Math.PI / 2
  return [(CENTER + RADIUS * Math.cos(angle)).toFixed(2), (CENTER + RADIUS * Math.sin(angle)).toFixed(2)]
}

/** percent formats a fraction as a percentage with one decimal, or an en dash for none. */
export function percent(value: number | null): string {
  return value === null ? '–' : `${(value * 100).toFixed(1)}%`
}
