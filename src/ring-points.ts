/**
 * ring-points: a HashRing's points, kept in 65,536 buckets by their top 16
 * bits, built in time linear in the number of points because a ring is
 * rebuilt, on the event loop, on every change of the peer list: at 2,000
 * peers the balanced ring has 2,048,000 points. (It used to be sorted whole
 * and then walked once per peer from the start: quadratic, 9.7 s at 2,000.)
 *
 * What it answers is part of the ring's placement, a contract between
 * processes of different versions (test/fixtures/ring-balanced.json and
 * ring-golang.json pin it): the ring's points are every peer's points,
 * sorted and distinct, and a point held by several peers belongs to the
 * greatest peer (peers are sorted, so the greatest index). Only how fast it
 * is computed may change.
 *
 * Build does only what a pick needs: every peer's points, counted per
 * bucket, and each bucket's least point, which give the owner of the first
 * point at or after each bucket's start. The points are moved into their
 * buckets (one pass) the first time a lookup needs more, and a bucket is
 * sorted the first time one reads it: the balanced ring's picks never do
 * (its slot table answers), a failover walk does and reads a few buckets.
 * That lazy work is the one mutation after build and changes no answer:
 * every read builds and sorts what it reads first.
 *
 * Making the points is most of a build (SHAKE256 of 4 KiB per balanced
 * peer), so a build may take them from the ring it replaces (`reuse`) for
 * the peers both hold: a change of one peer among 2,000 then hashes one
 * peer. A peer's points depend only on its string, the placement and the
 * replicas, and are never written after they are made, so rings share the
 * arrays themselves: nothing is copied, and the memory of a peer's points
 * is paid once however many rings (the pool keeps a few past ones) hold it.
 */
import { InvalidArgumentError } from './errors.js'
import type { Placement } from './placement.js'

/** PointSource is a previous ring's peers (sorted) and points, made with the same placement and replicas: points to share instead of making again. */
export interface PointSource {
  readonly peers: readonly string[]
  readonly points: RingPoints
}

/** Owners are packed in 16 bits beside a point's low 16 bits, so a ring holds at most 65,534 peers (the ring's tables add 1). */
export const MAX_PEERS = 0xfffe
/** BUCKET_BITS: a point's top 16 bits are its bucket; about points / 65,536 land in each. */
export const BUCKET_BITS = 16
const BUCKETS = 2 ** BUCKET_BITS
const LOW_MASK = BUCKETS - 1
/** A bucket up to this size is sorted by insertion; a larger one (a skewed hash) natively, so the worst case stays n·log n. */
const INSERTION_MAX = 32

/**
 * RingPoints holds every peer's points and answers the owner of the first
 * point at or after a position, and the walk of points from there.
 */
export class RingPoints {
  /** count is the number of points, a point held by several peers counted once per peer. */
  readonly count: number
  /** Bucket b's words are #words[#starts[b], #starts[b + 1]). */
  readonly #starts: Uint32Array
  /** Every peer's points, in peer order: never written, so shared with the rings built from this one. */
  readonly #perPeer: readonly Uint32Array[]
  /**
   * A word is a point's low 16 bits above its owner's index. Within a bucket
   * the top 16 bits are equal, so ordering words orders points, and equal
   * points by owner: the last of a run of equal points is its real owner.
   * Built at first use (#bucketed).
   */
  #words: Uint32Array | undefined
  /** #sorted[b] is 1 once bucket b's words are in ascending order. */
  readonly #sorted: Uint8Array
  /** #firstOwner[b] is the owner of the first point at or after b's start (b << 16), wrapping past the top. */
  readonly #firstOwner: Uint16Array
  /**
   * direct is the table a pick reads before searching: direct[b] is 1 + the
   * owner of every position in bucket b (its first owner), or 0 when a point
   * inside the bucket lies before its last position and so splits it. Keys
   * of a slotted placement sit on bucket starts only: then no bucket is
   * split. Bytes while the owners fit one.
   */
  readonly direct: Uint8Array | Uint16Array

