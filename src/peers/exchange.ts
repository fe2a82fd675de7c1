/**
 * exchange: one bounded HTTP request to a peer, and its whole response body.
 *
 * It runs on undici's Dispatcher API (`pool.dispatch` with a handler), the
 * layer undici's own `request()` is built on, not on `request()` itself:
 * `request()` wraps every response body in a Readable stream, and for the
 * small bodies peers exchange that stream costs more client CPU than the
 * rest of a get (measured in BENCHMARKS.md). The handler collects the body
 * into one array, which is all we ever did with the stream.
 *
 * Every exchange is bounded:
 *  - in time, by one deadline that also counts the time spent queued in the
 *    pool (undici's connect, headers and body timeouts apply on top);
 *  - in size, by a cap checked against the announced Content-Length before
 *    any byte is read and against the bytes as they arrive;
 *  - by the caller's signal.
 * The promise settles once, at the first of: the response's end, an error,
 * the deadline, the caller's abort. A request still queued when the deadline
 * passes is aborted the moment undici starts it, and its caller is told at
 * once, not then.
 *
 * Busy is not dead (issue 13). This is the rule every request kind follows
 * (a get, a batch, a set, a remove, a peek, a clear: client.ts gives each
 * its `liveness`), and the one place it is kept:
 *
 *  - The transport deadline (`timeout`) bounds connecting and a silent
 *    peer, queueing included. But a peer's silence is not evidence that it
 *    cannot answer: an owner loading a slow key sends nothing until the
 *    value is ready (Go's server too), and a request queued behind such
 *    loads on every connection of the pool waits without being sent.
 *  - So a request still unanswered at half its deadline asks whether the
 *    peer is alive: it is if it answered anything since this request was
 *    sent, or if a liveness probe (liveness.check: one at a time, on a
 *    connection of its own) gets an answer.
 *  - Only a failed probe is evidence of death: the request then ends with
 *    PeerTimeoutError, held against the peer (one timeout marks it down).
 *  - Alive, the request waits up to its patience, `loadTimeout` in all
 *    (gets, batches, writes, clears), and then ends with
 *    PeerLoadTimeoutError, which is never held against the peer. A request
 *    without patience beyond the deadline (a peek: it only saves a load)
 *    ends with PeerLoadTimeoutError at the deadline, once the peer is known
 *    alive; not known alive then, it waits for the probe's verdict, which
 *    bounds it by half a deadline more (the probe has `timeout`).
 *  - A response that started is alive by definition; one that has not
 *    ended by the deadline (a body dripping in) is a PeerTimeoutError,
 *    except a streamed one (a batch), whose parts come as loads finish.
 * Without `liveness` (the probes themselves) the deadline just ends the
 * request with PeerTimeoutError.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { Dispatcher } from 'undici'
import { concatChunks } from '../bytes.js'
import { PeerLoadTimeoutError, PeerTimeoutError, ResponseTooLargeError } from '../errors.js'
import { toAbortError } from '../singleflight.js'
import type { Deadline, DeadlineList, Deadlines } from './deadlines.js'

/** PeerResponse is a response read in full (bounded). */
export interface PeerResponse {
  status: number
  headers: IncomingHttpHeaders
  /** The whole body; it may be a view of a larger socket buffer: copy what you keep. */
  body: Uint8Array
}

/**
 * Liveness is what an exchange asks about its peer when the transport
 * deadline passes before the response started. Implemented by the peer's
 * client, one object per peer: no closure per request.
 */
export interface Liveness {
  /** answers counts the responses the peer started; it only grows. */
  readonly answers: number
  /** answered is called when one of the peer's responses starts. */
  answered(): void
  /** check resolves to whether the peer answers at all (one shared probe at a time). */
  check(): Promise<boolean>
}

/** ExchangeOptions describe one request and its bounds. */
export interface ExchangeOptions {
  method: Dispatcher.HttpMethod
  path: string
  headers: Record<string, string> | undefined
  body: Uint8Array | undefined
  /** The peer's base URL, for error messages. */
  peer: string
  /** Transport deadline, queueing included, in ms: the peer must have started answering by then (see liveness). */
  timeout: number
  /** Largest response body accepted, in bytes. */
  maxResponseBytes: number
  signal: AbortSignal | undefined
  /** Tells busy from dead when `timeout` passes without a response (see the file comment). */
  liveness?: Liveness | undefined
  /** Patience: the longest wait for a peer known alive, from the start, in ms. @default timeout (no wait past the deadline) */
  loadTimeout?: number | undefined
  /** Where the first deadline (timeout, or half of it with liveness) waits: the peer's shared timers. Else a timer of its own. */
  deadlines?: Deadlines | undefined
  /** undici's headers timeout when set explicitly (else, with liveness, loadTimeout or 2 × timeout if longer; the pool's without). */
  headersTimeout?: number | undefined
  /** undici's body timeout of a streamed answer when set explicitly (else as headersTimeout). */
  bodyTimeout?: number | undefined
  /**
   * A streamed answer (a batch): once it started, its parts may come as far
   * apart as loads take, so it is bounded by loadTimeout, not timeout.
   */
  streaming?: boolean
}

