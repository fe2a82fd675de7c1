/**
 * answers: what a peer's answer means to the asker. Pure functions, no
 * state: the client (client.ts) and the batch channel (batch-channel.ts)
 * decide what to record against the peer's health from what these return.
 *
 *  - A 200 carries a GetResponse (toEntry, decodeValue); anything else in
 *    it is a bad answer (PeerResponseError), evidence against the peer.
 *  - A transport failure becomes a PeerError (classifyFailure): a timeout
 *    of undici's is a PeerTimeoutError, the rest PeerUnavailableError.
 *  - Some failures say nothing about the peer (heldAgainstPeer), and some
 *    statuses refuse one request only (REQUEST_REFUSALS).
 */
import { errors as undiciErrors } from 'undici'
import { textDecoder } from '../bytes.js'
import type { CacheEntry } from '../cache.js'
import { PeerBusyError, PeerError, PeerLoadTimeoutError, PeerResponseError, PeerTimeoutError, PeerUnavailableError, ResponseTooLargeError } from '../errors.js'
import type { PeerEntry } from '../peer.js'
import { decodeGetResponse } from '../proto/codec.js'
import { ERROR_HEADER, errorHeaderValue } from '../proto/paths.js'
import type { PeerResponse } from './exchange.js'

/** Bytes of an error body quoted in an error message. */
const MAX_ERROR_MESSAGE_BYTES = 1024

/**
 * REQUEST_REFUSALS are the statuses that refuse one request for what it is
 * (malformed, a method the peer lacks, a body or key over the peer's
 * limits: 413, 414, 431), not the peer's state. They fail that request
 * only and never mark the peer down. 401 (secrets differ) and a bare 404
 * (wrong base path) are not here: every request would get them.
 */
export const REQUEST_REFUSALS: ReadonlySet<number> = new Set([400, 405, 413, 414, 431])

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

/**
 * decodeValue reads the entry of a 200 answer from peer `url`, or throws the
 * PeerResponseError of a bad one (a foreign content type, a body that is not
 * a GetResponse): the caller holds that against the peer.
 */
export function decodeValue(url: string, response: PeerResponse): CacheEntry {
  const type = response.headers['content-type']
  // Go's client accepts a missing Content-Type; so do we. Anything else is not a groupcache answer.
  if (type !== undefined && !String(type).startsWith('application/x-protobuf')) {
    throw new PeerResponseError(url, `answered 200 with content type ${String(type)}`, { status: 200 })
  }
  try {
    const message = decodeGetResponse(response.body)
    return toEntry(message.value, message.expiresAt, message.stale, message.minuteQps)
  } catch (err) {
    throw new PeerResponseError(url, 'answered a body that is not a GetResponse', { status: 200, cause: err })
  }
}

/** classifyFailure turns a transport failure of a request to peer `url` into a PeerError (one already is kept). */
export function classifyFailure(url: string, err: unknown): PeerError {
  if (err instanceof PeerError) return err
  const code = (err as { code?: unknown } | null)?.code
  if (
    err instanceof undiciErrors.ConnectTimeoutError ||
    err instanceof undiciErrors.HeadersTimeoutError ||
    err instanceof undiciErrors.BodyTimeoutError
  ) {
    return new PeerTimeoutError(url, (err as Error).message, { cause: err })
  }
  const why = err instanceof Error ? err.message : String(err)
  return new PeerUnavailableError(url, typeof code === 'string' ? `${code}: ${why}` : why, { cause: err })
}

/**
 * heldAgainstPeer is false for failures that say nothing about the peer:
 * a peer alive but busy past a request's patience (PeerLoadTimeoutError:
 * busy, not dead), a peer that refused a value as busy (PeerBusyError), and
 * a value over maxResponseBytes (that key's size, not the peer's state).
 */
export function heldAgainstPeer(error: PeerError): boolean {
  return !(error instanceof PeerLoadTimeoutError || error instanceof PeerBusyError || error instanceof ResponseTooLargeError)
}

/**
 * busyRefusal is the PeerBusyError of an answer that is a 503 marked busy
 * (the owner's send queue is full: endpoint/send-queue.ts), else undefined.
 * The caller records the peer alive: it answered.
 */
export function busyRefusal(url: string, response: { status: number; headers: Record<string, unknown>; body: Uint8Array }): PeerBusyError | undefined {
  if (response.status !== 503 || response.headers[ERROR_HEADER] !== errorHeaderValue.busy) return undefined
  return new PeerBusyError(url, `busy: ${errorMessage(response.body)}`)
}

/**
 * servesUs is false for an answer from a peer that is up but cannot serve
 * us: a 401 (secrets differ) and a 503 `closing` (its cache is closed while
 * its server still answers). A probe must not mark those up: they would flap.
 */
export function servesUs(response: PeerResponse): boolean {
  if (response.status === 401) return false
  return !(response.status === 503 && response.headers[ERROR_HEADER] === errorHeaderValue.closing)
}

/** errorMessage is the start of an error body, as text for an error message. */
export function errorMessage(body: Uint8Array): string {
  return textDecoder.decode(body.subarray(0, MAX_ERROR_MESSAGE_BYTES)).trimEnd()
}
