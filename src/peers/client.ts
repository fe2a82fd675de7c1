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
 * status, an unmarked 503 included: a closing fastify answers its own), which
 * feed the peer's health (liveness.ts) and make the caller load locally.
 *
 * Busy is not dead, for every request kind (the rule is kept in
 * exchange.ts): health counts only evidence that the peer cannot answer —
 * a refused or broken connection, a bad answer, a failed liveness probe —
 * never slowness and never a 4xx refusal of one request. A request silent
 * past the transport timeout (the owner loading, or the request queued
 * behind its loads) waits for a peer the probe shows alive, up to its
 * Patience: loadTimeout for gets, batches, writes and clears (then a
 * PeerLoadTimeoutError, not held against the peer); a peek gives up at the
 * timeout. Only a failed probe marks the peer down.
 *
 * Batch gets go through the peer's batch channel (batch-channel.ts), which
 * reaches the peer through the narrow BatchPeer view this client gives it.
 */
import { Pool, type Dispatcher } from 'undici'
import type { PeerAuth } from '../auth.js'
import type { CacheEntry } from '../cache.js'
import { LoadError, NotFoundError, PeerError, PeerResponseError } from '../errors.js'
import { encodeBatchRequest, encodeSetRequest, type BatchEntryMessage } from '../proto/codec.js'
import { ERROR_HEADER, HELLO_PATH, batchPath, clearPath, errorHeaderValue, peekPath, peerPath, peerQuery } from '../proto/paths.js'
import { toAbortError } from '../singleflight.js'
import { REQUEST_REFUSALS, busyRefusal, classifyFailure, decodeValue, errorMessage, heldAgainstPeer } from './answers.js'
import { BatchChannel, type OnBatchResult } from './batch-channel.js'
import { streamBatch, type BatchStreamEnd } from './batch-stream.js'
import { Deadlines } from './deadlines.js'
import { exchange, type ExchangeOptions, type PeerResponse } from './exchange.js'
import type { HealthOptions, PeerHealth } from './health.js'
import { PeerLiveness, type HealthListener } from './liveness.js'
import { Handshake, type HandshakeOptions } from './handshake.js'
import { DEFAULTS } from '../options.js'
import type { PeerGetOptions } from '../peer.js'

export type { HealthListener } from './liveness.js'

/** ExtraHeaders are headers a get carries beside ours (trace context: tracing.ts). */
type ExtraHeaders = Readonly<Record<string, string>> | undefined

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
  /**
   * Longest wait for a peer that is alive but busy (loading the key, or every
   * connection taken by loads), in ms: for gets, batches, writes and clears.
   * @default 30000
   */
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
  /** Compare the peer's configuration with this process's when it first answers and after each probe (handshake.ts); unset, never. */
  handshake?: HandshakeOptions
  /** The group's clear generation in this process, sent with every request about the group (group/writes.ts). @default none */
  generation?: (group: string) => number
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


/** HttpPeer is one remote peer reached over HTTP. */
export class HttpPeer {
  readonly url: string
  readonly health: PeerHealth
  readonly #pool: Pool
  /** One connection of its own for liveness checks: the pool's may all be busy with slow loads. */
  #probePool: Pool | undefined
  readonly #prefix: string
  readonly #options: PeerClientOptions
  readonly #liveness: PeerLiveness
  readonly #batches: BatchChannel
  readonly #handshake: Handshake | undefined
  /** The first deadline of every request to this peer, on shared timers (deadlines.ts). */
  readonly #deadlines = new Deadlines()
  #closed = false
  /** Set once the peer answered the peek endpoint with a bare 404 (a Go peer): never peeked again. */
  #peekUnsupported = false