/** exchange sends one request through `dispatcher` and resolves to its status, headers and whole body. */
export function exchange(dispatcher: Dispatcher, options: ExchangeOptions): Promise<PeerResponse> {
  return new Promise<PeerResponse>((resolve, reject) => {
    dispatchBounded(dispatcher, options, new BodyCollector(options, resolve, reject))
  })
}

/** dispatchBounded starts `handler`'s request unless the caller's signal had already aborted it. */
export function dispatchBounded(dispatcher: Dispatcher, options: ExchangeOptions, handler: BoundedHandler): void {
  if (handler.settled) return
  try {
    const { method, path, headers, body, loadTimeout, timeout } = options
    const dispatchOptions: Dispatcher.DispatchOptions = { method, path, headers: headers ?? null, body: body ?? null }
    // undici must not end a request the deadline logic above keeps alive: a
    // peer's silence is judged by the liveness probe, whose verdict may come
    // up to 1.5 × timeout after the start (a peek waits for it too).
    if (options.liveness !== undefined) {
      const patience = Math.max(loadTimeout ?? timeout, 2 * timeout)
      dispatchOptions.headersTimeout = options.headersTimeout ?? patience
      if (options.streaming === true) dispatchOptions.bodyTimeout = options.bodyTimeout ?? patience
    }
    dispatcher.dispatch(dispatchOptions, handler)
  } catch (err) {
    handler.fail(err)
  }
}

/**
 * BoundedHandler is the dispatch handler of one bounded exchange: the
 * deadline, the caller's signal, the size cap and settling once. Invariant:
 * it settles at most once (`#settled`), and from then on only aborts or
 * ignores what undici still reports. Subclasses say what a body is.
 */
export abstract class BoundedHandler implements Dispatcher.DispatchHandler, Deadline {
  protected readonly options: ExchangeOptions
  readonly #reject: (err: unknown) => void
  /** The deadline timer after the first one (the first is in options.deadlines when given). */
  #timer: NodeJS.Timeout | undefined
  /** Whether the first deadline is the liveness halfway point (with liveness; else the transport deadline). */
  readonly #halfwayFirst: boolean
  // The links of the first deadline in options.deadlines (Deadline).
  deadlineDue = 0
  deadlinePrev: Deadline | undefined = undefined
  deadlineNext: Deadline | undefined = undefined
  deadlineList: DeadlineList | undefined = undefined
  #onCallerAbort: (() => void) | undefined
  #controller: Dispatcher.DispatchController | undefined
  /** Why to abort the request as soon as undici starts it (it was still queued). */
  #pendingAbort: Error | undefined
  #settled = false
  /** True once the response started (headers arrived). */
  protected started = false
  /** liveness.answers when this request was sent: a later answer proves the peer alive. */
  readonly #answersAtStart: number
  /** The liveness probe this request started or joined at half its deadline. */
  #liveCheck: Promise<boolean> | undefined

