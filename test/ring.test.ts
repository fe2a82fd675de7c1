import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { crc32 } from 'node:zlib'
import { describe, it, expect } from 'vitest'
import { InvalidArgumentError } from '../src/errors.js'
import { HashRing, type HashFn, type RingOptions } from '../src/ring.js'
import { bigEndianWords } from '../src/placement.js'
import { measureBalance, randomPeers } from '../bench/ring-balance.js'
import { mulberry32 } from './helpers/core-helpers.js'
import { slotProbeKeys, slotsDigest, walkOf, type BalancedFixture } from './fixtures/ring-balanced-golden.js'

/** One golden vector, computed with Go's github.com/golang/groupcache/consistenthash. */
interface RingVector {
  set: string
  peers: string[]
  replicas: number
  key: string
  keyHex: string
  keyHash: number
  owner: string
}

const VECTORS_URL = new URL('./fixtures/ring-golang.json', import.meta.url)
const VECTOR_COUNT = 271

/** loadJson reads a golden vector file; a missing or broken one fails every test that reads it, by name. */
function loadJson<T>(url: URL): T {
  try {
    return JSON.parse(readFileSync(url, 'utf8')) as T
  } catch (err) {
    throw new Error(`cannot load golden ring vectors from ${fileURLToPath(url)}`, { cause: err })
  }
}

const vectors = loadJson<RingVector[]>(VECTORS_URL)
const vectorSets = groupBySet(vectors)

/** Groups vectors by set, in first-seen order (Map.groupBy is not in Node 20). */
function groupBySet(all: readonly RingVector[]): Array<[string, RingVector[]]> {
  const sets = new Map<string, RingVector[]>()
  for (const v of all) {
    const group = sets.get(v.set)
    if (group === undefined) sets.set(v.set, [v])
    else group.push(v)
  }
  return [...sets]
}

/** GO is the ring every Go-compatibility test names explicitly: `balanced` is the default. */
const GO = { ring: 'groupcache' } as const

/** Hashes decimal strings to their value, so ring positions can be worked out by hand. */
const decimalHash: HashFn = (s) => Number.parseInt(s, 10) >>> 0

/** A seeded PRNG, so the random cases are reproducible. */
const prng = mulberry32

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

const sampleKeys = Array.from({ length: 2000 }, (_, i) => `key-${i}`)

describe('HashRing hand-computed (groupcache TestHashing)', () => {
  // Points: '2' → 2, 12, 22; '4' → 4, 14, 24; '6' → 6, 16, 26.
  const ring = new HashRing(['6', '4', '2'], { ...GO, replicas: 3, hash: decimalHash })

  it.each([
    ['2', '2'],
    ['11', '2'],
    ['23', '4'],
    ['27', '2'],
  ])('key %s → peer %s', (key, owner) => {
    expect(ring.pick(key)).toBe(owner)
  })

  it('adding peer 8 (points 8, 18, 28) moves key 27 to it', () => {
    const grown = new HashRing(['6', '4', '2', '8'], { ...GO, replicas: 3, hash: decimalHash })
    expect(grown.pick('27')).toBe('8')
    for (const [key, owner] of [['2', '2'], ['11', '2'], ['23', '4']] as const) expect(grown.pick(key)).toBe(owner)
  })

  it('exposes sorted peers and size', () => {
    expect(ring.peers).toEqual(['2', '4', '6'])
    expect(ring.size).toBe(3)
    expect(ring.hashOf('27')).toBe(27)
  })
})

describe('HashRing golden vectors (Go consistenthash)', () => {
  it(`loads all ${VECTOR_COUNT} vectors`, () => {
    expect(vectors).toHaveLength(VECTOR_COUNT)
  })

  describe.each(vectorSets)('set %s', (_set, setVectors) => {
    const first = setVectors[0]!
    const ring = new HashRing(first.peers, { ...GO, replicas: first.replicas })

    it('every vector of the set uses the same peers and replicas', () => {
      for (const v of setVectors) {
        expect(v.peers).toEqual(first.peers)
        expect(v.replicas).toBe(first.replicas)
      }
    })

    it.each(setVectors.map((v) => [JSON.stringify(v.key), v] as const))('key %s', (_label, v) => {
      // The key as JSON-decoded must be the exact bytes Go hashed (guards Unicode normalization).
      expect(Buffer.from(v.key, 'utf8').toString('hex')).toBe(v.keyHex)
      expect(ring.hashOf(v.key)).toBe(v.keyHash)
      expect(ring.pick(v.key)).toBe(v.owner)
    })
  })
})

