/**
 * batch-channel: the asker's batch gets to one peer, with the state they
 * need: the batcher that coalesces one tick's gets (batcher.ts), and whether
 * the peer serves batches at all. It talks to the peer only through
 * BatchPeer, the few things a batch needs from the peer's client.
 *
 * A batch is an optimisation, never a unit of failure (issue 13): every key
 * gets its own outcome.
 *
 *  - Entries are settled as they stream in (batch-stream.ts): a fast key
 *    never waits for a slow one.
 *  - An entry the owner did not serve (its answer budget was spent, it is
 *    closing: statuses 413, 421), a key the answer left out, and every key
 *    of a batch that failed as a whole (a non-200 status, a dropped
 *    connection, an undecodable or oversized entry) are asked again alone,
 *    with per-key gets, before anything is loaded locally: a per-key get is
 *    what any groupcache peer serves, and its outcome is that key's alone.
 *  - Only when the batch shows the peer cannot answer at all (a transport
 *    timeout) is its failure held against the peer's health, and the keys
 *    left then fail with it (they load locally: the per-key gets would only
 *    wait for the same dead peer). A live owner still loading past
 *    loadTimeout, or refusing the batch as busy (a 503 marked busy: its
 *    send queue is full), fails the keys left too, without being held against it.
 *  - A peer that cannot serve batches (a bare 404 on the batch path, as a
 *    Go peer answers; or a connection dropped before any answer while its
 *    per-key gets then work, as a Go peer whose mux panics does) is
 *    remembered as such and asked key by key from then on.
 */
import type { CacheEntry } from '../cache.js'
import { LoadError, NotFoundError, PeerError, PeerLoadTimeoutError, PeerResponseError, PeerTimeoutError } from '../errors.js'
import { MAX_BATCH_KEYS, type BatchEntryMessage } from '../proto/codec.js'
import { ERROR_HEADER, batchStatus } from '../proto/paths.js'
import { toAbortError } from '../singleflight.js'
import { busyRefusal, toEntry } from './answers.js'
import type { BatchStreamEnd } from './batch-stream.js'
import { Batcher, type TraceHeaders } from './batcher.js'

/** OnBatchResult hears one key's outcome of a batch as soon as it is known. */
export type OnBatchResult = (key: string, result: CacheEntry | Error) => void

/**
 * BatchPeer is what a batch needs from the peer's client: how to reach the
 * peer (one get, one streamed batch request), and how to record what the
 * answers say about it (health). Nothing else of the client is visible.
 */
export interface BatchPeer {
  /** The peer's base URL, for error messages. */
  readonly url: string
  /** getOne fetches one key with a plain GET (with `headers`: trace context); it records its own outcome against the peer's health. */
  getOne(group: string, key: string, signal: AbortSignal | undefined, headers?: TraceHeaders): Promise<CacheEntry>
  /** stream sends one batch request and hands over each entry of a 200 answer as it arrives (batch-stream.ts). */
  stream(group: string, keys: readonly string[], signal: AbortSignal | undefined, onEntry: (entry: BatchEntryMessage) => void, headers?: TraceHeaders): Promise<BatchStreamEnd>
  /** classify turns a transport failure into a PeerError. */
  classify(err: unknown): PeerError
  /** succeeded records an answer that shows the peer alive. */
  succeeded(): void
  /** failed records evidence that the peer cannot answer. */
  failed(error: PeerError): void
}

/** How a batch request ended for the keys it left: ask them alone, maybe because the connection dropped, or fail them. */
type BatchOutcome = 'alone' | 'dropped' | PeerError

/** BatchChannel sends one peer's batch gets (see the file comment). */
export class BatchChannel {
  readonly #peer: BatchPeer
  readonly #batcher: Batcher
  /** Set once the peer showed it cannot serve batches: per-key gets from then on. */
  #unsupported = false

