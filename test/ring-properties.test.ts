/**
 * ring properties: what must hold for any peer list rather than for recorded
 * ones (ring.test.ts has the golden vectors): how evenly each ring kind
 * spreads keys, that the balanced ring is the default and agrees with
 * itself whatever the peer order, and that the bucketed ring answers as a
 * naive sorted ring would even under hashes that crowd and share points.
 */
import { crc32 } from 'node:zlib'
import { describe, it, expect } from 'vitest'
import { InvalidArgumentError } from '../src/errors.js'
import { HashRing, type HashFn } from '../src/ring.js'
import { bigEndianWords } from '../src/placement.js'
import { measureBalance, randomPeers } from '../bench/ring-balance.js'
import { GO, decimalHash, prng, sampleKeys, shuffled } from './helpers/ring-helpers.js'

describe('HashRing distribution (groupcache)', () => {
  it.each([3, 5])('%i peers share 100k keys evenly enough', (n) => {
    const peers = Array.from({ length: n }, (_, i) => `http://10.0.0.${i + 1}:8080`)
    const ring = new HashRing(peers, GO)
    const counts = new Map<string, number>(peers.map((p) => [p, 0]))
    const total = 100_000
    for (let i = 0; i < total; i++) {
      const owner = ring.pick(`key-${i}`)!
      counts.set(owner, counts.get(owner)! + 1)
    }
    for (const peer of peers) {
      const share = counts.get(peer)! / total
      expect(share).toBeGreaterThan(0.5 / n)
      expect(share).toBeLessThan(1.6 / n)
    }
  })
})

describe('HashRing balanced (the default)', () => {
  /** randomLists draws `count` seeded random peer lists of n peers, shaped like deployments. */
  const randomLists = (n: number, count: number, seed: number): string[][] => {
    const random = prng(seed)
    return Array.from({ length: count }, () => randomPeers(n, random))
  }

  it('is the default, and places keys unlike the groupcache ring', () => {
    const peers = randomPeers(5, prng(1))
    const ring = new HashRing(peers)
    const go = new HashRing(peers, GO)
    expect(ring.kind).toBe('balanced')
    expect(go.kind).toBe('groupcache')
    expect(sampleKeys.filter((key) => ring.pick(key) !== go.pick(key)).length).toBeGreaterThan(sampleKeys.length / 2)
  })

  it('places keys on one of 65,536 slots: positions are multiples of 2^16', () => {
    const ring = new HashRing(['a', 'b'])
    const positions = new Set(sampleKeys.map((key) => ring.hashOf(key)))
    for (const position of positions) expect(position % 0x10000).toBe(0)
    expect(positions.size).toBeGreaterThan(sampleKeys.length * 0.95)
  })

  it.each([3, 5, 10, 30])('%i peers: every process agrees whatever the order (shuffled, reversed, duplicated)', (n) => {
    const random = prng(n)
    for (const peers of randomLists(n, 3, 100 + n)) {
      const reference = new HashRing(peers)
      const orders = [[...peers].reverse(), [...peers, ...peers.slice(0, 2)], shuffled(peers, random), shuffled(peers, random)]
      for (const order of orders) {
        const ring = new HashRing(order)
        expect(ring.peers).toEqual(reference.peers)
        for (const key of sampleKeys) expect(ring.pick(key)).toBe(reference.pick(key))
      }
    }
  })

  it.each([3, 10, 30])('%i peers: pick (the slot table) agrees with a walk of the points (pickWhere)', (n) => {
    const ring = new HashRing(randomPeers(n, prng(n)))
    for (const key of sampleKeys) expect(ring.pickWhere(key, () => true)).toBe(ring.pick(key))
  })

  it('skipping a down peer agrees with a ring rebuilt without it', () => {
    const peers = randomPeers(5, prng(7))
    const full = new HashRing(peers)
    for (const down of peers) {
      const rebuilt = new HashRing(peers.filter((p) => p !== down))
      for (const key of sampleKeys) expect(full.pickWhere(key, (p) => p !== down)).toBe(rebuilt.pick(key))
    }
  })

  it('pickWhere asks each distinct peer once, then gives up', () => {
    const peers = randomPeers(10, prng(8))
    const ring = new HashRing(peers)
    for (const key of sampleKeys.slice(0, 200)) {
      const asked: string[] = []
      expect(ring.pickWhere(key, (p) => (asked.push(p), false))).toBeUndefined()
      expect(new Set(asked).size).toBe(peers.length)
      expect(asked).toHaveLength(peers.length)
      expect(asked[0]).toBe(ring.pick(key))
    }
  })

  // The targets, with the real hash, on 6 lists per size (the bench runs 20 and prints the figures).
  it.each([3, 5, 10, 30])('%i peers: busiest ≤ 1.10× fair share on average, ≤ 1.20× at worst; a joining peer takes ≤ 1.2/(n+1), only for itself', (n) => {
    const figures = measureBalance((urls) => new HashRing(urls), n, { lists: 6, keys: 50_000, random: prng(1000 + n) })
    expect(figures.busiestMean).toBeLessThanOrEqual(1.1)
    expect(figures.busiestWorst).toBeLessThanOrEqual(1.2)
    expect(figures.movedWorst).toBeLessThanOrEqual(1.2)
    expect(figures.strayMoves).toBe(0)
  })

  it('the same measurement finds the groupcache ring uneven at 10 peers (it tells rings apart)', () => {
    const figures = measureBalance((urls) => new HashRing(urls, GO), 10, { lists: 6, keys: 50_000, random: prng(1010) })
    expect(figures.busiestMean).toBeGreaterThan(1.2)
    expect(figures.strayMoves).toBe(0)
  })

  it('refuses a hash (it is the groupcache ring\'s) and an unknown ring kind', () => {
    expect(() => new HashRing(['a'], { hash: decimalHash })).toThrow(/groupcache/)
    expect(() => new HashRing(['a'], { ring: 'balanced', hash: decimalHash })).toThrow(InvalidArgumentError)
    expect(() => new HashRing(['a'], { ring: 'maglev' as 'balanced' })).toThrow(InvalidArgumentError)
  })
})

