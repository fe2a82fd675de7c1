/**
 * client: HttpPeer fetches values from another process over HTTP, with one
 * undici Pool (keep-alive) per peer. Every request is one bounded exchange
 * (exchange.ts): an overall deadline that also counts time spent queued in
 * the pool, undici's connect, headers and body timeouts, a cap on the body
 * size, and the caller's signal; every response body is read to its end or
 * the request aborted (an unread body would pin its connection).
 *
 * Answers are sorted into the owner's final answers (404 marked not-found,
 * 503 marked load-failed) and transport failures (PeerError, every other
 * status, an unmarked 503 included), which feed the
 * peer's health and make the caller load locally.
 */
import { Pool, errors as undiciErrors, type Dispatcher } from 'undici'
import type { PeerAuth } from '../auth.js'
import { textDecoder } from '../bytes.js'
import type { CacheEntry } from '../cache.js'
import {
  LoadError,
  NotFoundError,
  PeerError,
  PeerLoadTimeoutError,
  PeerResponseError,
  PeerTimeoutError,
  PeerUnavailableError,
  ResponseTooLargeError,
} from '../errors.js'
import { MAX_BATCH_KEYS, decodeGetResponse, encodeBatchRequest, encodeSetRequest, type BatchEntryMessage } from '../proto/codec.js'
import { toAbortError } from '../singleflight.js'
import { PeerHealth, type HealthOptions } from './health.js'
import { Deadlines } from './deadlines.js'
import { fetchBatch, toEntry, type BatchPeer, type OnBatchResult } from './batch.js'
import { streamBatch, type BatchStreamEnd } from './batch-stream.js'
import { Batcher } from './batcher.js'
import { exchange, type ExchangeOptions, type Liveness, type PeerResponse } from './exchange.js'
import { ERROR_HEADER, batchPath, clearPath, errorHeaderValue, peekPath, peerPath } from './paths.js'

/** PeerClientOptions configure how this process talks to its peers. */
export interface PeerClientOptions {
  /** Path prefix of the peer endpoint. @default '/_groupcache/' */
  basePath: string
  /**
   * Transport deadline of one request, queueing included, in ms: connecting
   * and the peer starting to answer (a peer known alive gets loadTimeout).
   * @default 2000
   */
  timeout: number
  /** Longest wait for an owner that is alive but still loading the key, in ms. @default 30000 */
  loadTimeout?: number
  /** TCP (and TLS) connect timeout, in ms. @default the request timeout */
  connectTimeout?: number
  /** Time to the response headers, in ms. @default the request timeout */
  headersTimeout?: number
  /** Longest gap between body chunks, in ms. @default the request timeout */
  bodyTimeout?: number
  /** Largest response body accepted, in bytes. @default 64 MiB */
  maxResponseBytes: number
  /** Connections per peer. @default 16 */
  connections?: number
  /** Requests pipelined per connection. @default 1 */
  pipelining?: number
  /** TLS options handed to undici's connector (a CA for self-signed clusters, a client certificate). */
  tls?: PeerTlsOptions
  /** Signs every request when a secret is configured. */
  auth?: PeerAuth | undefined
  health?: HealthOptions
}

/** PeerTlsOptions are the TLS settings the client uses toward https:// peers. */
export interface PeerTlsOptions {
  ca?: string | Buffer | Array<string | Buffer>
  cert?: string | Buffer
  key?: string | Buffer
  /** @default true */
  rejectUnauthorized?: boolean
  servername?: string
}

/** HealthListener hears a peer going down or coming back. */
export interface HealthListener {
  down(peer: string, error: Error): void
  up(peer: string): void
}

const MAX_ERROR_MESSAGE_BYTES = 1024

/**
 * REQUEST_REFUSALS are the statuses that refuse one request for what it is
 * (malformed, a method the peer lacks, a body or key over the peer's
 * limits: 413, 414, 431), not the peer's state. They fail that request
 * only and never mark the peer down. 401 (secrets differ) and a bare 404
 * (wrong base path) are not here: every request would get them.
 */
