/**
 * handshake: whether a peer is configured like this process. A peer with
 * another secret, ring kind, peer list or base path answers, yet the
 * cluster misbehaves quietly (401s, keys loaded twice, two values for one
 * key); the handshake names the cause. When a peer first answers and after
 * each probe (liveness.ts), the client asks it `GET /_peercache/hello`
 * (proto/hello.ts) and compares its answer with this process's identity,
 * logging ONE warning per peer per kind of mismatch that says what to
 * change, again only once that mismatch changes or went away and came back.
 *
 * It only reports: it never marks a peer down or up (its failures are not
 * recorded against the peer's health), it is bounded (the transport
 * timeout, a small body cap, one in flight per peer), and a peer that
 * cannot handshake (a Go peer's bare 404, a closing peer, garbage) is left
 * alone. A differing peer list is reported only if it still differs
 * `listGraceMs` later: during a deploy or a discovery refresh lists differ
 * for a moment, and that is no misconfiguration.
 */
import type { Logger } from '../logger.js'
import { helloOf, parseHello, type Hello, type LocalIdentity } from '../proto/hello.js'
import { errorMessage } from './answers.js'
import type { PeerResponse } from './exchange.js'

/** HandshakeOptions give a handshake what it compares against, and where it reports. */
export interface HandshakeOptions {
  /** This process's identity now (its peer list may change). */
  identity: () => LocalIdentity
  logger: Logger
  /** How long a differing peer list must last before it is reported, in ms. */
  listGraceMs: number
  /** Monotonic clock in ms. @default performance.now */
  now?: () => number
}

/** SendHello sends one bounded, signed `GET /_peercache/hello` to the peer. */
export type SendHello = (signal: AbortSignal) => Promise<PeerResponse>

/** Mismatch is one way a peer is configured differently: its kind, what identifies it, and the warning. */
interface Mismatch {
  kind: 'secret' | 'ring' | 'basePath' | 'peers'
  detail: string
  message: string
}

/** Handshake is one peer's handshake state: what was reported, the one hello in flight. */
export class Handshake {
  readonly #url: string
  readonly #options: HandshakeOptions
  readonly #send: SendHello
  /** The detail of each mismatch kind reported and still current. */
  readonly #reported = new Map<Mismatch['kind'], string>()
  /** A differing peer list seen but not yet reported: its detail and since when. */
  #listSeen: { detail: string; at: number } | undefined
  #listTimer: NodeJS.Timeout | undefined
  #inFlight: AbortController | undefined
  #closed = false

  constructor(url: string, options: HandshakeOptions, send: SendHello) {
    this.#url = url
    this.#options = options
    this.#send = send
  }

