/**
 * ring: the consistent-hash ring that decides which peer owns a key.
 *
 * Each peer holds points on a 32-bit circle; a key belongs to the peer of the
 * first point at or after the key's position, wrapping past the top. Adding
 * or removing one peer moves only the keys on that peer's arcs. Where points
 * and keys land is the ring's Placement (placement.ts): `balanced` by
 * default, or `groupcache`, which matches github.com/golang/groupcache's
 * consistenthash so Node and Go processes agree on every key's owner.
 *
 * On a point collision the lexicographically greater peer string wins
 * (galaxycache's rule, and Go's when peers are added in sorted order), so
 * every process agrees whatever order its peer list came in.
 */
import { InvalidArgumentError } from './errors.js'
import { RING_KINDS, balancedPlacement, groupcachePlacement, type HashFn, type Placement, type RingKind } from './placement.js'

export type { HashFn, RingKind } from './placement.js'

/** RingOptions choose a HashRing's placement and its points per peer. */
export interface RingOptions {
  /**
   * Placement of keys and points: `balanced` spreads keys evenly; `groupcache`
   * is Go groupcache's ring, needed only in a cluster that includes Go peers.
   * @default 'balanced'
   */
  ring?: RingKind
  /** Points per peer: more spread keys more evenly and cost more at build. @default 1024 (balanced), 50 (groupcache) */
  replicas?: number
  /** Hash of keys and points of the `groupcache` ring (for tests). @default CRC-32 IEEE of the UTF-8 bytes */
  hash?: HashFn
}