const REQUEST_REFUSALS: ReadonlySet<number> = new Set([400, 405, 413, 414, 431])

/** DEFAULT_LOAD_TIMEOUT is how long an asker waits for an owner that is alive but loading, in ms. */
export const DEFAULT_LOAD_TIMEOUT = 30_000

/** HttpPeer is one remote peer reached over HTTP. */
export class HttpPeer implements Liveness {
  readonly url: string
  readonly health: PeerHealth
  /** answers counts the responses this peer started (Liveness). */
  answers = 0
  readonly #pool: Pool
  /** One connection of its own for liveness probes: the pool's may all be busy with slow loads. */
  #probePool: Pool | undefined
  #liveCheck: Promise<boolean> | undefined
  readonly #prefix: string
  readonly #options: PeerClientOptions
  readonly #listener: HealthListener
  readonly #batcher: Batcher
  /** The first deadline of every request to this peer, on shared timers (deadlines.ts). */
  readonly #deadlines = new Deadlines()
  #probeTimer: NodeJS.Timeout | undefined
  #closed = false
  /** Set once the peer answered the peek endpoint with a bare 404 (a Go peer): never peeked again. */
  #peekUnsupported = false
  /** Set once the peer showed it cannot serve batches (batch.ts): per-key gets from then on. */
  #batchUnsupported = false

  constructor(url: string, options: PeerClientOptions, listener: HealthListener, random: () => number) {
    this.url = url
    this.#options = options
    this.#listener = listener
    this.health = new PeerHealth(options.health ?? {}, random)
    const parsed = new URL(url)
    // A base URL may carry a path (http://host/cache): it prefixes basePath.
    this.#prefix = parsed.pathname.replace(/\/+$/, '')
    this.#pool = new Pool(parsed.origin, poolOptions(options))
    this.#batcher = new Batcher(
      {
        sendOne: (group, key, signal) => this.#getOne(group, key, signal),
        sendMany: (group, keys, signal, onResult) => fetchBatch(this.#batchLink, group, keys, signal, onResult),
      },
      MAX_BATCH_KEYS,
    )
  }