describe('HashRing order independence', () => {
  it.each(vectorSets)('set %s: shuffled and duplicated peer lists give the same owners', (_set, setVectors) => {
    const peers = setVectors[0]!.peers
    const reference = new HashRing(peers, GO)
    const keys = [...setVectors.map((v) => v.key), ...sampleKeys]
    const random = prng(42)
    const orders = [[...peers].reverse(), [...peers, ...peers], ...Array.from({ length: 5 }, () => shuffled(peers, random))]
    for (const order of orders) {
      const ring = new HashRing(order, GO)
      expect(ring.peers).toEqual(reference.peers)
      for (const key of keys) expect(ring.pick(key)).toBe(reference.pick(key))
    }
  })

  // Point '0a', '0b', '0c' all land on 10; '1a' and '1b' both on 20; '1c' alone on 30.
  const collisions: Record<string, number> = { '0a': 10, '0b': 10, '0c': 10, '1a': 20, '1b': 20, '1c': 30 }
  const collidingHash: HashFn = (s) => collisions[s] ?? decimalHash(s)
  const permutations = [
    ['a', 'b', 'c'],
    ['a', 'c', 'b'],
    ['b', 'a', 'c'],
    ['b', 'c', 'a'],
    ['c', 'a', 'b'],
    ['c', 'b', 'a'],
  ]

  it.each(permutations)('collisions go to the greater peer string: order %s,%s,%s', (...order) => {
    const ring = new HashRing(order, { ...GO, replicas: 2, hash: collidingHash })
    expect(ring.pick('5')).toBe('c') // point 10: a, b, c collide → c
    expect(ring.pick('15')).toBe('b') // point 20: a, b collide → b
    expect(ring.pick('25')).toBe('c') // point 30
    expect(ring.pick('35')).toBe('c') // wraps to point 10
    // The losing points are gone: from 10 the walk meets c (10), b (20); a never owns a point.
    expect(ring.pickWhere('5', (p) => p !== 'c')).toBe('b')
    expect(ring.pickWhere('5', (p) => p === 'a')).toBeUndefined()
  })
})

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

describe('HashRing.pickWhere', () => {
  const ring = new HashRing(['6', '4', '2'], { ...GO, replicas: 3, hash: decimalHash })

  it('skipping the owner returns the next distinct peer in ring order', () => {
    expect(ring.pickWhere('11', (p) => p !== '2')).toBe('4') // 12 (2) → 14 (4)
    expect(ring.pickWhere('23', (p) => p !== '4')).toBe('6') // 24 (4) → 26 (6)
    expect(ring.pickWhere('23', (p) => p === '2')).toBe('2') // 24, 26, wrap to 2
    expect(ring.pickWhere('27', (p) => p !== '2')).toBe('4') // wrap to 2 (2) → 4 (4)
  })

  it('asks each distinct peer once, then gives up', () => {
    const asked: string[] = []
    const none = ring.pickWhere('11', (p) => {
      asked.push(p)
      return false
    })
    expect(none).toBeUndefined()
    expect(asked).toEqual(['2', '4', '6'])
  })

  it('never asks a peer twice, even when its points are adjacent on the ring', () => {
    const peers = vectors.find((v) => v.set === '5peer-named')!.peers
    const big = new HashRing(peers, GO)
    for (const key of sampleKeys) {
      const asked: string[] = []
      big.pickWhere(key, (p) => {
        asked.push(p)
        return false
      })
      expect(asked).toHaveLength(peers.length)
      expect(new Set(asked).size).toBe(peers.length)
      expect(asked[0]).toBe(big.pick(key))
    }
  })

  it('with accept always true equals pick', () => {
    const vectorRing = new HashRing(vectors[0]!.peers, GO)
    for (const key of sampleKeys) {
      expect(ring.pickWhere(key, () => true)).toBe(ring.pick(key))
      expect(vectorRing.pickWhere(key, () => true)).toBe(vectorRing.pick(key))
    }
  })

  it('skipping a down peer agrees with a ring rebuilt without it', () => {
    const peers = vectors.find((v) => v.set === '5peer-named')!.peers
    const full = new HashRing(peers, GO)
    for (const down of peers) {
      const rebuilt = new HashRing(peers.filter((p) => p !== down), GO)
      for (const key of sampleKeys) expect(full.pickWhere(key, (p) => p !== down)).toBe(rebuilt.pick(key))
    }
  })
})

