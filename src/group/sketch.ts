/**
 * sketch: FrequencySketch estimates how often each key was asked for, in
 * bounded memory, as Caffeine's TinyLFU does: a count-min sketch of 4-bit
 * counters (four per key, the estimate is their minimum) that halves every
 * counter once it has counted `sampleSize` events, so old popularity fades
 * and the estimate follows what is asked for now.
 *
 * Collisions only ever raise an estimate (count-min), never lower it.
 */

/** Depth of the sketch: counters per key. */
const DEPTH = 4
/** Counters saturate at 15: four bits each, eight to a 32-bit word. */
const MAX_COUNT = 15
const COUNTERS_PER_WORD = 8
/** Caffeine's sample: halve after 10 events per counter of a row. */
const SAMPLE_FACTOR = 10

/** FrequencySketch counts keys in 4-bit counters that age by halving. */
export class FrequencySketch {
  readonly #table: Uint32Array
  /** Counters per row, a power of two. */
  readonly #width: number
  readonly #sampleSize: number
  #additions = 0

  /** capacity is how many distinct keys the sketch should tell apart (rounded up to a power of two, at least 16). */
  constructor(capacity: number) {
    this.#width = nextPowerOfTwo(Math.max(16, capacity))
    this.#table = new Uint32Array((this.#width * DEPTH) / COUNTERS_PER_WORD)
    this.#sampleSize = SAMPLE_FACTOR * this.#width
  }

  /** bytes is the sketch's memory (its counter table). */
  get bytes(): number {
    return this.#table.byteLength
  }

  /** sampleSize is how many increments make the sketch halve every counter. */
  get sampleSize(): number {
    return this.#sampleSize
  }

  /**
   * increment counts one event for key (hash = `hashKey(key)`), halving
   * everything every sampleSize events; true when this call halved.
   */
  increment(hash: number): boolean {
    let added = false
    for (let row = 0; row < DEPTH; row++) added = this.#incrementAt(this.#index(hash, row)) || added
    if (!added || ++this.#additions < this.#sampleSize) return false
    this.halve()
    return true
  }

  /** frequency estimates how often key (hash = `hashKey(key)`) was counted, 0..15. */
  frequency(hash: number): number {
    let min = MAX_COUNT
    for (let row = 0; row < DEPTH; row++) min = Math.min(min, this.#countAt(this.#index(hash, row)))
    return min
  }

  /** halve ages the sketch: every counter is halved (Caffeine's reset). */
  halve(): void {
    const table = this.#table
    // Shifting a word right by one halves its eight counters at once; the mask drops each counter's low bit into the next.
    for (let i = 0; i < table.length; i++) table[i] = ((table[i] as number) >>> 1) & 0x7777_7777
    this.#additions = Math.floor(this.#additions / 2)
  }

  #index(hash: number, row: number): number {
    return counterIndex(hash, row, this.#width)
  }

  #countAt(index: number): number {
    const word = this.#table[index >>> 3] as number
    return (word >>> ((index & 7) << 2)) & MAX_COUNT
  }

  /** Adds one to a counter unless it is saturated; true when it changed. */
  #incrementAt(index: number): boolean {
    const shift = (index & 7) << 2
    const word = this.#table[index >>> 3] as number
    if (((word >>> shift) & MAX_COUNT) === MAX_COUNT) return false
    this.#table[index >>> 3] = word + (1 << shift)
    return true
  }
}

/** Odd multipliers that make each row's index an independent mix of the key's hash. */
const ROW_SEEDS = [0x9e37_79b1, 0x85eb_ca6b, 0xc2b2_ae35, 0x27d4_eb2f]

/**
 * counterIndex is where hash counts in row of a count-min table of `width`
 * counters per row (a power of two): rows use different mixes of the hash,
 * so two keys that collide in one row rarely collide in all.
 */
export function counterIndex(hash: number, row: number, width: number): number {
  const mixed = Math.imul(hash ^ (hash >>> 16), ROW_SEEDS[row] as number)
  return row * width + ((mixed ^ (mixed >>> 15)) & (width - 1))
}

/** SKETCH_DEPTH is how many counters (rows) a key has in a count-min sketch. */
export const SKETCH_DEPTH = DEPTH

/** Keys longer than this are hashed by their length, head and tail: bounded work per request for 64 KiB keys. */
const MAX_HASHED_UNITS = 256

/**
 * hashKey is a 32-bit FNV-1a hash of the key's UTF-16 code units (of a long
 * key, its length and its first and last 128): cheap, and only the
 * sketches depend on it (not the wire, not the ring), where a collision only
 * raises an estimate.
 */
export function hashKey(key: string): number {
  const n = key.length
  if (n <= MAX_HASHED_UNITS) return fnv(key, 0, n, 0x811c_9dc5) >>> 0
  const half = MAX_HASHED_UNITS / 2
  return fnv(key, n - half, n, fnv(key, 0, half, Math.imul(0x811c_9dc5 ^ n, 0x0100_0193))) >>> 0
}

function fnv(key: string, from: number, to: number, seed: number): number {
  let hash = seed
  for (let i = from; i < to; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x0100_0193)
  return hash
}

/** nextPowerOfTwo is the least power of two >= n (n >= 1). */
export function nextPowerOfTwo(n: number): number {
  return 2 ** Math.ceil(Math.log2(n))
}
