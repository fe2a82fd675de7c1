/**
 * latency: a moving average of the round trips to each peer, fed by the
 * cluster gatherings (each asks every peer for its status and times the
 * answer). Kept here rather than in the peer client, which owns the get
 * path: a status tool must not add work there.
 */

/** LATENCY_WEIGHT is the weight of the newest round trip in the average (an exponential moving average). */
const LATENCY_WEIGHT = 0.3

/** LatencyAverages holds one average per peer; keepOnly drops the peers that left, so it stays bounded by the peer list. */
export class LatencyAverages {
  readonly #averages = new Map<string, number>()

  /** record adds one round trip to peer, in ms. */
  record(peer: string, ms: number): void {
    const previous = this.#averages.get(peer)
    this.#averages.set(peer, previous === undefined ? ms : previous + LATENCY_WEIGHT * (ms - previous))
  }

  /** average is peer's average round trip in ms, or null before the first. */
  average(peer: string): number | null {
    return this.#averages.get(peer) ?? null
  }

  /** keepOnly forgets every peer not in peers. */
  keepOnly(peers: Iterable<string>): void {
    const keep = new Set(peers)
    for (const peer of this.#averages.keys()) if (!keep.has(peer)) this.#averages.delete(peer)
  }
}
