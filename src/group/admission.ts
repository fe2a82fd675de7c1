/**
 * admission: HotAdmission decides whether a value fetched from its owner is
 * mirrored into the hot cache, on the model of Caffeine's W-TinyLFU:
 *
 *  - while the hot cache has room (the budget is not full, or hot is under
 *    its share of main), every fetched value is admitted;
 *  - when admitting would evict a hot entry, the candidate is admitted only
 *    if it is asked for more often than that victim (hot's least recently
 *    used entry), by a frequency sketch of this process's gets that neither
 *    cache answered — so a one-hit wonder never pushes out a key that is
 *    asked for again and again.
 *
 * Unlike Caffeine, hits are not counted: the hit path stays as fast as it
 * was, and LRU order already protects what is hit (the victim is always the
 * entry hit least recently), so the sketch only has to rank that victim
 * against candidates by how often each had to be fetched.
 *
 * The candidate's frequency also takes the owner's `minute_qps` into
 * account: the cluster-wide rate at the owner, divided among the askers and
 * turned into the count such a rate makes in one aging period of the sketch
 * here. A key the cluster wants is then admitted before this process alone
 * has seen it often (after a restart, say). Go peers do not send it.
 *
 * With `hotCacheProbability` set, admission is groupcache's coin instead.
 */
import type { CachePair } from '../cache.js'
import { FrequencySketch, hashKey } from './sketch.js'

/** HotAdmissionOptions configure a group's admission policy. */
export interface HotAdmissionOptions {
  caches: CachePair
  /** How many distinct keys the sketch should tell apart. */
  capacity: number
  /** The frequency sketch (tests inject one to age it by hand). @default a new FrequencySketch(capacity) */
  sketch?: FrequencySketch
  /** When set, the coin: mirror with this probability (frequency is ignored). */
  probability: number | undefined
  /** Uniform in [0, 1). */
  random: () => number
  /** Epoch milliseconds. */
  clock: () => number
}

/** HotAdmission decides which fetched values the hot cache mirrors. */
export class HotAdmission {
  readonly #caches: CachePair
  readonly #sketch: FrequencySketch | undefined
  readonly #probability: number | undefined
  readonly #random: () => number
  readonly #clock: () => number
  /** When the sketch's current aging period began, and how long the last one took (ms; 0 before the first ends). */
  #periodStart: number
  #lastPeriodMs = 0

  constructor(options: HotAdmissionOptions) {
    this.#caches = options.caches
    this.#probability = options.probability
    this.#random = options.random
    this.#clock = options.clock
    this.#sketch = options.probability === undefined ? (options.sketch ?? new FrequencySketch(options.capacity)) : undefined
    this.#periodStart = options.clock()
  }

  /** sketchBytes is the memory of the frequency sketch (0 with the coin). */
  get sketchBytes(): number {
    return this.#sketch?.bytes ?? 0
  }

  /** coin is true when the user chose groupcache's coin (hotCacheProbability): admit by flip(), no sizes or counts needed. */
  get coin(): boolean {
    return this.#probability !== undefined
  }

  /** flip is the coin: true with the chosen probability. */
  flip(): boolean {
    return this.#random() < (this.#probability as number)
  }

  /** record counts a get that neither cache answered (call only then: hits stay free). */
  record(key: string): void {
    if (this.#sketch === undefined || !this.#sketch.increment(hashKey(key))) return
    const now = this.#clock()
    this.#lastPeriodMs = now - this.#periodStart
    this.#periodStart = now
  }

  /**
   * admit tells whether to mirror key's value of `size` bytes (its budget
   * size) in hot. `minuteQps` is the owner's rate for the key, `askers` the
   * number of processes that ask that owner (the other peers).
   */
  admit(key: string, size: number, minuteQps: number | undefined, askers: number): boolean {
    if (this.#probability !== undefined) return this.#random() < this.#probability
    const victim = this.#caches.hotVictim(size)
    if (victim === null) return true
    if (victim === undefined) return false
    const sketch = this.#sketch as FrequencySketch
    const candidate = Math.max(sketch.frequency(hashKey(key)), this.#clusterCount(minuteQps, askers))
    return candidate > sketch.frequency(hashKey(victim))
  }

  /**
   * The count a key asked for at the owner's minute_qps would reach here in
   * one aging period: its share of the rate (one of `askers`) times the
   * period's length (the last one, or the current one so far).
   */
  #clusterCount(minuteQps: number | undefined, askers: number): number {
    if (minuteQps === undefined || !(minuteQps > 0) || askers < 1) return 0
    const periodMs = this.#lastPeriodMs > 0 ? this.#lastPeriodMs : this.#clock() - this.#periodStart
    return Math.min(15, Math.floor(((minuteQps / askers) * periodMs) / 1000))
  }
}