const MAX_REPLICAS = 10_000
/** Owners are stored 1-based in a Uint16Array (0 = search), so a ring holds at most 65,534 peers. */
const MAX_PEERS = 0xfffe
/** The owner table has at most 2^16 entries: a 64 KiB table stays in the CPU's cache, a larger one does not. */
const MAX_TABLE_BITS = 16
const MIN_TABLE_BITS = 8

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
  /** kind is the placement this ring uses. */
  readonly kind: RingKind
  readonly #keyHash: HashFn
  /** Point positions, sorted ascending, no duplicates. */
  readonly #points: Uint32Array
  /** #owners[j] is the index in `peers` of the peer owning #points[j]. */
  readonly #owners: Uint32Array
  /**
   * The circle is cut into 2^(32 - #shift) equal buckets. #direct[b] is 1 +
   * the owner of every key position in bucket b, or 0 when a point inside
   * the bucket splits it (then the points are searched). Keys of a slotted
   * placement land only on bucket starts, so no bucket is split: a pick is
   * one hash and one read of a table small enough to stay in cache.
   */
  readonly #direct: Uint8Array | Uint16Array
  readonly #shift: number

  constructor(peers: readonly string[], options: RingOptions = {}) {
    this.kind = checkKind(options.ring ?? 'balanced')
    const placement = placementFor(this.kind, options.hash)
    const replicas = checkReplicas(options.replicas ?? placement.defaultReplicas)
    this.#keyHash = placement.keyHash
    this.peers = Object.freeze(sortedUnique(peers))
    ;[this.#points, this.#owners] = placePoints(this.peers, placement, replicas)
    this.#shift = 32 - (placement.slotBits ?? tableBits(this.#points.length))
    this.#direct = this.#directOwners(placement.slotBits !== undefined)
  }

  /** size is the number of peers on the ring. */
  get size(): number {
    return this.peers.length
  }

  /** hashOf returns the key's position on the ring (for tests and debugging). */
  hashOf(key: string): number {
    return this.#keyHash(key)
  }

  /** pick returns the peer that owns `key`, or undefined when the ring is empty. */
  pick(key: string): string | undefined {
    if (this.#points.length === 0) return undefined
    const position = this.#keyHash(key)
    const direct = this.#direct[position >>> this.#shift]!
    if (direct !== 0) return this.peers[direct - 1]
    return this.peers[this.#owners[this.#firstPointAt(position)]!]
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
    const start = this.#firstPointAt(this.#keyHash(key))
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
   * #firstPointAt returns the index of the first point at or after
   * `position`, wrapping to point 0 past the last one. Requires a non-empty ring.
   */
  #firstPointAt(position: number): number {
    const index = lowerBound(this.#points, position)
    return index === this.#points.length ? 0 : index
  }

  /**
   * #directOwners builds #direct in one merge pass over the points. A bucket
   * no point splits belongs wholly to the owner of the first point at or
   * after its start; with `slotted` keys, which sit on bucket starts, so
   * does every bucket.
   */
  #directOwners(slotted: boolean): Uint8Array | Uint16Array {
    // Keeps: #direct[b] !== 0 only where every key position of bucket b has the same first point.
    const count = 2 ** (32 - this.#shift)
    const direct = this.peers.length < 0xff ? new Uint8Array(count) : new Uint16Array(count)
    const points = this.#points
    if (points.length === 0) return direct
    const width = 2 ** this.#shift
    let j = 0
    for (let bucket = 0; bucket < count; bucket++) {
      const end = (bucket + 1) * width
      const first = j
      while (j < points.length && points[j]! < end) j++
      // Keys up to the bucket's first point go to it, keys past it elsewhere: split unless it is the last position.
      const split = j > first && points[first]! < end - 1
      if (slotted || !split) direct[bucket] = 1 + this.#owners[first === points.length ? 0 : first]!
    }
    return direct
  }
}

/**
 * placePoints returns every peer's points, sorted and distinct, and each
 * point's owner. Owners are written peer by peer in ascending order (peers
 * are sorted), so on a collision the greater peer string writes last and
 * keeps the point: the collision rule, whatever the input order. (Uint32
 * arrays sort natively; packing owner and point into one float64 sorted ten
 * times slower, and a binary search per point cost more than the walk.)
 */
function placePoints(peers: readonly string[], placement: Placement, replicas: number): [Uint32Array, Uint32Array] {
  if (peers.length > MAX_PEERS) throw new InvalidArgumentError(`a ring holds at most ${MAX_PEERS} peers, got ${peers.length}`)
  const perPeer = peers.map((peer) => Uint32Array.from(placement.points(peer, replicas)).sort())
  const all = new Uint32Array(peers.length * replicas)
  perPeer.forEach((points, index) => all.set(points, index * replicas))
  const points = distinct(all.sort())
  const owners = new Uint32Array(points.length)
  perPeer.forEach((mine, index) => {
    // Both lists are sorted: one forward walk finds each of this peer's points.
    let j = 0
    for (let k = 0; k < mine.length; k++) {
      while (points[j]! < mine[k]!) j++
      owners[j] = index
    }
  })
  return [points, owners]
}

/** distinct returns a sorted array without its repeated values. */
function distinct(sorted: Uint32Array): Uint32Array {
  let count = 0
  for (let k = 0; k < sorted.length; k++) {
    if (count === 0 || sorted[count - 1] !== sorted[k]) sorted[count++] = sorted[k]!
  }
  return sorted.slice(0, count)
}

/** tableBits sizes an exact ring's owner table at about four buckets per point, within bounds. */
function tableBits(points: number): number {
  return Math.min(MAX_TABLE_BITS, Math.max(MIN_TABLE_BITS, Math.ceil(Math.log2(points + 1)) + 2))
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

/** placementFor returns the placement of `kind`; a hash is for the groupcache ring only. */
function placementFor(kind: RingKind, hash: HashFn | undefined): Placement {
  if (hash !== undefined && typeof hash !== 'function') throw new InvalidArgumentError(`hash must be a function, got ${typeof hash}`)
  if (kind === 'groupcache') return groupcachePlacement(hash)
  if (hash !== undefined) throw new InvalidArgumentError("hash applies to ring 'groupcache' only; the balanced ring hashes with its own functions")
  return balancedPlacement
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

/** checkKind rejects a ring kind that is not one of RING_KINDS. */
function checkKind(kind: unknown): RingKind {
  if (!RING_KINDS.includes(kind as RingKind)) {
    throw new InvalidArgumentError(`ring must be ${RING_KINDS.map((k) => `'${k}'`).join(' or ')}, got ${JSON.stringify(kind)}`)
  }
  return kind as RingKind
}

/** checkReplicas rejects a replica count that is not an integer from 1 to MAX_REPLICAS. */
function checkReplicas(replicas: number): number {
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > MAX_REPLICAS) {
    throw new InvalidArgumentError(`replicas must be an integer from 1 to ${MAX_REPLICAS}, got ${String(replicas)}`)
  }
  return replicas
}