/**
 * naiveRing is Go groupcache's ring written the plain way (every point in a
 * sorted list, the greater peer keeping a shared point, a search per key),
 * the reference the bucketed ring (src/ring-points.ts) must always agree with.
 */
function naiveRing(peers: readonly string[], replicas: number, hash: HashFn): { pick(key: string): string; walk(key: string): string[] } {
  const sorted = [...new Set(peers)].sort()
  const ownerOf = new Map<number, number>()
  sorted.forEach((peer, index) => {
    for (let i = 0; i < replicas; i++) ownerOf.set(hash(String(i) + peer) >>> 0, index)
  })
  const points = [...ownerOf.keys()].sort((a, b) => a - b)
  const firstAt = (key: string): number => {
    const index = points.findIndex((point) => point >= hash(key) >>> 0)
    return index === -1 ? 0 : index
  }
  const walk = (key: string): string[] => {
    const order: string[] = []
    const start = firstAt(key)
    for (let step = 0; step < points.length && order.length < sorted.length; step++) {
      const peer = sorted[ownerOf.get(points[(start + step) % points.length]!)!]!
      if (!order.includes(peer)) order.push(peer)
    }
    return order
  }
  return { pick: (key) => sorted[ownerOf.get(points[firstAt(key)]!)!]!, walk }
}

describe('HashRing agrees with a naive ring under skewed hashes (collisions, crowded buckets)', () => {
  const crc: HashFn = (s) => crc32(s) >>> 0
  const hashes: Array<[string, HashFn]> = [
    ['14 bits: every point in one bucket, many shared', (s) => crc(s) & 0x3fff],
    ['20 bits: 16 crowded buckets, some shared', (s) => crc(s) & 0xfffff],
    ['top 16 bits only: points on bucket starts', (s) => (crc(s) & 0xffff0000) >>> 0],
    ["every point on its bucket's last position", (s) => (crc(s) | 0xffff) >>> 0],
    ['256 values spread over the circle', (s) => Math.imul(crc(s) & 0xff, 0x1010101) >>> 0],
  ]
  const peers = Array.from({ length: 30 }, (_, i) => `http://10.0.0.${i}:8080`)
  const keys = sampleKeys.slice(0, 300)

  it.each(hashes)('%s: pick and the whole failover order', (_name, hash) => {
    const ring = new HashRing(shuffled(peers, prng(3)), { ...GO, replicas: 100, hash })
    const naive = naiveRing(peers, 100, hash)
    for (const key of keys) {
      expect(ring.pick(key)).toBe(naive.pick(key))
      const order: string[] = []
      expect(ring.pickWhere(key, (peer) => (order.push(peer), false))).toBeUndefined()
      expect(order).toEqual(naive.walk(key))
    }
  })
})

