/**
 * ring: the consistent-hash ring that decides which peer owns a key.
 *
 * It places keys on peers exactly as github.com/golang/groupcache's
 * consistenthash package does (CRC-32 IEEE, `replicas` points per peer, point
 * i of peer P hashed from `String(i) + P`), so a Node process and a Go process
 * given the same peer list agree on every key's owner. On a point collision
 * the lexicographically greater peer string wins (galaxycache's rule), which
 * is also what Go does when peers are added in sorted order: every process
 * agrees whatever order its peer list came in.
 */
import { crc32 } from 'node:zlib'
import { InvalidArgumentError } from './errors.js'

/** HashFn maps a key (hashed as its UTF-8 bytes) to an unsigned 32-bit integer. */
export type HashFn = (data: string) => number

/** RingOptions tunes a HashRing; the defaults match golang/groupcache's HTTPPool. */
export interface RingOptions {
  /** Points per peer on the ring: more points spread keys more evenly. @default 50 */
  replicas?: number
  /** Hash of keys and points. @default CRC-32 IEEE of the UTF-8 bytes */
  hash?: HashFn
}

const DEFAULT_REPLICAS = 50
const MAX_REPLICAS = 10_000

/** crc32Ieee is the default HashFn: zlib's crc32 UTF-8-encodes a string itself, so it allocates nothing. */
const crc32Ieee: HashFn = (data) => crc32(data)

/**
 * HashRing maps keys to peers by consistent hashing, so that adding or
 * removing one peer moves only that peer's share of the keys.
 *
 * A ring is immutable once built: to change the peers, build a new HashRing
 * and swap the reference, so a lookup never sees a half-updated ring.
 */
export class HashRing {
  /** The peers on the ring: a sorted, deduplicated, frozen copy of the list given. */
  readonly peers: readonly string[]
  readonly #hash: HashFn
  /** Point hashes, sorted ascending, no duplicates. */
  readonly #points: Uint32Array
  /** #owners[j] is the index in `peers` of the peer owning #points[j]. */
  readonly #owners: Uint32Array

  constructor(peers: readonly string[], options: RingOptions = {}) {
    const replicas = checkReplicas(options.replicas ?? DEFAULT_REPLICAS)
    this.#hash = checkHash(options.hash ?? crc32Ieee)
    this.peers = Object.freeze(sortedUnique(peers))
    const owners = this.#pointOwners(replicas)
    // Typed-array sort is numeric, and the Map's keys are distinct.
    this.#points = Uint32Array.from(owners.keys()).sort()
    this.#owners = this.#points.map((point) => owners.get(point)!)
  }

  /** size is the number of peers on the ring. */
  get size(): number {
    return this.peers.length
  }

  /** hashOf returns the key's hash, the position it lands on the ring (for tests and debugging). */
  hashOf(key: string): number {
    return this.#hash(key) >>> 0
  }

  /** pick returns the peer that owns `key`, or undefined when the ring is empty. */
  pick(key: string): string | undefined {
    if (this.#points.length === 0) return undefined
    return this.peers[this.#owners[this.#firstPointAt(key)]!]
  }

  /**
   * pickWhere walks the ring from `key`'s position and returns the first
   * peer, in ring order and each distinct peer considered once, for which
   * `accept(peer)` is true; undefined if none is. It serves failover: skip
   * the peers that are down and fall to the next one, as every process would.
   * Bounded: at most `peers.length` calls to `accept` and one lap of the ring.
   */
  pickWhere(key: string, accept: (peer: string) => boolean): string | undefined {
    const points = this.#points.length
    if (points === 0) return undefined
    const seen = new Uint8Array(this.peers.length)
    const start = this.#firstPointAt(key)
    let distinct = 0
    for (let step = 0; step < points && distinct < this.peers.length; step++) {
      const owner = this.#owners[(start + step) % points]!
      if (seen[owner] === 1) continue
      seen[owner] = 1
      distinct++
      const peer = this.peers[owner]!
      if (accept(peer)) return peer
    }
    return undefined
  }

  /**
   * #firstPointAt returns the index of the first point whose hash is >= the
   * key's, wrapping to point 0 past the last one. Requires a non-empty ring.
   */
  #firstPointAt(key: string): number {
    const index = lowerBound(this.#points, this.hashOf(key))
    return index === this.#points.length ? 0 : index
  }

  /**
   * #pointOwners hashes every peer's points and returns point hash → peer
   * index. Peers are visited in ascending order (this.peers is sorted), so on
   * a collision the greater peer string is written last and wins.
   */
  #pointOwners(replicas: number): Map<number, number> {
    const owners = new Map<number, number>()
    this.peers.forEach((peer, index) => {
      for (let i = 0; i < replicas; i++) owners.set(this.#hash(String(i) + peer) >>> 0, index)
    })
    return owners
  }
}

/**
 * lowerBound returns the first index j with sorted[j] >= target, or
 * sorted.length if there is none. Requires `sorted` ascending.
 */
function lowerBound(sorted: Uint32Array, target: number): number {
  let lo = 0
  let hi = sorted.length
  // Invariant: sorted[j] < target for all j < lo, and sorted[j] >= target for all j >= hi.
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (sorted[mid]! < target) lo = mid + 1
    else hi = mid
  }
  return lo
}

/**
 * sortedUnique copies the peer list sorted and without duplicates, so its
 * order never matters. Order is JS string order (UTF-16 code units), which is
 * byte order for the ASCII URLs peers are.
 */
function sortedUnique(peers: readonly string[]): string[] {
  for (const peer of peers) {
    if (typeof peer !== 'string') throw new InvalidArgumentError(`peer must be a string, got ${typeof peer}`)
  }
  return [...new Set(peers)].sort()
}

/** checkReplicas rejects a replica count that is not an integer from 1 to MAX_REPLICAS. */
function checkReplicas(replicas: number): number {
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > MAX_REPLICAS) {
    throw new InvalidArgumentError(`replicas must be an integer from 1 to ${MAX_REPLICAS}, got ${String(replicas)}`)
  }
  return replicas
}

/** checkHash rejects a hash option that is not a function. */
function checkHash(hash: HashFn): HashFn {
  if (typeof hash !== 'function') throw new InvalidArgumentError(`hash must be a function, got ${typeof hash}`)
  return hash
}
