/**
 * placement: where keys and peers land on a HashRing. The ring itself only
 * sorts points and finds the first one at or after a key; a Placement says
 * how a key is hashed to a position and which positions (points) a peer
 * holds. Two exist:
 *
 * - `groupcache`: golang/groupcache's consistenthash exactly (CRC-32 IEEE of
 *   the UTF-8 bytes; point i of peer P is crc32(String(i) + P); 50 points), so
 *   Node and Go processes agree on owners. It is uneven: the CRC-32s of
 *   near-identical strings (`0http://a`, `1http://a`, …) are correlated, so a
 *   peer's points bunch together and more points do not spread them.
 * - `balanced` (the default): a peer's points are independent and uniform,
 *   read from SHAKE256(P), a cryptographic XOF (its first 4·replicas bytes as
 *   big-endian uint32s), 1024 per peer: a peer's share then varies by about
 *   1/√1024 = 3%. A key's position is the murmur3 finalizer (fmix32) of its
 *   CRC-32, rounded down to one of 65,536 slots (its top 16 bits), so the
 *   ring answers from a 64 KiB table of slot owners that stays in cache
 *   (measured: a table of 2^17 entries or more halves pick's speed). Points
 *   cost one hash per peer at build; a key costs one native crc32 call, a few
 *   integer operations and one table read. Slots limit how finely keys
 *   split: fine up to a few hundred peers (about 65,536 / n slots each).
 */
import { createHash } from 'node:crypto'
import { endianness } from 'node:os'
import { crc32 } from 'node:zlib'

/** HashFn maps a key (hashed as its UTF-8 bytes) to an unsigned 32-bit integer. */
export type HashFn = (data: string) => number

/** RingKind names a placement: `balanced` (default) or `groupcache` (Go-compatible). */
export type RingKind = 'balanced' | 'groupcache'

/** RING_KINDS lists every RingKind, for validating options and env values. */
export const RING_KINDS: readonly RingKind[] = ['balanced', 'groupcache']

/** Placement positions keys and peers on a ring. */
export interface Placement {
  /** keyHash is the unsigned 32-bit position of a key. */
  readonly keyHash: HashFn
  /** points returns the positions of `peer`'s `replicas` points (duplicates allowed), in a fresh array the ring keeps and never writes (rings built from it share it). */
  points(peer: string, replicas: number): Uint32Array
  /** defaultReplicas is the points per peer when the options name none. */
  readonly defaultReplicas: number
  /**
   * slotBits, when set, says keyHash only returns multiples of 2^(32 -
   * slotBits): keys fall into 2^slotBits slots, and the ring answers a pick
   * from a table of slot owners without searching.
   */
  readonly slotBits?: number
}

/** crc32Ieee is Go groupcache's hash: zlib's crc32 UTF-8-encodes a string itself, so it allocates nothing. */
export const crc32Ieee: HashFn = (data) => crc32(data) >>> 0

/**
 * groupcachePlacement is golang/groupcache's ring with `hash` (CRC-32 IEEE
 * unless a test hands one in). Point i of a peer hashes `String(i) + peer`;
 * with CRC-32 that is the peer's bytes run on from the CRC of `String(i)`
 * (zlib's crc32 takes a starting value), so a build makes no strings: the
 * CRCs of the prefixes are worked out once per placement, which is one
 * ring's.
 */
export function groupcachePlacement(hash: HashFn = crc32Ieee): Placement {
  const prefixes: number[] = []
  const points = (peer: string, replicas: number): Uint32Array => {
    const into = new Uint32Array(replicas)
    if (hash !== crc32Ieee) {
      for (let i = 0; i < replicas; i++) into[i] = hash(String(i) + peer)
      return into
    }
    for (let i = prefixes.length; i < replicas; i++) prefixes.push(crc32(String(i)))
    for (let i = 0; i < replicas; i++) into[i] = crc32(peer, prefixes[i]!)
    return into
  }
  return { keyHash: (key) => hash(key) >>> 0, points, defaultReplicas: 50 }
}

/** BALANCED_SLOT_BITS: the balanced ring places keys in 2^16 slots (Redis Cluster uses 2^14). */
const BALANCED_SLOT_BITS = 16
const SLOT_MASK = -(2 ** (32 - BALANCED_SLOT_BITS))

/** balancedPlacement is the even ring: SHAKE256 points, keys in the slot of fmix32(crc32). */
export const balancedPlacement: Placement = {
  keyHash: (key) => (fmix32(crc32(key)) & SLOT_MASK) >>> 0,
  points: shakePoints,
  defaultReplicas: 1024,
  slotBits: BALANCED_SLOT_BITS,
}

/**
 * shakePoints reads `replicas` uint32 points from SHAKE256 of the peer's
 * UTF-8 bytes. An XOF gives as many independent uniform words as asked for
 * in one call (one hash per peer, whatever the replicas), and any
 * language's SHA-3 library reproduces them.
 */
function shakePoints(peer: string, replicas: number): Uint32Array {
  return bigEndianWords(createHash('shake256', { outputLength: 4 * replicas }).update(peer, 'utf8').digest())
}

/** NATIVE_BIG_ENDIAN: whether a Uint32Array reads bytes big-endian on this machine (almost never: x86 and ARM are little-endian). */
const NATIVE_BIG_ENDIAN = endianness() === 'BE'

/**
 * bigEndianWords returns `bytes` read as big-endian uint32s, reusing (and
 * reordering) the buffer: one native byte swap instead of a read call per
 * word, which at 2,000 peers' 1,024 points was a good part of a ring build.
 */
export function bigEndianWords(bytes: Buffer): Uint32Array {
  if (bytes.length % 4 !== 0) throw new RangeError(`bigEndianWords needs whole words, got ${bytes.length} bytes`)
  // A Uint32Array view needs a 4-byte-aligned start: Buffer.alloc is (its own ArrayBuffer), a pooled or sliced buffer may not be.
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : Buffer.alloc(bytes.length)
  if (aligned !== bytes) bytes.copy(aligned)
  if (!NATIVE_BIG_ENDIAN) aligned.swap32()
  return new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.length / 4)
}

/**
 * fmix32 is murmur3's 32-bit finalizer: a bijection in which every input bit
 * flips each output bit with probability about 1/2. CRC-32 is linear, so keys
 * that differ in a counter (`user:1`, `user:2`, …) get related CRCs; fmix32
 * scatters them uniformly around the ring. Being a bijection it adds no
 * collisions.
 */
export function fmix32(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}
