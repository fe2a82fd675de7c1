/**
 * rate: RequestRate estimates each key's recent request rate (requests per
 * second over about the last minute), in bounded memory, for the
 * `minute_qps` an owner puts in its answers (groupcache's GetResponse field
 * 2): askers weigh it when they decide what to mirror in their hot caches.
 *
 * A count-min sketch of 16-bit counters halved every HALF_LIFE_MS: with a
 * steady rate r, a counter τ ms after a halving holds r·(HALF_LIFE + τ), so
 * count / (HALF_LIFE + τ) estimates r without keeping any timestamps per key.
 * The clock is injected; halving happens on the next record after its time.
 */
import { SKETCH_DEPTH, counterIndex, hashKey, nextPowerOfTwo } from './sketch.js'

/** HALF_LIFE_MS is how often counts halve: a key's rate reflects about the last minute. */
export const HALF_LIFE_MS = 30_000
const MAX_COUNT = 0xffff

/** RequestRate counts requests per key and tells their recent rate. */
export class RequestRate {
  readonly #counts: Uint16Array
  readonly #width: number
  readonly #clock: () => number
  readonly #started: number
  #halvedAt: number | undefined

  /** capacity is how many distinct keys it should tell apart; clock gives epoch milliseconds. */
  constructor(capacity: number, clock: () => number) {
    this.#width = nextPowerOfTwo(Math.max(16, capacity))
    this.#counts = new Uint16Array(this.#width * SKETCH_DEPTH)
    this.#clock = clock
    this.#started = clock()
  }

  /** bytes is the sketch's memory. */
  get bytes(): number {
    return this.#counts.byteLength
  }

  /**
   * record counts one request for key and returns its rate, counting this
   * one (what perSecond would say next): the owner does both for every get
   * it serves, so the key is hashed and the clock read once.
   */
  record(key: string): number {
    const now = this.#clock()
    this.#age(now)
    const hash = hashKey(key)
    let count = MAX_COUNT
    for (let row = 0; row < SKETCH_DEPTH; row++) {
      const i = counterIndex(hash, row, this.#width)
      const counted = this.#counts[i] as number
      if (counted < MAX_COUNT) this.#counts[i] = counted + 1
      count = Math.min(count, this.#counts[i] as number)
    }
    return this.#rate(count, now)
  }

  /** perSecond estimates key's requests per second over about the last minute (0 for a key never counted). */
  perSecond(key: string): number {
    const now = this.#clock()
    this.#age(now)
    const hash = hashKey(key)
    let count = MAX_COUNT
    for (let row = 0; row < SKETCH_DEPTH; row++) count = Math.min(count, this.#counts[counterIndex(hash, row, this.#width)] as number)
    return this.#rate(count, now)
  }

  /** #rate turns a key's count into requests per second over the window that count covers at `now`. */
  #rate(count: number, now: number): number {
    const windowMs = this.#halvedAt === undefined ? now - this.#started : HALF_LIFE_MS + (now - this.#halvedAt)
    return count === 0 ? 0 : (count * 1000) / Math.max(1000, windowMs)
  }

  /** Halves every count once per HALF_LIFE_MS gone by (all of them after a long silence). */
  #age(now: number): void {
    const since = this.#halvedAt ?? this.#started
    const halvings = Math.floor((now - since) / HALF_LIFE_MS)
    if (halvings <= 0) return
    const shift = Math.min(16, halvings)
    for (let i = 0; i < this.#counts.length; i++) this.#counts[i] = (this.#counts[i] as number) >>> shift
    this.#halvedAt = since + halvings * HALF_LIFE_MS
  }
}