  constructor(peer: BatchPeer, maxKeys = MAX_BATCH_KEYS) {
    this.#peer = peer
    this.#batcher = new Batcher(
      {
        sendOne: (group, key, signal, headers) => peer.getOne(group, key, signal, headers),
        sendMany: (group, keys, signal, onResult, headers) => this.getMany(group, keys, signal, onResult, headers),
      },
      maxKeys,
    )
  }

  /** get fetches key in the batch of this tick's gets to the peer, or alone once the peer is known not to serve batches. */
  get(group: string, key: string, signal: AbortSignal | undefined, headers?: TraceHeaders): Promise<CacheEntry> {
    if (this.#unsupported) return this.#peer.getOne(group, key, signal, headers)
    return this.#batcher.get(group, key, signal, headers)
  }

  /**
   * getMany fetches keys of group in one batch request (see the file
   * comment) and resolves to each key's outcome. `headers` (a trace
   * context) go with the batch and with the keys then asked alone.
   */
  async getMany(
    group: string,
    keys: readonly string[],
    signal: AbortSignal | undefined,
    onResult: OnBatchResult | undefined,
    headers?: TraceHeaders,
  ): Promise<Map<string, CacheEntry | Error>> {
    const results = new Map<string, CacheEntry | Error>()
    const settle = (key: string, result: CacheEntry | Error): void => {
      if (results.has(key)) return
      results.set(key, result)
      onResult?.(key, result)
    }
    const outcome = this.#unsupported ? 'alone' : await this.#askBatch(group, keys, signal, settle, headers)
    const rest = keys.filter((key) => !results.has(key))
    if (outcome instanceof PeerError) {
      for (const key of rest) settle(key, outcome)
      return results
    }
    const answered = await this.#askAlone(group, rest, signal, settle, headers)
    if (outcome === 'dropped' && answered) this.#unsupported = true
    return results
  }

  async #askBatch(group: string, keys: readonly string[], signal: AbortSignal | undefined, settle: OnBatchResult, headers: TraceHeaders): Promise<BatchOutcome> {
    const peer = this.#peer
    let entries = 0
    try {
      const end = await peer.stream(group, keys, signal, (entry) => {
        entries++
        const result = this.#entryResult(entry)
        if (result !== undefined) settle(entry.key, result)
      }, headers)
      if (end.status === 200) peer.succeeded()
      else if (end.status === 404 && end.headers[ERROR_HEADER] === undefined) this.#unsupported = true
      const busy = busyRefusal(peer.url, end)
      if (busy === undefined) return 'alone'
      // Asking the keys alone would only be refused too: they load locally, and the peer is alive.
      peer.succeeded()
      return busy
    } catch (err) {
      if (signal?.aborted) throw toAbortError(signal.reason)
      const error = peer.classify(err)
      if (error instanceof PeerLoadTimeoutError) return error
      if (error instanceof PeerTimeoutError) {
        peer.failed(error)
        return error
      }
      return entries === 0 && !(error instanceof PeerResponseError) ? 'dropped' : 'alone'
    }
  }

  /** Fetches each key with its own get; true if the peer answered any of them. */
  async #askAlone(group: string, keys: readonly string[], signal: AbortSignal | undefined, settle: OnBatchResult, headers: TraceHeaders): Promise<boolean> {
    let answered = false
    await Promise.all(
      keys.map((key) =>
        this.#peer.getOne(group, key, signal, headers).then(
          (entry) => {
            answered = true
            settle(key, entry)
          },
          (err: unknown) => {
            if (!(err instanceof PeerError)) answered = true
            settle(key, err as Error)
          },
        ),
      ),
    )
    return answered
  }

  /** One entry's outcome, or undefined when the key must be asked alone (413, 421). */
  #entryResult(entry: BatchEntryMessage): CacheEntry | Error | undefined {
    switch (entry.status) {
      case batchStatus.ok:
        if (entry.value !== undefined) return toEntry(entry.value, entry.expiresAt, entry.stale, entry.minuteQps)
        return this.#badEntry('a batch entry with status 200 and no value', entry.status)
      case batchStatus.notFound:
        return new NotFoundError(entry.error ?? 'not found')
      case batchStatus.loadFailed:
        return new LoadError(`owner ${this.#peer.url} failed to load: ${entry.error ?? ''}`)
      case batchStatus.overBudget:
      case batchStatus.unserved:
        return undefined
      default:
        return this.#badEntry(`batch entry status ${entry.status}`, entry.status)
    }
  }

  /** A malformed entry is a bad answer for its key, and evidence against the peer. */
  #badEntry(message: string, status: number): PeerResponseError {
    const error = new PeerResponseError(this.#peer.url, message, { status })
    this.#peer.failed(error)
    return error
  }
}
