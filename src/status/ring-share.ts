/**
 * ring-share: how much of the ring each peer owns, and the ring drawn as
 * arcs, measured on a fixed sample of keys through the ring's own public
 * answers (hashOf: where a key lands; pick: who owns it). The sample keys are
 * made up here, never a user's, so no real key reaches a status report. A
 * sample rather than the exact arcs: the balanced ring has 1,024 points per
 * peer, far more arcs than a page can draw or a reader can see.
 */
import type { HashRing } from '../ring.js'
import type { RingArc } from './types.js'

/** RING_SAMPLES is how many keys the shares are measured on: 1/4096 of the ring is each one's weight. */
export const RING_SAMPLES = 4096
/** RING_SEGMENTS bounds the arcs: the circle is drawn in this many equal segments, each given to one owner. */
export const RING_SEGMENTS = 180

const CIRCLE = 2 ** 32

/** RingShares are a ring's measured shares (by peer URL) and its arcs. */
export interface RingShares {
  shares: ReadonlyMap<string, number>
  arcs: RingArc[]
}

/** Sample is one sample key's position (a fraction of the circle) and owner. */
interface Sample {
  at: number
  owner: string
}

/**
 * measureRing samples ring. O(RING_SAMPLES · log): cheap enough for every
 * status call, yet the caller keeps the result per ring (a ring is immutable).
 */
export function measureRing(ring: HashRing): RingShares {
  if (ring.size === 0) return { shares: new Map(), arcs: [] }
  const samples = sampleRing(ring)
  const counts = new Map<string, number>(ring.peers.map((peer) => [peer, 0]))
  for (const sample of samples) counts.set(sample.owner, (counts.get(sample.owner) ?? 0) + 1)
  const shares = new Map([...counts].map(([peer, count]) => [peer, count / samples.length]))
  return { shares, arcs: arcsOf(samples) }
}

function sampleRing(ring: HashRing): Sample[] {
  const samples: Sample[] = []
  for (let i = 0; i < RING_SAMPLES; i++) {
    const key = `peercache-status-sample-${i}`
    samples.push({ at: ring.hashOf(key) / CIRCLE, owner: ring.pick(key) as string })
  }
  return samples.sort((a, b) => a.at - b.at)
}

/**
 * arcsOf cuts the circle into RING_SEGMENTS segments, gives each the owner of
 * the first sample at or after its start (wrapping: a key belongs to the
 * first point at or after it), and merges neighbours of one owner.
 */
function arcsOf(samples: readonly Sample[]): RingArc[] {
  const arcs: RingArc[] = []
  let next = 0
  for (let segment = 0; segment < RING_SEGMENTS; segment++) {
    const start = segment / RING_SEGMENTS
    while (next < samples.length && (samples[next] as Sample).at < start) next++
    const owner = (samples[next] ?? (samples[0] as Sample)).owner
    const end = (segment + 1) / RING_SEGMENTS
    const last = arcs[arcs.length - 1]
    if (last !== undefined && last.peer === owner) last.end = end
    else arcs.push({ start, end, peer: owner })
  }
  return arcs
}