  /**
   * `peers` must be sorted and distinct: a point's owner is the greatest
   * index holding it. `reuse`, when given, must come from the same placement
   * and replicas: the peers it holds keep the points it has for them.
   */
  constructor(peers: readonly string[], placement: Placement, replicas: number, reuse?: PointSource) {
    if (peers.length > MAX_PEERS) throw new InvalidArgumentError(`a ring holds at most ${MAX_PEERS} peers, got ${peers.length}`)
    const counts = new Uint32Array(BUCKETS + 1)
    const least = new Uint32Array(BUCKETS).fill(0xffffffff)
    const oldPeers = reuse?.peers ?? []
    const oldPoints = reuse === undefined ? [] : reuse.points.#perPeer
    const perPeer = new Array<Uint32Array>(peers.length)
    let match = 0
    for (let owner = 0; owner < peers.length; owner++) {
      const peer = peers[owner]!
      // Both lists are sorted (the same string order): a merge finds a peer's old index.
      while (match < oldPeers.length && oldPeers[match]! < peer) match++
      const points = oldPeers[match] === peer ? oldPoints[match]! : placement.points(peer, replicas)
      if (points.length !== replicas) throw new RangeError(`${peer} has ${points.length} points, not ${replicas}`)
      // Each peer's points are counted as they are made, while they are in cache.
      countBuckets(points, owner, counts, least)
      perPeer[owner] = points
    }
    this.#perPeer = perPeer
    this.#firstOwner = new Uint16Array(BUCKETS)
    this.direct = peers.length < 0xff ? new Uint8Array(BUCKETS) : new Uint16Array(BUCKETS)
    // Slotted keys sit on multiples of 2^(32 - slotBits): bucket starts only while slotBits <= BUCKET_BITS.
    this.#index(counts, least, placement.slotBits !== undefined && placement.slotBits <= BUCKET_BITS)
    this.#starts = counts
    this.count = counts[BUCKETS]!
    this.#sorted = new Uint8Array(BUCKETS)
  }

  /** ownerAt returns the owner of the first point at or after `position`, wrapping. Requires count > 0. */
  ownerAt(position: number): number {
    const words = this.#bucketed()
    const bucket = position >>> BUCKET_BITS
    const end = this.#starts[bucket + 1]!
    let index = this.#lowerBound(words, bucket, position)
    if (index === end) return this.#firstOwner[(bucket + 1) & LOW_MASK]!
    while (sharedWithNext(words, index, end)) index++
    return words[index]! & LOW_MASK
  }