  constructor(options: ExchangeOptions, reject: (err: unknown) => void) {
    this.options = options
    this.#reject = reject
    this.#answersAtStart = options.liveness?.answers ?? 0
    const { liveness, timeout } = options
    // With liveness, a request still unanswered at half the deadline starts the shared probe, so the probe has a whole transport timeout to answer.
    this.#halfwayFirst = liveness !== undefined
    const firstDelay = this.#halfwayFirst ? timeout / 2 : timeout
    if (options.deadlines !== undefined) options.deadlines.add(this, firstDelay)
    else {
      this.#timer = setTimeout(() => this.expired(), firstDelay)
      this.#timer.unref()
    }
    const signal = options.signal
    if (signal !== undefined) {
      if (signal.aborted) {
        this.stop(toAbortError(signal.reason))
        return
      }
      this.#onCallerAbort = () => this.stop(toAbortError(signal.reason))
      signal.addEventListener('abort', this.#onCallerAbort, { once: true })
    }
  }

  /** expired is the first deadline passing (Deadline): the halfway point, or the transport deadline. */
  expired(): void {
    if (this.#halfwayFirst) this.#halfway()
    else this.#deadline()
  }

  /** settled is true once the promise has settled. */
  get settled(): boolean {
    return this.#settled
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    if (this.#pendingAbort !== undefined) controller.abort(this.#pendingAbort)
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (this.#settled) return
    this.started = true
    this.options.liveness?.answered()
    this.responseStarted(statusCode, headers)
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#settled) this.data(chunk)
  }

  onResponseEnd(): void {
    if (!this.#settled) this.ended()
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.fail(error)
  }

  /** fail settles the exchange with err (undici's error, or a synchronous throw from dispatch). */
  fail(err: unknown): void {
    if (this.settle()) this.#reject(err)
  }

  /** A response (re)started: keep what is needed of status and headers, drop what an earlier start read. */
  protected abstract responseStarted(statusCode: number, headers: IncomingHttpHeaders): void
  /** A chunk of the body arrived (the exchange is not settled). */
  protected abstract data(chunk: Buffer): void
  /** The body ended (the exchange is not settled): settle it. */
  protected abstract ended(): void

  /** Settles with `reason` now and aborts the request, at once or as soon as undici starts it. */
  protected stop(reason: Error): void {
    if (!this.settle()) return
    this.#reject(reason)
    if (this.#controller !== undefined) this.#controller.abort(reason)
    else this.#pendingAbort = reason
  }

  /** Marks the exchange settled and releases its timer and listener; false if it already was. */
  protected settle(): boolean {
    if (this.#settled) return false
    this.#settled = true
    if (this.deadlineList !== undefined) this.deadlineList.remove(this)
    clearTimeout(this.#timer)
    if (this.#onCallerAbort !== undefined) this.options.signal?.removeEventListener('abort', this.#onCallerAbort)
    return true
  }

  /** Half the transport deadline passed: start (or join) a liveness probe unless the peer answered since, then wait for the deadline. */
  #halfway(): void {
    const { liveness, timeout } = this.options
    if (!this.started && liveness !== undefined && liveness.answers === this.#answersAtStart) this.#liveCheck = liveness.check()
    this.#timer = setTimeout(() => this.#deadline(), timeout - timeout / 2)
    this.#timer.unref()
  }

  /** The transport deadline passed: end the request, unless the peer is busy rather than dead (file comment). */
  #deadline(): void {
    const { liveness, timeout, peer } = this.options
    if ((this.started && this.options.streaming !== true) || liveness === undefined) {
      this.stop(new PeerTimeoutError(peer, `no answer within ${timeout} ms`))
      return
    }
    if (this.started || liveness.answers > this.#answersAtStart) return this.#keepWaiting()
    void (this.#liveCheck ?? liveness.check()).then((alive) => {
      if (this.#settled) return
      if (alive) this.#keepWaiting()
      else this.stop(new PeerTimeoutError(peer, `no answer within ${timeout} ms, and no answer to a liveness probe`))
    })
  }

  /**
   * The peer is alive: wait for it until the request's patience (loadTimeout,
   * counted from the transport deadline on as loadTimeout − timeout) runs
   * out, then give up without blaming it.
   */
  #keepWaiting(): void {
    const { loadTimeout, timeout, peer } = this.options
    const patience = loadTimeout ?? timeout
    const giveUp = (): void => this.stop(new PeerLoadTimeoutError(peer, `alive but still busy after ${patience} ms (it answered a liveness probe or other requests)`))
    if (patience <= timeout) return giveUp()
    this.#timer = setTimeout(giveUp, patience - timeout)
    this.#timer.unref()
  }
}

/** BodyCollector collects the whole (capped) body of one exchange. */
class BodyCollector extends BoundedHandler {
  readonly #resolve: (response: PeerResponse) => void
  #status = 0
  #headers: IncomingHttpHeaders = {}
  #chunks: Uint8Array[] = []
  #total = 0

  constructor(options: ExchangeOptions, resolve: (response: PeerResponse) => void, reject: (err: unknown) => void) {
    super(options, reject)
    this.#resolve = resolve
  }

  protected responseStarted(statusCode: number, headers: IncomingHttpHeaders): void {
    const cap = this.options.maxResponseBytes
    const announced = Number(headers['content-length'])
    if (announced > cap) {
      this.stop(new ResponseTooLargeError(this.options.peer, `announced a body of ${announced} bytes, over the ${cap}-byte cap`))
      return
    }
    this.#status = statusCode
    this.#headers = headers
    // A second response start (a retried request) drops what the first one read.
    if (this.#total > 0) {
      this.#chunks = []
      this.#total = 0
    }
  }

  protected data(chunk: Buffer): void {
    this.#total += chunk.byteLength
    if (this.#total > this.options.maxResponseBytes) {
      this.stop(new ResponseTooLargeError(this.options.peer, `sent more than the ${this.options.maxResponseBytes}-byte cap`))
      return
    }
    this.#chunks.push(chunk)
  }

  protected ended(): void {
    if (!this.settle()) return
    // One chunk (the common case) is handed on as it is: a view of undici's
    // socket read buffer. Invariant: a PeerResponse's reader copies what it
    // keeps (caches own their bytes: cache.ts), so nothing cached pins
    // that buffer, and a get copies its value once, for its caller.
    const chunks = this.#chunks
    const body = chunks.length === 1 ? (chunks[0] as Uint8Array) : concatChunks(chunks, this.#total)
    this.#resolve({ status: this.#status, headers: this.#headers, body })
  }
}
