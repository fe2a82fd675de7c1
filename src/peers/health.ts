/**
 * health: whether a peer is worth asking. A dead owner must not make every
 * get wait for a failed connection (golang/groupcache #77, #95), so failures
 * are counted per peer: after `failureThreshold` consecutive transport
 * failures, or one timeout (a black hole costs a whole timeout per request),
 * the peer is marked down and its keys go elsewhere. While down it is probed
 * in the background with bounded, jittered exponential backoff; the first
 * answer marks it up again.
 *
 * Only transport failures count. An owner's final answer (not found, loader
 * failed) proves the peer is alive.
 */
import { DEFAULTS } from '../options.js'

/** HealthOptions tune when a peer is marked down and how it is probed. */
export interface HealthOptions {
  /** Consecutive transport failures that mark a peer down. @default 3 */
  failureThreshold?: number
  /** First probe delay after a peer goes down, in ms. @default 250 */
  probeMinMs?: number
  /** Longest probe delay, in ms. @default 10000 */
  probeMaxMs?: number
}

/** HealthState is the peer's state as the get path sees it. */
export type HealthState = 'up' | 'down'

/** PeerHealth tracks one peer's failures and schedules its probes. */
export class PeerHealth {
  readonly #threshold: number
  readonly #probeMinMs: number
  readonly #probeMaxMs: number
  readonly #random: () => number
  #failures = 0
  #down = false
  #attempt = 0

  constructor(options: HealthOptions, random: () => number) {
    this.#threshold = options.failureThreshold ?? DEFAULTS.health.failureThreshold
    this.#probeMinMs = options.probeMinMs ?? DEFAULTS.health.probeMinMs
    this.#probeMaxMs = options.probeMaxMs ?? DEFAULTS.health.probeMaxMs
    this.#random = random
  }

  /** up is false while the peer is marked down. */
  get up(): boolean {
    return !this.#down
  }

  /**
   * succeeded records an answer; returns true when this marks a down peer
   * up. The probe backoff restarts only on an answer while up (a request
   * served), not on the probe's answer that marks it up: a peer that answers
   * probes yet fails every request is retried ever more slowly, it does not
   * flap down and up several times a second.
   */
  succeeded(): boolean {
    this.#failures = 0
    if (!this.#down) {
      this.#attempt = 0
      return false
    }
    this.#down = false
    return true
  }

  /** failed records a transport failure; returns true when this marks the peer down. */
  failed(isTimeout: boolean): boolean {
    this.#failures++
    if (this.#down) return false
    if (!isTimeout && this.#failures < this.#threshold) return false
    this.#down = true
    return true
  }

  /**
   * nextProbeDelay is the wait before the next probe: "full jitter" backoff,
   * uniform in [min/2, min * 2^attempt], capped at probeMaxMs.
   */
  nextProbeDelay(): number {
    const ceiling = Math.min(this.#probeMaxMs, this.#probeMinMs * 2 ** Math.min(this.#attempt, 20))
    this.#attempt++
    const floor = this.#probeMinMs / 2
    return Math.round(floor + this.#random() * Math.max(0, ceiling - floor))
  }
}
