/**
 * backoff: how long forkPeerWorkers waits before it refills a slot. A
 * worker that ran a while and then died is replaced at once; a worker that
 * keeps dying young (its peer port is taken, its config is wrong) is
 * replaced after a delay that doubles with each early exit in a row, up to a
 * cap, so a slot that cannot start costs a few forks a minute, not dozens a
 * second. The clock is injected: tests advance it instead of sleeping.
 */
import { DEFAULTS } from '../options.js'

/** RestartClock is the time source and timer the restarts use (the real ones by default). */
export interface RestartClock {
  now(): number
  setTimeout(run: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

/** RestartBackoffOptions bound the delays; every field in ms. */
export interface RestartBackoffOptions {
  /** Delay after the first early exit; doubles with each one after it. @default 1000 */
  minMs?: number
  /** Longest delay. @default 30000 */
  maxMs?: number
  /** A worker that ran at least this long exited late: the slot is refilled at once and the streak ends. @default 10000 */
  stableMs?: number
}

/** realClock is the process's own clock and timers (timers unref'd: a pending restart never keeps the primary alive). */
export const realClock: RestartClock = {
  now: () => performance.now(),
  setTimeout: (run, ms) => setTimeout(run, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
}

/** RestartBackoff is one slot's streak of early exits and the delay it earns. */
export class RestartBackoff {
  readonly #minMs: number
  readonly #maxMs: number
  readonly #stableMs: number
  /** Early exits in a row; the invariant is streak >= 0, and 0 after a late exit. */
  #streak = 0

  constructor(options: RestartBackoffOptions = {}) {
    this.#minMs = options.minMs ?? DEFAULTS.restartBackoff.minMs
    this.#maxMs = Math.max(this.#minMs, options.maxMs ?? DEFAULTS.restartBackoff.maxMs)
    this.#stableMs = options.stableMs ?? DEFAULTS.restartBackoff.stableMs
  }

  /** exited records that the slot's worker exited after running ranMs, and returns the delay before its replacement. */
  exited(ranMs: number): number {
    if (ranMs >= this.#stableMs) {
      this.#streak = 0
      return 0
    }
    this.#streak++
    // 2 ** 30 already passes any sane cap: the exponent is bounded so the product stays finite.
    return Math.min(this.#maxMs, this.#minMs * 2 ** Math.min(this.#streak - 1, 30))
  }

  /** streak is the number of early exits in a row. */
  get streak(): number {
    return this.#streak
  }
}