  /**
   * walk calls visit with the owner of each distinct point in ring order,
   * from the first at or after `position`, until visit returns true or one
   * lap is done (at most `count` words read).
   */
  walk(position: number, visit: (owner: number) => boolean): void {
    if (this.count === 0) return
    const words = this.#bucketed()
    let bucket = position >>> BUCKET_BITS
    let index = this.#lowerBound(words, bucket, position)
    for (let step = 0; step < this.count; step++, index++) {
      if (index === this.count) {
        index = 0
        bucket = 0
        this.#sort(words, 0)
      }
      // Entering a bucket (past empty ones): sort it before reading it.
      while (index >= this.#starts[bucket + 1]!) this.#sort(words, ++bucket)
      if (sharedWithNext(words, index, this.#starts[bucket + 1]!)) continue
      if (visit(words[index]! & LOW_MASK)) return
    }
  }

  /** #bucketed returns the words, moving the points into their buckets on first use. */
  #bucketed(): Uint32Array {
    this.#words ??= packByBucket(this.#perPeer, this.#starts)
    return this.#words
  }

  /** #lowerBound sorts the bucket of `position` and returns the index of its first word at or after position (maybe its end). */
  #lowerBound(words: Uint32Array, bucket: number, position: number): number {
    this.#sort(words, bucket)
    const target = ((position & LOW_MASK) << BUCKET_BITS) >>> 0
    let lo = this.#starts[bucket]!
    let hi = this.#starts[bucket + 1]!
    // Invariant: words before lo are < target, words from hi on are >= target.
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (words[mid]! < target) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** #sort sorts bucket b's words once. */
  #sort(words: Uint32Array, bucket: number): void {
    if (this.#sorted[bucket] === 1) return
    sortRange(words, this.#starts[bucket]!, this.#starts[bucket + 1]!)
    this.#sorted[bucket] = 1
  }

  /**
   * #index turns the buckets' sizes (`counts[b + 1]`) into their starts
   * (`counts[b]`, the total at `counts[BUCKETS]`) and fills #firstOwner and
   * direct from each bucket's least key (countBuckets): a bucket and the
   * empty ones just below it share the owner of its least point; the empty
   * ones above the last point wrap to the lowest point's. One pass, in plain
   * loops without calls: it runs once per build, often before the JIT has
   * compiled anything.
   */
  #index(counts: Uint32Array, least: Uint32Array, slotted: boolean): void {
    const firstOwner = this.#firstOwner
    const direct = this.direct
    let pending = 0
    for (let b = 0; b < BUCKETS; b++) {
      const size = counts[b + 1]!
      counts[b + 1] = counts[b]! + size
      if (size === 0) continue
      // A least key holds its owner in its low 16 bits, complemented.
      const owner = (least[b]! & LOW_MASK) ^ LOW_MASK
      for (; pending <= b; pending++) {
        firstOwner[pending] = owner
        direct[pending] = 1 + owner
      }
      // A point before the bucket's last position splits it (unless keys sit on its start only).
      if (!slotted && least[b]! >>> BUCKET_BITS < LOW_MASK) direct[b] = 0
    }
    if (pending === 0) return
    for (; pending < BUCKETS; pending++) {
      firstOwner[pending] = firstOwner[0]!
      direct[pending] = 1 + firstOwner[0]!
    }
  }
}

/**
 * countBuckets adds each of `owner`'s points to the count of its bucket, at
 * counts[bucket + 1], keeps in least[bucket] the least key (low 16 bits above
 * 0xffff - owner: the least point and, of its holders, the greatest owner).
 */
function countBuckets(points: Uint32Array, owner: number, counts: Uint32Array, least: Uint32Array): void {
  const ownerKey = owner ^ LOW_MASK
  for (let k = 0; k < points.length; k++) {
    const point = points[k]!
    const bucket = point >>> BUCKET_BITS
    counts[bucket + 1]!++
    const key = (((point & LOW_MASK) << BUCKET_BITS) | ownerKey) >>> 0
    if (key < least[bucket]!) least[bucket] = key
  }
}

/** sharedWithNext says the word at index has the next word's point (a greater peer holds it too). Requires a sorted bucket ending at end. */
function sharedWithNext(words: Uint32Array, index: number, end: number): boolean {
  return index + 1 < end && words[index + 1]! >>> BUCKET_BITS === words[index]! >>> BUCKET_BITS
}

/**
 * packByBucket moves each point into its bucket (bucket b holds
 * [starts[b], starts[b + 1])) as a word: its low 16 bits above its owner.
 */
function packByBucket(perPeer: readonly Uint32Array[], starts: Uint32Array): Uint32Array {
  const next = starts.slice(0, BUCKETS)
  const words = new Uint32Array(starts[BUCKETS]!)
  perPeer.forEach((points, owner) => {
    for (let k = 0; k < points.length; k++) {
      const point = points[k]!
      words[next[point >>> BUCKET_BITS]!++] = (((point & LOW_MASK) << BUCKET_BITS) | owner) >>> 0
    }
  })
  return words
}

/** sortRange sorts words[start, end) ascending: by insertion when short, natively when long. */
function sortRange(words: Uint32Array, start: number, end: number): void {
  if (end - start > INSERTION_MAX) {
    words.subarray(start, end).sort()
    return
  }
  for (let i = start + 1; i < end; i++) {
    const word = words[i]!
    let j = i - 1
    // Invariant: words[start, i) is sorted; the greater ones shift right until word's place is found.
    while (j >= start && words[j]! > word) {
      words[j + 1] = words[j]!
      j--
    }
    words[j + 1] = word
  }
}