  /** run starts a handshake unless one is in flight; it never throws, and its outcome is only logged. */
  run(): void {
    if (this.#closed || this.#inFlight !== undefined) return
    const controller = new AbortController()
    this.#inFlight = controller
    // Started on a microtask: run() may be called from inside undici's response callbacks (the first answer).
    void Promise.resolve()
      .then(() => this.#handshake(controller.signal))
      .finally(() => {
        this.#inFlight = undefined
      })
  }

  /** close aborts a hello in flight and stops the peer-list recheck. Idempotent. */
  close(): void {
    this.#closed = true
    this.#inFlight?.abort()
    clearTimeout(this.#listTimer)
  }

  async #handshake(signal: AbortSignal): Promise<void> {
    let response: PeerResponse
    try {
      response = await this.#send(signal)
    } catch (err) {
      // Unreachable or slow: health is the liveness probe's business, not the handshake's.
      this.#options.logger.debug({ peer: this.#url, err }, 'handshake failed')
      return
    }
    if (this.#closed) return
    const mismatches = this.#compare(response)
    if (mismatches !== undefined) this.#report(mismatches)
    this.#options.logger.debug({ peer: this.#url, status: response.status, mismatches: mismatches?.map((m) => m.kind) }, 'handshake done')
  }

  /** The mismatches an answer shows, or undefined when it cannot tell (no hello there). */
  #compare(response: PeerResponse): Mismatch[] | undefined {
    const local = this.#options.identity()
    if (response.status === 401) return [this.#refused(local, errorMessage(response.body))]
    // Anything but a hello (a Go peer's or an older peercache's bare 404, a closing peer's 503) cannot handshake: that is fine.
    if (response.status !== 200) return undefined
    const hello = parseHello(response.body)
    return hello === undefined ? undefined : compareHello(this.#url, local, hello)
  }

  /** The mismatch a 401 to our hello shows: no secret here, another secret there, or clocks apart. */
  #refused(local: LocalIdentity, reason: string): Mismatch {
    const peer = this.#url
    if (!local.signed) {
      return { kind: 'secret', detail: 'unsigned', message: `peer ${peer} requires signed requests and this process has no secret: PEERCACHE_SECRET differs (set the same secret everywhere)` }
    }
    if (reason.includes('stale')) {
      return { kind: 'secret', detail: 'stale', message: `peer ${peer} refuses our signatures as stale: the clocks of the two machines differ by more than auth.windowMs (sync them, e.g. NTP)` }
    }
    return { kind: 'secret', detail: 'refused', message: `peer ${peer} signs with a different secret: PEERCACHE_SECRET differs (set the same secret everywhere)` }
  }

  /** Logs each new mismatch once; forgets the kinds that went away, so they are reported again if they come back. */
  #report(mismatches: Mismatch[]): void {
    const kinds = new Set(mismatches.map((m) => m.kind))
    for (const kind of [...this.#reported.keys()]) if (!kinds.has(kind)) this.#reported.delete(kind)
    if (!kinds.has('peers')) {
      this.#listSeen = undefined
      clearTimeout(this.#listTimer)
    }
    for (const mismatch of mismatches) {
      if (this.#reported.get(mismatch.kind) === mismatch.detail) continue
      if (mismatch.kind === 'peers' && !this.#listLasted(mismatch.detail)) continue
      this.#reported.set(mismatch.kind, mismatch.detail)
      this.#options.logger.warn({ peer: this.#url, mismatch: mismatch.kind }, mismatch.message)
    }
  }

  /** listLasted is true once the same differing list was seen listGraceMs ago; else it schedules the recheck. */
  #listLasted(detail: string): boolean {
    const now = this.#now()
    if (this.#listSeen?.detail === detail && now - this.#listSeen.at >= this.#options.listGraceMs) return true
    if (this.#listSeen?.detail !== detail) this.#listSeen = { detail, at: now }
    const wait = Math.max(0, this.#listSeen.at + this.#options.listGraceMs - now)
    clearTimeout(this.#listTimer)
    this.#listTimer = setTimeout(() => this.run(), wait)
    this.#listTimer.unref()
    return false
  }

  #now(): number {
    return this.#options.now === undefined ? performance.now() : this.#options.now()
  }
}

/** compareHello lists how a peer's hello differs from this process's identity, each with the fix. */
function compareHello(peer: string, local: LocalIdentity, hello: Hello): Mismatch[] {
  const ours = helloOf(local)
  const found: Mismatch[] = []
  if (local.signed && !hello.signed) {
    found.push({ kind: 'secret', detail: 'unchecked', message: `peer ${peer} has no secret and takes unsigned requests, this process signs: PEERCACHE_SECRET differs (set the same secret everywhere)` })
  }
  if (hello.ring !== ours.ring) {
    found.push({ kind: 'ring', detail: hello.ring, message: `peer ${peer} uses ring ${hello.ring}, this process ${ours.ring}: set PEERCACHE_RING (the ring option) the same everywhere` })
  }
  if (hello.basePath !== ours.basePath) {
    found.push({ kind: 'basePath', detail: hello.basePath, message: `peer ${peer} serves base path ${hello.basePath}, this process ${ours.basePath}: set basePath the same everywhere` })
  }
  if (hello.peersHash !== ours.peersHash) {
    const message = `peer ${peer} has another peer list: ${hello.peersHash} vs ${ours.peersHash} here (${hello.peerCount} peers vs ${ours.peerCount}): check PEERCACHE_PEERS / discovery (every process must list the same peers, written the same way)`
    found.push({ kind: 'peers', detail: `${hello.peersHash}/${ours.peersHash}`, message })
  }
  return found
}
