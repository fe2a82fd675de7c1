/**
 * batch: the asker's side of a batch get. A batch is an optimisation, never
 * a unit of failure (issue 13): every key gets its own outcome.
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
 *    wait for the same dead peer).
 *  - A peer that cannot serve batches (a bare 404 on the batch path, as a
 *    Go peer answers; or a connection dropped before any answer while its
 *    per-key gets then work, as a Go peer whose mux panics does) is
 *    remembered as such and asked key by key from then on.
 */
import type { CacheEntry } from '../cache.js'
import type { PeerEntry } from '../peer.js'
import { LoadError, NotFoundError, PeerError, PeerLoadTimeoutError, PeerResponseError, PeerTimeoutError } from '../errors.js'
import type { BatchEntryMessage } from '../proto/codec.js'
import { toAbortError } from '../singleflight.js'
import type { BatchStreamEnd } from './batch-stream.js'
import { ERROR_HEADER, batchStatus } from './paths.js'

/** OnBatchResult hears one key's outcome of a batch as soon as it is known. */
export type OnBatchResult = (key: string, result: CacheEntry | Error) => void

/** BatchPeer is what a batch needs from the peer's client. */
export interface BatchPeer {
  readonly url: string
  readonly up: boolean
  /** True once the peer is known not to serve batches. */
  batchUnsupported: boolean
  stream(group: string, keys: readonly string[], signal: AbortSignal | undefined, onEntry: (entry: BatchEntryMessage) => void): Promise<BatchStreamEnd>
  getOne(group: string, key: string, signal: AbortSignal | undefined): Promise<CacheEntry>
  /** classify turns a transport failure into a PeerError. */
  classify(err: unknown): PeerError
  succeeded(): void
  failed(error: PeerError): void
}

/** fetchBatch fetches keys of group from peer (see the file comment) and resolves to each key's outcome. */
export async function fetchBatch(
  peer: BatchPeer,
  group: string,
  keys: readonly string[],
  signal: AbortSignal | undefined,
  onResult: OnBatchResult | undefined,
): Promise<Map<string, CacheEntry | Error>> {
  const results = new Map<string, CacheEntry | Error>()
  const settle = (key: string, result: CacheEntry | Error): void => {
    if (results.has(key)) return
    results.set(key, result)
    onResult?.(key, result)
  }
  const outcome = peer.batchUnsupported ? 'alone' : await askBatch(peer, group, keys, signal, settle)
  const rest = keys.filter((key) => !results.has(key))
  if (outcome instanceof PeerError) {
    for (const key of rest) settle(key, outcome)
    return results
  }
  const answered = await askAlone(peer, group, rest, signal, settle)
  if (outcome === 'dropped' && answered) peer.batchUnsupported = true
  return results
}

/** How a batch request ended for the keys it left: ask them alone, maybe because the connection dropped, or fail them. */
type BatchOutcome = 'alone' | 'dropped' | PeerError

async function askBatch(
  peer: BatchPeer,
  group: string,
  keys: readonly string[],
  signal: AbortSignal | undefined,
  settle: OnBatchResult,
): Promise<BatchOutcome> {
  let entries = 0
  try {
    const end = await peer.stream(group, keys, signal, (entry) => {
      entries++
      const result = entryResult(peer, entry)
      if (result !== undefined) settle(entry.key, result)
    })
    if (end.status === 200) peer.succeeded()
    else if (end.status === 404 && end.headers[ERROR_HEADER] === undefined) peer.batchUnsupported = true
    return 'alone'
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

/** askAlone fetches each key with its own get; true if the peer answered any of them. */
async function askAlone(peer: BatchPeer, group: string, keys: readonly string[], signal: AbortSignal | undefined, settle: OnBatchResult): Promise<boolean> {
  let answered = false
  await Promise.all(
    keys.map((key) =>
      peer.getOne(group, key, signal).then(
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

/**
 * toEntry makes the entry of a 200 answer; a stale one (the owner's stale
 * windows) is flagged, never cached as fresh; the owner's minute_qps is kept
 * when it sent one (Go peers do not).
 */
export function toEntry(value: Uint8Array, expiresAt: number, stale: true | undefined, minuteQps: number | undefined): PeerEntry {
  // Literals, not a spread: one allocation per answer, of a shape the JIT knows.
  if (stale === true) return minuteQps === undefined ? { value, expiresAt, stale } : { value, expiresAt, stale, minuteQps }
  return minuteQps === undefined ? { value, expiresAt } : { value, expiresAt, minuteQps }
}

/** entryResult is one entry's outcome, or undefined when the key must be asked alone (413, 421). */
function entryResult(peer: BatchPeer, entry: BatchEntryMessage): CacheEntry | Error | undefined {
  switch (entry.status) {
    case batchStatus.ok:
      if (entry.value !== undefined) return toEntry(entry.value, entry.expiresAt, entry.stale, entry.minuteQps)
      return badEntry(peer, 'a batch entry with status 200 and no value', entry.status)
    case batchStatus.notFound:
      return new NotFoundError(entry.error ?? 'not found')
    case batchStatus.loadFailed:
      return new LoadError(`owner ${peer.url} failed to load: ${entry.error ?? ''}`)
    case batchStatus.overBudget:
    case batchStatus.unserved:
      return undefined
    default:
      return badEntry(peer, `batch entry status ${entry.status}`, entry.status)
  }
}

/** A malformed entry is a bad answer for its key, and evidence against the peer. */
function badEntry(peer: BatchPeer, message: string, status: number): PeerResponseError {
  const error = new PeerResponseError(peer.url, message, { status })
  peer.failed(error)
  return error
}