  constructor(url: string, options: PeerClientOptions, listener: HealthListener, random: () => number) {
    this.url = url
    this.#options = options
    const parsed = new URL(url)
    // A base URL may carry a path (http://host/cache): it prefixes basePath.
    this.#prefix = parsed.pathname.replace(/\/+$/, '')
    this.#pool = new Pool(parsed.origin, poolOptions(options))
    if (options.handshake !== undefined) this.#handshake = new Handshake(url, options.handshake, (signal) => this.#sendHello(signal))
    const handshake = this.#handshake
    this.#liveness = new PeerLiveness(url, options.health ?? {}, listener, random, (own) => this.#sendProbe(own), handshake && (() => handshake.run()))
    this.health = this.#liveness.health
    this.#batches = new BatchChannel({
      url,
      getOne: (group, key, signal, headers) => this.#getOne(group, key, signal, false, headers),
      stream: (group, keys, signal, onEntry, headers) => this.#streamBatch(group, keys, signal, onEntry, headers),
      classify: (err) => classifyFailure(url, err),
      succeeded: () => this.#liveness.succeeded(),
      failed: (error) => this.#liveness.failed(error),
    })
  }

  /**
   * get fetches key of group from this peer (see the file comment for the
   * error classes). With `coalesce`, gets of the same tick share one batch.
   * `headers` (trace context) go with the request: unsigned, they never
   * change what the signature covers (method, path, time, body: auth.ts).
   */
  get(group: string, key: string, options: PeerGetOptions): Promise<CacheEntry> {
    if (options.fresh === true) return this.#getOne(group, key, options.signal, true, options.headers)
    if (options.coalesce === true) return this.#batches.get(group, key, options.signal, options.headers)
    return this.#getOne(group, key, options.signal, false, options.headers)
  }

  /**
   * getMany fetches several keys in one batch request. The map holds each
   * key's own outcome: its entry, its final error (NotFoundError,
   * LoadError) or a PeerError; `onResult` hears each one as it arrives.
   * A batch is never a unit of failure (batch-channel.ts says how).
   */
  getMany(
    group: string,
    keys: readonly string[],
    options: { signal?: AbortSignal | undefined; onResult?: OnBatchResult | undefined },
  ): Promise<Map<string, CacheEntry | Error>> {
    return this.#batches.getMany(group, keys, options.signal, options.onResult)
  }

  /** set stores key's entry at this peer (PUT with a SetRequest body, mailgun-compatible). */
  async set(group: string, key: string, entry: CacheEntry, options: { signal?: AbortSignal }): Promise<void> {
    const body = encodeSetRequest({ group, key, value: entry.value, expiresAt: entry.expiresAt })
    const response = await this.#request('PUT', this.#keyPath(group, key, false), body, options.signal, 'load')
    if (response.status !== 200) throw this.#unexpected(response)
    this.#liveness.succeeded()
  }

  /** remove drops key from this peer's caches (DELETE, mailgun-compatible). */
  async remove(group: string, key: string, options: { signal?: AbortSignal }): Promise<void> {
    const response = await this.#request('DELETE', this.#keyPath(group, key, false), undefined, options.signal, 'load')
    if (response.status !== 200) throw this.#unexpected(response)
    this.#liveness.succeeded()
  }

  /**
   * peek returns key's entry if this peer holds it in cache, else undefined.
   * The peer never loads for a peek; a Go peer (bare 404) is remembered and skipped.
   */
  async peek(group: string, key: string, options: { signal?: AbortSignal }): Promise<CacheEntry | undefined> {
    if (this.#peekUnsupported) return undefined
    const response = await this.#request('GET', this.#prefix + peekPath(group, key) + this.#query(group, false), undefined, options.signal, 'transport')
    const marker = response.headers[ERROR_HEADER]
    if (response.status === 404 && marker === undefined) this.#peekUnsupported = true
    if (response.status === 404 && marker !== errorHeaderValue.noSuchGroup) return undefined
    if (response.status !== 200) throw this.#unexpected(response)
    const entry = this.#decodeValue(response)
    this.#liveness.succeeded()
    return entry
  }

  /**
   * clear drops every entry of group at this peer (POST /_peercache/clear/,
   * peercache-only). A bare 404 is a peer without the endpoint (a Go
   * groupcache peer): nothing was cleared there; it is reported, and does not
   * count against the peer's health (it answered).
   */
  async clear(group: string, options: { signal?: AbortSignal }): Promise<void> {
    const response = await this.#request('POST', this.#prefix + clearPath(group) + this.#query(group, false), EMPTY_BODY, options.signal, 'load')
    if (response.status === 404 && response.headers[ERROR_HEADER] === undefined) {
      this.#liveness.succeeded()
      throw new PeerResponseError(this.url, 'has no clear endpoint (a Go groupcache peer?): its entries were not cleared', { status: 404 })
    }
    if (response.status !== 200) throw this.#unexpected(response)
    this.#liveness.succeeded()
  }

  /**
   * Sends one bounded request and reads the whole (capped) body. It records
   * transport failures against this peer's health and rethrows them as
   * PeerErrors; a caller's abort becomes an AbortError and counts nothing.
   */
  async #request(method: Dispatcher.HttpMethod, path: string, body: Uint8Array | undefined, signal: AbortSignal | undefined, patience: Patience, extra?: ExtraHeaders): Promise<PeerResponse> {
    try {
      // Success is recorded by the caller once it accepted the answer: a
      // 200 with an undecodable body is a failure, not a success.
      return await exchange(this.#pool, this.#exchangeOptions(method, path, body, signal, patience, extra))
    } catch (err) {
      if (signal?.aborted) throw toAbortError(signal.reason)
      const peerError = classifyFailure(this.url, err)
      if (heldAgainstPeer(peerError)) this.#liveness.failed(peerError)
      throw peerError
    }
  }

  /** close stops probing and closes the pool's connections. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#liveness.close()
    this.#handshake?.close()
    await Promise.all([this.#pool.destroy().catch(() => {}), this.#probePool?.destroy().catch(() => {})])
  }

  async #getOne(group: string, key: string, signal: AbortSignal | undefined, fresh = false, extra?: ExtraHeaders): Promise<CacheEntry> {
    const response = await this.#request('GET', this.#keyPath(group, key, fresh), undefined, signal, 'load', extra)
    return this.#readGetResponse(response)
  }

  /** The path of key under basePath, with the query this process adds (peerQuery: invisible to Go peers). */
  #keyPath(group: string, key: string, fresh: boolean): string {
    return this.#prefix + peerPath(this.#options.basePath, group, key) + this.#query(group, fresh)
  }

  /** Every request about a group carries the group's clear generation here: the peer fences itself by it (group/writes.ts). */
  #query(group: string, fresh: boolean): string {
    return peerQuery(this.#options.generation?.(group) ?? 0, fresh)
  }

  #streamBatch(group: string, keys: readonly string[], signal: AbortSignal | undefined, onEntry: (entry: BatchEntryMessage) => void, extra?: ExtraHeaders): Promise<BatchStreamEnd> {
    const path = this.#prefix + batchPath(group) + this.#query(group, false)
    return streamBatch(this.#pool, { ...this.#exchangeOptions('POST', path, encodeBatchRequest(keys), signal, 'load', extra), streaming: true }, onEntry)
  }

  /** One probe (liveness.ts): a GET of the base path, on the probe connection or the pool, bounded by the transport timeout. */
  #sendProbe(ownConnection: boolean): Promise<PeerResponse> {
    let dispatcher = this.#pool
    if (ownConnection) dispatcher = this.#probePool ??= new Pool(new URL(this.url).origin, { ...poolOptions(this.#options), connections: 1 })
    return exchange(dispatcher, this.#exchangeOptions('GET', this.#prefix + this.#options.basePath, undefined, undefined, 'probe'))
  }

  /** One hello (handshake.ts): signed, bounded by the transport timeout and a small body cap, never counted against the peer. */
  #sendHello(signal: AbortSignal): Promise<PeerResponse> {
    const options = this.#exchangeOptions('GET', this.#prefix + HELLO_PATH, undefined, signal, 'probe')
    return exchange(this.#pool, { ...options, maxResponseBytes: Math.min(options.maxResponseBytes, DEFAULTS.handshake.maxResponseBytes) })
  }

  /**
   * A status the verb does not expect: the peer cannot do what we asked (a
   * transport-level problem). It counts against the peer's health unless it
   * refuses only this request (see REQUEST_REFUSALS) or refuses it as busy
   * (PeerBusyError): the peer answered, and its other keys are still worth asking for.
   */
  #unexpected(response: PeerResponse): PeerError {
    const busy = busyRefusal(this.url, response)
    if (busy !== undefined) {
      this.#liveness.succeeded()
      return busy
    }
    const error = new PeerResponseError(this.url, `answered ${response.status}: ${errorMessage(response.body)}`, { status: response.status })
    if (REQUEST_REFUSALS.has(response.status)) this.#liveness.succeeded()
    else this.#liveness.failed(error)
    return error
  }

  /** The bounds of one request: the transport's, and how long it waits for this peer while it is alive (Patience). */
  #exchangeOptions(method: Dispatcher.HttpMethod, path: string, body: Uint8Array | undefined, signal: AbortSignal | undefined, patience: Patience, extra?: ExtraHeaders): ExchangeOptions {
    const { timeout, maxResponseBytes, auth } = this.#options
    let headers: Record<string, string> | undefined
    if (auth !== undefined || body !== undefined || extra !== undefined) {
      // The extra (trace) headers first: ours win a name clash.
      headers = extra === undefined ? {} : { ...extra }
      if (auth !== undefined) headers.authorization = auth.sign(method, path, body)
      if (body !== undefined) headers['content-type'] = 'application/x-protobuf'
    }
    const options: ExchangeOptions = { method, path, headers, body, peer: this.url, timeout, maxResponseBytes, signal, deadlines: this.#deadlines }
    if (patience === 'probe') return options
    options.liveness = this.#liveness
    options.headersTimeout = this.#options.headersTimeout
    options.bodyTimeout = this.#options.bodyTimeout
    if (patience === 'load') options.loadTimeout = this.#options.loadTimeout ?? DEFAULTS.transport.loadTimeoutMs
    return options
  }

  #readGetResponse(response: PeerResponse): CacheEntry {
    if (response.status === 200) {
      const entry = this.#decodeValue(response)
      this.#liveness.succeeded()
      return entry
    }
    const message = errorMessage(response.body)
    const marker = response.headers[ERROR_HEADER]
    // The owner's final answers prove it alive.
    if (response.status === 404 && marker === errorHeaderValue.notFound) {
      this.#liveness.succeeded()
      throw new NotFoundError(message)
    }
    // Rule: a get never fails because a peer is closing. Only our handler's
    // marked 503 is the loader's answer; an unmarked 5xx is the server
    // layer's (fastify answers its own 503 while it closes): a transport failure.
    if (response.status === 503 && marker === errorHeaderValue.loadFailed) {
      this.#liveness.succeeded()
      throw new LoadError(`owner ${this.url} failed to load: ${message}`)
    }
    // Anything else (a bare 404 or 503, 400, 500, 401...) is a peer that cannot answer: a transport problem.
    throw this.#unexpected(response)
  }

  /** The entry of a 200 answer; a bad one is held against the peer (answers.ts). */
  #decodeValue(response: PeerResponse): CacheEntry {
    try {
      return decodeValue(this.url, response)
    } catch (err) {
      this.#liveness.failed(err as PeerError)
      throw err
    }
  }
}

/**
 * Patience is how long a request waits for this peer while it is silent but
 * alive (the rule: exchange.ts): `load` up to loadTimeout (a get, a batch, a
 * set, a remove, a clear: each is worth the wait, and a live peer busy with
 * loads is not dead); `transport` not past the transport timeout (a peek:
 * it only saves a load); `probe` no liveness check at all (a probe is one).
 */
type Patience = 'load' | 'transport' | 'probe'

const EMPTY_BODY = new Uint8Array(0)

function poolOptions(options: PeerClientOptions): Pool.Options {
  const tls = options.tls ?? {}
  return {
    connections: options.connections ?? DEFAULTS.transport.connections,
    pipelining: options.pipelining ?? DEFAULTS.transport.pipelining,
    headersTimeout: options.headersTimeout ?? options.timeout,
    bodyTimeout: options.bodyTimeout ?? options.timeout,
    keepAliveTimeout: 4_000,
    connect: { timeout: options.connectTimeout ?? options.timeout, ...tls },
  }
}