describe.each(['balanced', 'groupcache'] as const)('HashRing edge cases (%s)', (kind) => {
  const make = (peers: readonly string[], options: RingOptions = {}): HashRing => new HashRing(peers, { ring: kind, ...options })

  it('an empty ring picks nothing', () => {
    const ring = make([])
    expect(ring.size).toBe(0)
    expect(ring.peers).toEqual([])
    expect(ring.pick('a')).toBeUndefined()
    expect(ring.pickWhere('a', () => true)).toBeUndefined()
  })

  it('a single peer owns every key', () => {
    const ring = make(['http://only:1'])
    for (const key of ['', 'a', ...sampleKeys.slice(0, 100)]) expect(ring.pick(key)).toBe('http://only:1')
  })

  it('peers is a sorted, deduplicated, frozen copy', () => {
    const input = ['b', 'a', 'b']
    const ring = make(input)
    input.push('c')
    expect(ring.peers).toEqual(['a', 'b'])
    expect(ring.size).toBe(2)
    expect(ring.kind).toBe(kind)
    expect(Object.isFrozen(ring.peers)).toBe(true)
  })

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 10_001])('replicas %s → InvalidArgumentError', (replicas) => {
    expect(() => make(['a'], { replicas })).toThrow(InvalidArgumentError)
  })

  it('accepts replicas 1 and 10000, and every key still has an owner', () => {
    const sparse = make(['a', 'b'], { replicas: 1 })
    expect(sparse.size).toBe(2)
    for (const key of sampleKeys.slice(0, 200)) expect(sparse.pick(key)).toMatch(/^[ab]$/)
    expect(make(['a', 'b'], { replicas: 10_000 }).pick('x')).toMatch(/^[ab]$/)
  })

  it('a ring of 300 peers (a 16-bit owner table) gives every key one of them, as pickWhere does', () => {
    const peers = Array.from({ length: 300 }, (_, i) => `http://10.0.${i >> 8}.${i & 255}:8080`)
    const ring = make(peers, { replicas: 20 })
    const owners = new Set<string>()
    for (const key of sampleKeys) {
      const owner = ring.pick(key)!
      owners.add(owner)
      expect(ring.pickWhere(key, () => true)).toBe(owner)
    }
    expect(owners.size).toBeGreaterThan(250)
  })

  it('rejects a hash that is not a function and a peer that is not a string', () => {
    expect(() => make(['a'], { hash: 'crc32' as unknown as HashFn })).toThrow(InvalidArgumentError)
    expect(() => make([1 as unknown as string])).toThrow(InvalidArgumentError)
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
 * The default ring's placement is a contract between processes of different
 * versions (a rolling upgrade runs both): ring-balanced.json recorded it once
 * (test/fixtures/make-ring-balanced.ts) and is never regenerated to make
 * these pass; a placement change is a new ring name.
 */
describe('HashRing balanced golden vectors (ring-balanced.json)', () => {
  const golden = loadJson<BalancedFixture>(new URL('./fixtures/ring-balanced.json', import.meta.url))
  const keys = golden.keys.map((k) => k.key)
  /** One key per slot, found with the balanced key hash (which the first test pins). */
  const probes = slotProbeKeys(new HashRing(['a']))
  const build = (peers: readonly string[], replicas: number | null): HashRing => new HashRing(peers, replicas === null ? {} : { replicas })

  it('holds 16 peer lists of 1 to 2,000 peers and 200 keys', () => {
    expect(golden.sets).toHaveLength(16)
    expect(golden.keys).toHaveLength(200)
    expect(golden.sets.map((s) => new Set(s.peers).size)).toEqual([1, 3, 10, 11, 9, 5, 5, 5, 5, 12, 100, 254, 255, 300, 500, 2000])
    for (const set of golden.sets) expect(set.walks).toHaveLength(golden.keys.length)
  })

  it('every key is at its recorded position (the key hash is part of the placement)', () => {
    const ring = new HashRing(['a'])
    for (const k of golden.keys) {
      // The key as JSON-decoded must be the exact bytes recorded (guards Unicode normalization).
      expect(Buffer.from(k.key, 'utf8').toString('hex')).toBe(k.keyHex)
      expect(ring.hashOf(k.key)).toBe(k.keyHash)
    }
  })

  describe.each(golden.sets.map((set) => [set.set, set] as const))('set %s', (_name, set) => {
    const ring = build(set.peers, set.replicas)

    it('every key has its recorded owner and failover order', () => {
      expect(keys.map((key) => ring.pick(key))).toEqual(set.walks.map((walk) => walk[0]))
      expect(keys.map((key) => walkOf(ring, key))).toEqual(set.walks)
    })

    it('every one of the 65,536 slots has its recorded owner, whatever the peer order', () => {
      expect(slotsDigest(ring, probes)).toBe(set.slotsDigest)
      expect(slotsDigest(build([...set.peers].reverse(), set.replicas), probes)).toBe(set.slotsDigest)
    })
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