  /**
   * get fetches key of group from this peer (see the file comment for the
   * error classes). With `coalesce`, gets of the same tick share one batch.
   */
  get(group: string, key: string, options: { signal?: AbortSignal; coalesce?: boolean }): Promise<CacheEntry> {
    if (options.coalesce === true && !this.#batchUnsupported) return this.#batcher.get(group, key, options.signal)
    return this.#getOne(group, key, options.signal)
  }

  /**
   * getMany fetches several keys in one batch request. The map holds each
   * key's own outcome: its entry, its final error (NotFoundError,
   * LoadError) or a PeerError; `onResult` hears each one as it arrives.
   * A batch is never a unit of failure (batch.ts says how).
   */
  getMany(
    group: string,
    keys: readonly string[],
    options: { signal?: AbortSignal | undefined; onResult?: OnBatchResult | undefined },
  ): Promise<Map<string, CacheEntry | Error>> {
    return fetchBatch(this.#batchLink, group, keys, options.signal, options.onResult)
  }

  /** set stores key's entry at this peer (PUT with a SetRequest body, mailgun-compatible). */
  async set(group: string, key: string, entry: CacheEntry, options: { signal?: AbortSignal }): Promise<void> {
    const body = encodeSetRequest({ group, key, value: entry.value, expiresAt: entry.expiresAt })
    const response = await this.request('PUT', this.#prefix + peerPath(this.#options.basePath, group, key), body, options.signal)
    if (response.status !== 200) throw this.#unexpected(response)
    this.#succeeded()
  }

  /** remove drops key from this peer's caches (DELETE, mailgun-compatible). */
  async remove(group: string, key: string, options: { signal?: AbortSignal }): Promise<void> {
    const response = await this.request('DELETE', this.#prefix + peerPath(this.#options.basePath, group, key), undefined, options.signal)
    if (response.status !== 200) throw this.#unexpected(response)
    this.#succeeded()
  }

  /**
   * peek returns key's entry if this peer holds it in cache, else undefined.
   * The peer never loads for a peek; a Go peer (bare 404) is remembered and skipped.
   */
  async peek(group: string, key: string, options: { signal?: AbortSignal }): Promise<CacheEntry | undefined> {
    if (this.#peekUnsupported) return undefined
    // A peek never loads: the transport `timeout` bounds it (no load deadline).
    const response = await this.request('GET', this.#prefix + peekPath(group, key), undefined, options.signal)
    const marker = response.headers['x-peercache-error']
    if (response.status === 404 && marker === undefined) this.#peekUnsupported = true
    if (response.status === 404 && marker !== errorHeaderValue.noSuchGroup) return undefined
    if (response.status !== 200) throw this.#unexpected(response)
    const entry = this.#decodeValue(response)
    this.#succeeded()
    return entry
  }

  /**
   * clear drops every entry of group at this peer (POST /_peercache/clear/,
   * peercache-only). A bare 404 is a peer without the endpoint (a Go
   * groupcache peer): nothing was cleared there; it is reported, and does not
   * count against the peer's health (it answered).
   */
  async clear(group: string, options: { signal?: AbortSignal }): Promise<void> {
    const response = await this.request('POST', this.#prefix + clearPath(group), EMPTY_BODY, options.signal)
    if (response.status === 404 && response.headers[ERROR_HEADER] === undefined) {
      this.#succeeded()
      throw new PeerResponseError(this.url, 'has no clear endpoint (a Go groupcache peer?): its entries were not cleared', { status: 404 })
    }
    if (response.status !== 200) throw this.#unexpected(response)
    this.#succeeded()
  }

  async #getOne(group: string, key: string, signal: AbortSignal | undefined): Promise<CacheEntry> {
    const path = this.#prefix + peerPath(this.#options.basePath, group, key)
    const response = await this.request('GET', path, undefined, signal, true)
    return this.#readGetResponse(response)
  }

  /** The view of this peer that batch.ts works through (made once per peer). */
  readonly #batchLink: BatchPeer = this.#makeBatchLink()

  #makeBatchLink(): BatchPeer {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const peer = this
    return {
      get url() {
        return peer.url
      },
      get up() {
        return peer.health.up
      },
      get batchUnsupported() {
        return peer.#batchUnsupported
      },
      set batchUnsupported(value: boolean) {
        peer.#batchUnsupported = value
      },
      stream: (group, keys, signal, onEntry) => this.#streamBatch(group, keys, signal, onEntry),
      getOne: (group, key, signal) => this.#getOne(group, key, signal),
      classify: (err) => this.#classify(err),
      succeeded: () => this.#succeeded(),
      failed: (error) => this.#failed(error),
    }
  }

  #streamBatch(group: string, keys: readonly string[], signal: AbortSignal | undefined, onEntry: (entry: BatchEntryMessage) => void): Promise<BatchStreamEnd> {
    const path = this.#prefix + batchPath(group)
    return streamBatch(this.#pool, { ...this.#exchangeOptions('POST', path, encodeBatchRequest(keys), signal, true), streaming: true }, onEntry)
  }

  /**
   * A status the verb does not expect: the peer cannot do what we asked (a
   * transport-level problem). It counts against the peer's health unless it
   * refuses only this request (see REQUEST_REFUSALS): the peer answered,
   * and its other keys are still worth asking for.
   */
  #unexpected(response: PeerResponse): PeerResponseError {
    const error = new PeerResponseError(this.url, `answered ${response.status}: ${errorMessage(response.body)}`, { status: response.status })
    if (REQUEST_REFUSALS.has(response.status)) this.#succeeded()
    else this.#failed(error)
    return error
  }

  /**
   * request sends one bounded request and reads the whole (capped) body. It
   * records transport failures against this peer's health and rethrows them
   * as PeerErrors; a caller's abort becomes an AbortError and counts nothing.
   */
  async request(method: Dispatcher.HttpMethod, path: string, body: Uint8Array | undefined, signal?: AbortSignal, mayLoad = false): Promise<PeerResponse> {
    try {
      // Success is recorded by the caller once it accepted the answer: a
      // 200 with an undecodable body is a failure, not a success.
      return await exchange(this.#pool, this.#exchangeOptions(method, path, body, signal, mayLoad))
    } catch (err) {
      if (signal?.aborted) throw toAbortError(signal.reason)
      const peerError = this.#classify(err)
      if (heldAgainstPeer(peerError)) this.#failed(peerError)
      throw peerError
    }
  }

  /** close stops probing and closes the pool's connections. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#probeTimer)
    await Promise.all([this.#pool.destroy().catch(() => {}), this.#probePool?.destroy().catch(() => {})])
  }

  /** answered records that one of this peer's responses started (Liveness). */
  answered(): void {
    this.answers++
  }

  /**
   * check resolves to whether this peer answers at all (Liveness): one probe
   * at a time, shared by every request that asks, on a connection of its
   * own, bounded by the transport timeout.
   */
  check(): Promise<boolean> {
    this.#liveCheck ??= this.#checkAlive().finally(() => {
      this.#liveCheck = undefined
    })
    return this.#liveCheck
  }

  async #checkAlive(): Promise<boolean> {
    if (this.#closed) return false
    this.#probePool ??= new Pool(new URL(this.url).origin, { ...poolOptions(this.#options), connections: 1 })
    const options = this.#exchangeOptions('GET', this.#prefix + this.#options.basePath, undefined, undefined, false)
    try {
      await exchange(this.#probePool, options)
      return true
    } catch {
      return false
    }
  }

  /**
   * The bounds of one request. A request that may wait for the owner's
   * loader (a get, a batch) tells busy from dead (exchange.ts): past the
   * transport timeout it waits for a live owner up to loadTimeout.
   */
  #exchangeOptions(method: Dispatcher.HttpMethod, path: string, body: Uint8Array | undefined, signal: AbortSignal | undefined, mayLoad: boolean): ExchangeOptions {
    const { timeout, maxResponseBytes, auth } = this.#options
    let headers: Record<string, string> | undefined
    if (auth !== undefined || body !== undefined) {
      headers = {}
      if (auth !== undefined) headers.authorization = auth.sign(method, path, body)
      if (body !== undefined) headers['content-type'] = 'application/x-protobuf'
    }
    const options: ExchangeOptions = { method, path, headers, body, peer: this.url, timeout, maxResponseBytes, signal, deadlines: this.#deadlines }
    if (mayLoad) {
      options.liveness = this
      options.loadTimeout = this.#options.loadTimeout ?? DEFAULT_LOAD_TIMEOUT
      options.headersTimeout = this.#options.headersTimeout
      options.bodyTimeout = this.#options.bodyTimeout
    }
    return options
  }

  #readGetResponse(response: PeerResponse): CacheEntry {
    if (response.status === 200) {
      const entry = this.#decodeValue(response)
      this.#succeeded()
      return entry
    }
    const message = errorMessage(response.body)
    const marker = response.headers['x-peercache-error']
    // The owner's final answers prove it alive.
    if (response.status === 404 && marker === errorHeaderValue.notFound) {
      this.#succeeded()
      throw new NotFoundError(message)
    }
    // Rule: a get never fails because a peer is closing. Only our handler's
    // marked 503 is the loader's answer; an unmarked 5xx is the server
    // layer's (fastify answers its own 503 while it closes): a transport failure.
    if (response.status === 503 && marker === errorHeaderValue.loadFailed) {
      this.#succeeded()
      throw new LoadError(`owner ${this.url} failed to load: ${message}`)
    }
    // Anything else (a bare 404 or 503, 400, 500, 401...) is a peer that cannot answer: a transport problem.
    throw this.#unexpected(response)
  }

  #decodeValue(response: PeerResponse): CacheEntry {
    const type = response.headers['content-type']
    // Go's client accepts a missing Content-Type; so do we. Anything else is not a groupcache answer.
    if (type !== undefined && !String(type).startsWith('application/x-protobuf')) {
      const error = new PeerResponseError(this.url, `answered 200 with content type ${String(type)}`, { status: 200 })
      this.#failed(error)
      throw error
    }
    try {
      const message = decodeGetResponse(response.body)
      return toEntry(message.value, message.expiresAt, message.stale, message.minuteQps)
    } catch (err) {
      const error = new PeerResponseError(this.url, 'answered a body that is not a GetResponse', { status: 200, cause: err })
      this.#failed(error)
      throw error
    }
  }

  #classify(err: unknown): PeerError {
    if (err instanceof PeerError) return err
    const code = (err as { code?: unknown } | null)?.code
    if (
      err instanceof undiciErrors.ConnectTimeoutError ||
      err instanceof undiciErrors.HeadersTimeoutError ||
      err instanceof undiciErrors.BodyTimeoutError
    ) {
      return new PeerTimeoutError(this.url, (err as Error).message, { cause: err })
    }
    const why = err instanceof Error ? err.message : String(err)
    return new PeerUnavailableError(this.url, typeof code === 'string' ? `${code}: ${why}` : why, { cause: err })
  }

  #succeeded(): void {
    if (this.health.succeeded()) this.#listener.up(this.url)
  }

