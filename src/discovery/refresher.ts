/**
 * refresher: asks the discovery source for the peer list, now and then every
 * `intervalMs`, and hands each good answer on.
 *
 * Invariants:
 *  - refreshes never overlap: the next one is scheduled when the previous
 *    one ends, and a lookup that outlived its deadline (it ignored its
 *    signal) makes the next tick wait until it settles;
 *  - each refresh is bounded by `timeoutMs` (its signal aborts, and its
 *    answer no longer counts);
 *  - a failed lookup, an empty answer, an invalid URL or a timeout keeps the
 *    last good list: a DNS hiccup never empties the ring. It is logged once
 *    per failure streak, and the recovery once;
 *  - its timers are unref'd (they never keep a process alive); close() stops
 *    the loop and aborts the refresh in flight (its signal aborts, so a DNS
 *    lookup cancels its queries), so nothing of it outlives close().
 */
import { ClosedError, DiscoveryError } from '../errors.js'
import type { Logger } from '../logger.js'
import type { PeerLookup } from './options.js'

/** RefresherOptions wire a refresher to its source and its sink. */
export interface RefresherOptions {
  lookup: PeerLookup
  intervalMs: number
  timeoutMs: number
  /** Checks and normalises an answer (throws on a bad one). */
  validate(peers: readonly string[]): string[]
  /** Receives each good answer, sorted and deduplicated. */
  apply(peers: readonly string[]): void
  logger: Logger
  /** What the logs call the source (the DNS name). */
  source: string
}

/** PeerRefresher runs the refresh loop of one Peercache. */
export class PeerRefresher {
  readonly #options: RefresherOptions
  #timer: NodeJS.Timeout | undefined
  #pending: Promise<unknown> | undefined
  /** Aborts the refresh in flight (its deadline or close()). */
  #controller: AbortController | undefined
  #failing = false
  #closed = false

  constructor(options: RefresherOptions) {
    this.#options = options
  }

  /** start runs the first refresh now; the others follow every intervalMs. */
  start(): void {
    void this.#tick()
  }

  /** close stops the loop (a refresh in flight is aborted and its answer dropped). Idempotent. */
  close(): void {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#controller?.abort(new ClosedError('peer discovery closed'))
  }

  async #tick(): Promise<void> {
    if (this.#closed) return
    // A lookup that ignored its signal still runs: never start a second one beside it.
    if (this.#pending === undefined) await this.#refresh()
    if (this.#closed) return
    this.#timer = setTimeout(() => void this.#tick(), this.#options.intervalMs)
    this.#timer.unref()
  }

  async #refresh(): Promise<void> {
    try {
      const peers = await this.#lookupWithin()
      if (this.#closed) return
      this.#options.apply(peers)
      this.#recovered()
    } catch (err) {
      if (!this.#closed) this.#failed(err)
    }
  }

  /** #lookupWithin asks the source, bounded by timeoutMs and by close(), and checks the answer. */
  async #lookupWithin(): Promise<string[]> {
    const { lookup, timeoutMs, validate } = this.#options
    const controller = new AbortController()
    this.#controller = controller
    const pending = Promise.resolve().then(() => lookup({ signal: controller.signal }))
    this.#pending = pending
    void pending.then(
      () => this.#settled(pending),
      () => this.#settled(pending),
    )
    const timer = setTimeout(() => controller.abort(new DiscoveryError(`lookup took longer than ${timeoutMs} ms`)), timeoutMs)
    timer.unref()
    try {
      const answer = await Promise.race([pending, rejectOnAbort(controller.signal)])
      return checkAnswer(answer, validate)
    } finally {
      clearTimeout(timer)
      if (this.#controller === controller) this.#controller = undefined
    }
  }

  #settled(pending: Promise<unknown>): void {
    if (this.#pending === pending) this.#pending = undefined
  }

  #failed(err: unknown): void {
    if (this.#failing) return
    this.#failing = true
    this.#options.logger.warn({ err, source: this.#options.source }, 'peer discovery failed; keeping the last good peer list')
  }

  #recovered(): void {
    if (!this.#failing) return
    this.#failing = false
    this.#options.logger.info({ source: this.#options.source }, 'peer discovery answers again')
  }
}

/** rejectOnAbort rejects with the signal's reason once it aborts: the deadline or close() ends the wait even if the lookup ignores its signal. */
function rejectOnAbort(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }))
}

function checkAnswer(answer: unknown, validate: (peers: readonly string[]) => string[]): string[] {
  if (!Array.isArray(answer)) throw new DiscoveryError('lookup did not return an array of URLs')
  if (answer.length === 0) throw new DiscoveryError('lookup returned no peers')
  return [...new Set(validate(answer as string[]))].sort()
}
