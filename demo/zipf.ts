/**
 * zipf: a seeded Zipf key distribution, the shape of real traffic where a few
 * products get most of the views. Seeded, so every run asks for the same keys.
 */

/** mulberry32 returns a small, fast PRNG in [0, 1) from a 32-bit seed. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * zipfSampler returns a function drawing ids 1..n where the id of rank r is
 * drawn with probability proportional to 1 / r^s. Ranks are shuffled onto
 * ids, so the popular products are spread over the id space (and the ring).
 * Precomputes the CDF once (O(n)); each draw is a binary search (O(log n)).
 */
export function zipfSampler(n: number, s: number, random: () => number): () => number {
  const cdf = new Float64Array(n)
  let total = 0
  for (let rank = 1; rank <= n; rank++) {
    total += 1 / rank ** s
    cdf[rank - 1] = total
  }
  const idOfRank = shuffledIds(n, random)
  return () => {
    const target = random() * total
    // First rank whose cumulative weight reaches target.
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (cdf[mid]! < target) lo = mid + 1
      else hi = mid
    }
    return idOfRank[lo]!
  }
}

/** shuffledIds is a Fisher–Yates shuffle of 1..n. */
function shuffledIds(n: number, random: () => number): Uint32Array {
  const ids = new Uint32Array(n)
  for (let i = 0; i < n; i++) ids[i] = i + 1
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const swap = ids[i]!
    ids[i] = ids[j]!
    ids[j] = swap
  }
  return ids
}
