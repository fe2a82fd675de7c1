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
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { Dispatcher } from 'undici'
import { concatChunks } from '../bytes.js'
import { PeerTimeoutError, ResponseTooLargeError } from '../errors.js'
import { toAbortError } from '../singleflight.js'

/** PeerResponse is a response read in full (bounded). */
export interface PeerResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Uint8Array
}

/** ExchangeOptions describe one request and its bounds. */
export interface ExchangeOptions {
  method: Dispatcher.HttpMethod
  path: string
  headers: Record<string, string> | undefined
  body: Uint8Array | undefined
  /** The peer's base URL, for error messages. */
  peer: string
  /** Overall deadline, queueing included, in ms. */
  timeout: number
  /** Largest response body accepted, in bytes. */
  maxResponseBytes: number
  signal: AbortSignal | undefined
}

/** exchange sends one request through `dispatcher` and resolves to its status, headers and whole body. */
export function exchange(dispatcher: Dispatcher, options: ExchangeOptions): Promise<PeerResponse> {
  return new Promise<PeerResponse>((resolve, reject) => {
    const handler = new BodyCollector(options, resolve, reject)
    if (handler.settled) return // the caller's signal had already aborted
    try {
      dispatcher.dispatch(
        { method: options.method, path: options.path, headers: options.headers ?? null, body: options.body ?? null },
        handler,
      )
    } catch (err) {
      handler.fail(err)
    }
  })
}

/**
 * BodyCollector is the dispatch handler of one exchange. Invariant: it
 * settles its promise at most once (`#settled`), and from then on only
 * aborts or ignores what undici still reports.
 */
class BodyCollector implements Dispatcher.DispatchHandler {
  readonly #options: ExchangeOptions
  readonly #resolve: (response: PeerResponse) => void
  readonly #reject: (err: unknown) => void
  readonly #timer: NodeJS.Timeout
  #onCallerAbort: (() => void) | undefined
  #controller: Dispatcher.DispatchController | undefined
  /** Why to abort the request as soon as undici starts it (it was still queued). */
  #pendingAbort: Error | undefined
  #settled = false
  #status = 0
  #headers: IncomingHttpHeaders = {}
  #chunks: Uint8Array[] = []
  #total = 0

  constructor(options: ExchangeOptions, resolve: (response: PeerResponse) => void, reject: (err: unknown) => void) {
    this.#options = options
    this.#resolve = resolve
    this.#reject = reject
    this.#timer = setTimeout(() => this.#stop(new PeerTimeoutError(options.peer, `no answer within ${options.timeout} ms`)), options.timeout)
    this.#timer.unref()
    const signal = options.signal
    if (signal !== undefined) {
      if (signal.aborted) {
        this.#stop(toAbortError(signal.reason))
        return
      }
      this.#onCallerAbort = () => this.#stop(toAbortError(signal.reason))
      signal.addEventListener('abort', this.#onCallerAbort, { once: true })
    }
  }

  /** settled is true once the promise has settled. */
  get settled(): boolean {
    return this.#settled
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    if (this.#pendingAbort !== undefined) controller.abort(this.#pendingAbort)
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (this.#settled) return
    const cap = this.#options.maxResponseBytes
    const announced = Number(headers['content-length'])
    if (announced > cap) {
      this.#stop(new ResponseTooLargeError(this.#options.peer, `announced a body of ${announced} bytes, over the ${cap}-byte cap`))
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

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#settled) return
    this.#total += chunk.byteLength
    if (this.#total > this.#options.maxResponseBytes) {
      this.#stop(new ResponseTooLargeError(this.#options.peer, `sent more than the ${this.#options.maxResponseBytes}-byte cap`))
      return
    }
    this.#chunks.push(chunk)
  }

  onResponseEnd(): void {
    if (!this.#settle()) return
    // One chunk (the common case) is copied into an exact-size array too: undici's chunk is a slice of its socket buffer.
    this.#resolve({ status: this.#status, headers: this.#headers, body: concatChunks(this.#chunks, this.#total) })
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.fail(error)
  }

  /** fail settles the exchange with err (undici's error, or a synchronous throw from dispatch). */
  fail(err: unknown): void {
    if (this.#settle()) this.#reject(err)
  }

  /** Settles with `reason` now and aborts the request, at once or as soon as undici starts it. */
  #stop(reason: Error): void {
    if (!this.#settle()) return
    this.#reject(reason)
    if (this.#controller !== undefined) this.#controller.abort(reason)
    else this.#pendingAbort = reason
  }

  /** Marks the exchange settled and releases its timer and listener; false if it already was. */
  #settle(): boolean {
    if (this.#settled) return false
    this.#settled = true
    clearTimeout(this.#timer)
    if (this.#onCallerAbort !== undefined) this.#options.signal?.removeEventListener('abort', this.#onCallerAbort)
    return true
  }
}
