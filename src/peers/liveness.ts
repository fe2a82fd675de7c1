/**
 * liveness: whether one peer can answer, as its client knows it. It keeps
 * the peer's health record (health.ts), tells the listener when the peer
 * goes down or comes back, and runs the two kinds of probe, each one GET of
 * the peer's base path:
 *
 *  - the liveness check of a request the peer is silent on (Liveness,
 *    exchange.ts): one at a time, shared by every request that asks, on a
 *    connection of its own (the pool's may all be busy with slow loads);
 *  - the background probe while the peer is down, with bounded, jittered
 *    backoff (health.ts): the first answer that shows the peer serves us
 *    marks it up again.
 */
import type { PeerError } from '../errors.js'
import { PeerResponseError, PeerTimeoutError } from '../errors.js'
import { servesUs } from './answers.js'
import type { Liveness, PeerResponse } from './exchange.js'
import { PeerHealth, type HealthOptions } from './health.js'

/** HealthListener hears a peer going down or coming back. */
export interface HealthListener {
  down(peer: string, error: Error): void
  up(peer: string): void
}

/**
 * SendProbe sends one probe (GET of the peer's base path, bounded by the
 * transport timeout): on a connection of its own (a liveness check) or on
 * the peer's pool (the probe while down, which warms the pool again).
 */
export type SendProbe = (ownConnection: boolean) => Promise<PeerResponse>

/** PeerLiveness is one peer's health record and probes (see the file comment). */
export class PeerLiveness implements Liveness {
  readonly health: PeerHealth
  /** answers counts the responses this peer started (Liveness). */
  answers = 0
  readonly #url: string
  readonly #listener: HealthListener
  readonly #send: SendProbe
  /** Called when the peer first answers and after each probe it answers (the handshake, handshake.ts). */
  readonly #onContact: (() => void) | undefined
  #liveCheck: Promise<boolean> | undefined
  #probeTimer: NodeJS.Timeout | undefined
  #closed = false

  constructor(url: string, options: HealthOptions, listener: HealthListener, random: () => number, send: SendProbe, onContact?: () => void) {
    this.#url = url
    this.#listener = listener
    this.#send = send
    this.#onContact = onContact
    this.health = new PeerHealth(options, random)
  }

  /** answered records that one of this peer's responses started (Liveness). */
  answered(): void {
    if (++this.answers === 1) this.#onContact?.()
  }

  /**
   * check resolves to whether this peer answers at all (Liveness): any HTTP
   * answer to the probe proves it alive. One probe at a time, shared.
   */
  check(): Promise<boolean> {
    this.#liveCheck ??= this.#checkAlive().finally(() => {
      this.#liveCheck = undefined
    })
    return this.#liveCheck
  }

  async #checkAlive(): Promise<boolean> {
    if (this.#closed) return false
    try {
      await this.#send(true)
      this.#onContact?.()
      return true
    } catch {
      return false
    }
  }

  /** succeeded records an answer that shows the peer serves us; it may mark the peer up. */
  succeeded(): void {
    if (this.health.succeeded()) this.#listener.up(this.#url)
  }

  /** failed records evidence that the peer cannot answer; it may mark the peer down (and start probing it). */
  failed(error: PeerError): void {
    if (!this.health.failed(error instanceof PeerTimeoutError)) return
    this.#listener.down(this.#url, error)
    this.#scheduleProbe()
  }

  /** close stops probing. Idempotent. */
  close(): void {
    this.#closed = true
    clearTimeout(this.#probeTimer)
  }

  #scheduleProbe(): void {
    if (this.#closed) return
    clearTimeout(this.#probeTimer)
    this.#probeTimer = setTimeout(() => void this.#probe(), this.health.nextProbeDelay())
    this.#probeTimer.unref()
  }

  /** One probe while down: an answer that serves us marks the peer up (answers.ts, servesUs), anything else probes again later. */
  async #probe(): Promise<void> {
    if (this.#closed || this.health.up) return
    try {
      const response = await this.#send(false)
      this.#onContact?.()
      if (!servesUs(response)) throw new PeerResponseError(this.#url, `probe answered ${response.status}`, { status: response.status })
      this.succeeded()
    } catch {
      this.#scheduleProbe()
    }
  }
}
