import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, it, expect } from 'vitest'
import { InvalidArgumentError } from '../src/errors.js'
import { HashRing, type HashFn, type RingOptions } from '../src/ring.js'
import { GO, decimalHash, prng, sampleKeys, shuffled } from './helpers/ring-helpers.js'
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
    // As the pool rebuilds on a change: from the ring it replaces (one peer short, a stranger more), sharing the points of the peers both hold.
    const previous = new HashRing([...first.peers.slice(1), 'http://stranger.example:1'], { ...GO, replicas: first.replicas })
    const rebuilt = new HashRing(first.peers, { ...GO, replicas: first.replicas }, previous)

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
      expect(rebuilt.pick(v.key)).toBe(v.owner)
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
  const build = (peers: readonly string[], replicas: number | null, previous?: HashRing): HashRing =>
    new HashRing(peers, replicas === null ? {} : { replicas }, previous)

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
    /**
     * The list built as the pool rebuilds on a change: from the ring it
     * replaces, which lacked one of its peers and held a stranger, and had
     * served a failover pick (its points moved into buckets). The points it
     * shares must place as hashing them again would.
     */
    const rebuilt = (): HashRing => {
      const previous = build([...set.peers.slice(1), 'http://stranger.example:1'], set.replicas)
      previous.pickWhere('k', () => true)
      return build(set.peers, set.replicas, previous)
    }

    it('every key has its recorded owner and failover order', () => {
      expect(keys.map((key) => ring.pick(key))).toEqual(set.walks.map((walk) => walk[0]))
      expect(keys.map((key) => walkOf(ring, key))).toEqual(set.walks)
    })

    it('every one of the 65,536 slots has its recorded owner, whatever the peer order', () => {
      expect(slotsDigest(ring, probes)).toBe(set.slotsDigest)
      expect(slotsDigest(build([...set.peers].reverse(), set.replicas), probes)).toBe(set.slotsDigest)
    })

    it('built from the ring it replaces (points shared), every slot and failover order is the recorded one', () => {
      const ring = rebuilt()
      expect(slotsDigest(ring, probes)).toBe(set.slotsDigest)
      expect(keys.map((key) => walkOf(ring, key))).toEqual(set.walks)
    })
  })
})