  #failed(error: PeerError): void {
    if (!this.health.failed(error instanceof PeerTimeoutError)) return
    this.#listener.down(this.url, error)
    this.#scheduleProbe()
  }

  /**
   * While down, probe with backoff. Any HTTP answer means the peer is back,
   * except those of a peer that is up but cannot serve us: a 401 (secrets
   * differ) and a 503 `closing` (its cache is closed while its server still
   * answers). Marking those up would only make them flap.
   */
  #scheduleProbe(): void {
    if (this.#closed) return
    clearTimeout(this.#probeTimer)
    this.#probeTimer = setTimeout(() => void this.#probe(), this.health.nextProbeDelay())
    this.#probeTimer.unref()
  }

  async #probe(): Promise<void> {
    if (this.#closed || this.health.up) return
    try {
      const response = await exchange(this.#pool, this.#exchangeOptions('GET', this.#prefix + this.#options.basePath, undefined, undefined, false))
      if (!servesUs(response)) throw new PeerResponseError(this.url, `probe answered ${response.status}`, { status: response.status })
      this.#succeeded()
    } catch {
      this.#scheduleProbe()
    }
  }
}

/**
 * heldAgainstPeer is false for failures that say nothing about the peer:
 * an owner still loading past loadTimeout (busy, not dead) and a value over
 * maxResponseBytes (that key's size, not the peer's state).
 */
function heldAgainstPeer(error: PeerError): boolean {
  return !(error instanceof PeerLoadTimeoutError || error instanceof ResponseTooLargeError)
}

/** servesUs is false for a probe answer from a peer that is up but cannot serve us (see #scheduleProbe). */
function servesUs(response: PeerResponse): boolean {
  if (response.status === 401) return false
  return !(response.status === 503 && response.headers[ERROR_HEADER] === errorHeaderValue.closing)
}

const EMPTY_BODY = new Uint8Array(0)

function errorMessage(body: Uint8Array): string {
  return textDecoder.decode(body.subarray(0, MAX_ERROR_MESSAGE_BYTES)).trimEnd()
}

function poolOptions(options: PeerClientOptions): Pool.Options {
  const tls = options.tls ?? {}
  return {
    connections: options.connections ?? 16,
    pipelining: options.pipelining ?? 1,
    headersTimeout: options.headersTimeout ?? options.timeout,
    bodyTimeout: options.bodyTimeout ?? options.timeout,
    keepAliveTimeout: 4_000,
    connect: { timeout: options.connectTimeout ?? options.timeout, ...tls },
  }
}
