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
 *
 * Placement is a wire-level contract: during a rolling upgrade processes of
 * different versions share one ring and must agree on every key's owner and
 * failover order. So no change may move a key of an existing ring kind, for
 * any peer list or replicas. Golden vectors pin both kinds:
 * test/fixtures/ring-golang.json (from Go groupcache) and ring-balanced.json
 * (recorded once from the shipped balanced ring). Never regenerate or edit
 * them to make a test pass; a different placement is a new ring name (a new
 * RingKind) with vectors of its own.
 */
import { InvalidArgumentError } from './errors.js'
import { RING_KINDS, balancedPlacement, groupcachePlacement, type HashFn, type Placement, type RingKind } from './placement.js'
import { BUCKET_BITS, RingPoints } from './ring-points.js'

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

/**
 * HashRing maps keys to peers by consistent hashing, so that adding or
 * removing one peer moves only that peer's share of the keys.
 *
 * A ring is immutable once built: to change the peers, build a new HashRing
 * and swap the reference, so a lookup never sees a half-updated ring. (Its
 * points finish some work lazily, at first use: that changes no answer.)
 * Pass the ring it replaces as `previous` and the new one shares the points
 * of the peers both hold instead of hashing them again: at 2,000 balanced
 * peers a change of one peer then costs a pass over the points, not 2,000
 * SHAKE256 hashes (most of a whole build).
 */
export class HashRing {
  /** The peers on the ring: a sorted, deduplicated, frozen copy of the list given. */
  readonly peers: readonly string[]
  /** kind is the placement this ring uses. */
  readonly kind: RingKind
  readonly #keyHash: HashFn
  /** The options' hash and the replicas: a ring reuses another's points only when both (and the kind) are the same. */
  readonly #hash: HashFn | undefined
  readonly #replicas: number
  /** Every peer's points; owners are indexes in `peers`. */
  readonly #points: RingPoints
  /**
   * The circle is cut into 2^16 equal buckets (the points' buckets).
   * #direct[b] is 1 + the owner of every key position in bucket b, or 0 when
   * a point inside the bucket splits it (then the points are searched). Keys
   * of a slotted placement land only on bucket starts, so no bucket is split:
   * a pick is one hash and one read of a table that stays in cache (64 KiB
   * under 255 peers; measured: a table of 2^17 entries or more halves pick's speed).
   */
  readonly #direct: Uint8Array | Uint16Array

  /**
   * `previous`, when given, is the ring this one replaces: the points of the
   * peers both hold are taken from it when it was built with the same ring
   * kind, replicas and hash (else it is ignored). The ring is the same either
   * way; only the build is faster.
   */
  constructor(peers: readonly string[], options: RingOptions = {}, previous?: HashRing) {
    this.kind = checkKind(options.ring ?? 'balanced')
    const placement = placementFor(this.kind, options.hash)
    this.#replicas = checkReplicas(options.replicas ?? placement.defaultReplicas)
    this.#hash = options.hash
    this.#keyHash = placement.keyHash
    this.peers = Object.freeze(sortedUnique(peers))
    const reuse = previous instanceof HashRing && previous.#placedAlike(this) ? { peers: previous.peers, points: previous.#points } : undefined
    this.#points = new RingPoints(this.peers, placement, this.#replicas, reuse)
    this.#direct = this.#points.direct
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
    if (this.#points.count === 0) return undefined
    const position = this.#keyHash(key)
    const direct = this.#direct[position >>> BUCKET_BITS]!
    if (direct !== 0) return this.peers[direct - 1]
    return this.peers[this.#points.ownerAt(position)]
  }

  /**
   * pickWhere walks the ring from `key`'s position and returns the first
   * peer, in ring order and each distinct peer considered once, for which
   * `accept(peer)` is true; undefined if none is. It serves failover: skip
   * the peers that are down and fall to the next one, as every process would.
   * Bounded: at most `peers.length` calls to `accept` and one lap of the ring.
   */
  pickWhere(key: string, accept: (peer: string) => boolean): string | undefined {
    const seen = new Uint8Array(this.peers.length)
    let distinct = 0
    let found: string | undefined
    this.#points.walk(this.#keyHash(key), (owner) => {
      if (seen[owner] === 1) return false
      seen[owner] = 1
      distinct++
      const peer = this.peers[owner]!
      if (accept(peer)) found = peer
      return found !== undefined || distinct === this.peers.length
    })
    return found
  }

  /** #placedAlike says `other` puts a peer's points where this ring does: same kind, replicas and hash. */
  #placedAlike(other: HashRing): boolean {
    return this.kind === other.kind && this.#replicas === other.#replicas && this.#hash === other.#hash
  }

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
