/**
 * ring-balance: how evenly a ring spreads keys and how many it moves when a
 * peer joins, over seeded random peer lists. The figures are deterministic
 * for a seed (no clock involved), so the ring bench prints them and the ring
 * tests assert the same properties on a smaller sample.
 */

/** RingLike is the part of a HashRing the measurement needs. */
export interface RingLike {
  pick(key: string): string | undefined
}

/** BalanceOptions size a measurement. */
export interface BalanceOptions {
  /** Random peer lists per peer count. */
  lists: number
  /** Keys placed on each ring. */
  keys: number
  /** Random source in [0, 1) that draws the peer URLs (seed it for reproducible figures). */
  random: () => number
}

/** BalanceFigures describe one peer count over every list. */
export interface BalanceFigures {
  peers: number
  /** Busiest peer's keys ÷ its fair share (keys / peers): mean over the lists, and the worst list. */
  busiestMean: number
  busiestWorst: number
  /** Keys moved when one peer joins ÷ the ideal 1/(peers + 1): mean and worst list. */
  movedMean: number
  movedWorst: number
  /** Keys that moved to a peer other than the one that joined (consistent hashing keeps this 0). */
  strayMoves: number
}

/** balanceKeys returns the measured keys, shaped like real ones: a counter inside a fixed text. */
export function balanceKeys(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `user:${i}:profile`)
}

/**
 * measureBalance places `keys` keys on `lists` random lists of `peers` peers
 * built by makeRing, then on each list plus one new peer.
 */
export function measureBalance(makeRing: (peers: string[]) => RingLike, peers: number, options: BalanceOptions): BalanceFigures {
  const keys = balanceKeys(options.keys)
  const figures: BalanceFigures = { peers, busiestMean: 0, busiestWorst: 0, movedMean: 0, movedWorst: 0, strayMoves: 0 }
  for (let list = 0; list < options.lists; list++) {
    const urls = randomPeers(peers + 1, options.random)
    const joiner = urls.pop()!
    const ring = makeRing(urls)
    const before = keys.map((key) => ring.pick(key))
    const busiest = Math.max(...countBy(before).values()) / (keys.length / peers)
    const grown = makeRing([...urls, joiner])
    let moved = 0
    keys.forEach((key, i) => {
      const owner = grown.pick(key)
      if (owner === before[i]) return
      moved++
      if (owner !== joiner) figures.strayMoves++
    })
    const movedRatio = moved / keys.length / (1 / (peers + 1))
    figures.busiestMean += busiest / options.lists
    figures.busiestWorst = Math.max(figures.busiestWorst, busiest)
    figures.movedMean += movedRatio / options.lists
    figures.movedWorst = Math.max(figures.movedWorst, movedRatio)
  }
  return figures
}

/** randomPeers draws n distinct peer URLs shaped like a deployment's (`http://10.x.y.z:port`). */
export function randomPeers(n: number, random: () => number): string[] {
  const urls = new Set<string>()
  const byte = (): number => Math.floor(random() * 256)
  while (urls.size < n) urls.add(`http://10.${byte()}.${byte()}.${byte()}:${8000 + Math.floor(random() * 1000)}`)
  return [...urls]
}

/** countBy counts each owner's keys. */
function countBy(owners: ReadonlyArray<string | undefined>): Map<string | undefined, number> {
  const counts = new Map<string | undefined, number>()
  for (const owner of owners) counts.set(owner, (counts.get(owner) ?? 0) + 1)
  return counts
}