describe('HashRing built from the ring it replaces (the pool passes it on every change of the peer list)', () => {
  /** counting wraps CRC-32 (the groupcache ring's hash) and counts the strings it hashes that end in a peer's URL: points made. */
  const counting = (): { hash: HashFn; made: () => number } => {
    let made = 0
    const hash: HashFn = (s) => {
      if (s.includes('http://')) made++
      return crc32(s) >>> 0
    }
    return { hash, made: () => made }
  }
  const peers = randomPeers(40, prng(21))
  const same = (a: HashRing, b: HashRing): void => {
    expect(a.peers).toEqual(b.peers)
    for (const key of sampleKeys.slice(0, 500)) {
      expect(a.pick(key)).toBe(b.pick(key))
      expect(a.pickWhere(key, (peer) => peer !== a.pick(key))).toBe(b.pickWhere(key, (peer) => peer !== b.pick(key)))
    }
  }

  it('makes the points of the peers that joined only, and places keys as a ring built from nothing', () => {
    const { hash, made } = counting()
    const options = { ...GO, replicas: 20, hash }
    const before = new HashRing(peers.slice(0, 30), options)
    expect(made()).toBe(30 * 20)
    // Three leave, five join, in one change.
    const after = new HashRing([...peers.slice(3, 30), ...peers.slice(30, 35)], options, before)
    expect(made()).toBe(35 * 20)
    same(after, new HashRing([...peers.slice(3, 35)], { ...GO, replicas: 20 }))
  })

  it('ignores a previous ring of another kind, replicas or hash: the ring is the one hashing makes', () => {
    const balanced = new HashRing(peers)
    const others = [new HashRing(peers, GO), new HashRing(peers, { replicas: 100 }), new HashRing(peers, { ...GO, replicas: 20 })]
    for (const previous of others) same(new HashRing(peers, {}, previous), balanced)
    const { hash, made } = counting()
    same(new HashRing(peers, { ...GO, hash }, new HashRing(peers, GO)), new HashRing(peers, GO))
    expect(made()).toBe(peers.length * 50)
  })

  it('leaves the previous ring as it was: both keep answering, sharing the points, one after a walk of the other', () => {
    const previous = new HashRing(peers.slice(0, 30))
    const fresh = new HashRing(peers.slice(0, 30))
    const next = new HashRing(peers.slice(10), {}, previous)
    same(next, new HashRing(peers.slice(10)))
    same(previous, fresh)
    same(new HashRing(peers.slice(5, 35), {}, next), new HashRing(peers.slice(5, 35)))
  })
})

describe('bigEndianWords (the balanced ring reads its points with it)', () => {
  const bytes = Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff))
  const expected = Array.from({ length: 16 }, (_, i) => bytes.readUInt32BE(4 * i))

  it('reads an aligned buffer and one that starts off a 4-byte boundary the same way, as big-endian words', () => {
    expect([...bigEndianWords(Buffer.from(bytes))]).toEqual(expected)
    const offset = Buffer.alloc(65)
    bytes.copy(offset, 1)
    const misaligned = offset.subarray(1)
    expect(misaligned.byteOffset % 4).toBe(1)
    expect([...bigEndianWords(misaligned)]).toEqual(expected)
  })

  it('refuses a length that is not whole words', () => {
    expect(() => bigEndianWords(Buffer.alloc(6))).toThrow(RangeError)
  })
})
