/**
 * batch-stream: reads a batch answer while it arrives, entry by entry.
 *
 * A BatchResponse is a run of `entries` fields, each `0x0a`, a varint
 * length and one BatchEntry; protobuf reads concatenated fields as one
 * message, so the owner writes each key's entry when it is ready and this
 * reader hands each entry over (onEntry) as soon as its last byte arrives:
 * one slow key holds back no other. The size cap applies per entry, not to
 * the whole answer: a batch of many values each under maxResponseBytes is
 * fine, one entry over it ends the stream (its keys are asked alone).
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { Dispatcher } from 'undici'
import { concatChunks } from '../bytes.js'
import { PeerResponseError, ResponseTooLargeError } from '../errors.js'
import { decodeBatchEntry, type BatchEntryMessage } from '../proto/codec.js'
import { BoundedHandler, dispatchBounded, type ExchangeOptions } from './exchange.js'

/** BatchStreamEnd is how a batch answer ended: its status and headers, and the body when it was not a 200 (capped). */
export interface BatchStreamEnd {
  status: number
  headers: IncomingHttpHeaders
  body: Uint8Array
}

/** The tag of BatchResponse field 1 (entries), wire type 2 (length-delimited). */
const ENTRIES_TAG = 0x0a
/** Bytes of a non-200 body kept for the error message. */
const MAX_ERROR_BODY = 1024

/**
 * streamBatch sends one batch request and calls onEntry for each entry of a
 * 200 answer as it arrives. It resolves when the answer ends, and rejects
 * like exchange() does (deadline, transport error, abort), or with
 * PeerResponseError / ResponseTooLargeError for an undecodable or oversized
 * entry; entries handed over before stay handed over.
 */
export function streamBatch(dispatcher: Dispatcher, options: ExchangeOptions, onEntry: (entry: BatchEntryMessage) => void): Promise<BatchStreamEnd> {
  return new Promise<BatchStreamEnd>((resolve, reject) => {
    dispatchBounded(dispatcher, options, new BatchReader(options, onEntry, resolve, reject))
  })
}

/** BatchReader parses the entries of a streamed batch answer (see the file comment). */
class BatchReader extends BoundedHandler {
  readonly #onEntry: (entry: BatchEntryMessage) => void
  readonly #resolve: (end: BatchStreamEnd) => void
  #status = 0
  #headers: IncomingHttpHeaders = {}
  /** Bytes received and not parsed yet. */
  #chunks: Uint8Array[] = []
  #have = 0
  /** Bytes the next entry needs in all (0 while its header is incomplete). */
  #need = 0

  constructor(options: ExchangeOptions, onEntry: (entry: BatchEntryMessage) => void, resolve: (end: BatchStreamEnd) => void, reject: (err: unknown) => void) {
    super(options, reject)
    this.#onEntry = onEntry
    this.#resolve = resolve
  }

  protected responseStarted(statusCode: number, headers: IncomingHttpHeaders): void {
    this.#status = statusCode
    this.#headers = headers
    this.#chunks = []
    this.#have = 0
    this.#need = 0
  }

  protected data(chunk: Buffer): void {
    if (this.#status !== 200) {
      if (this.#have < MAX_ERROR_BODY) this.#chunks.push(chunk)
      this.#have += chunk.byteLength
      return
    }
    this.#chunks.push(chunk)
    this.#have += chunk.byteLength
    if (this.#have >= this.#need) this.#parse()
  }

  protected ended(): void {
    if (this.#status === 200 && this.#have > 0) {
      this.fail(new PeerResponseError(this.options.peer, 'batch answer ends inside an entry', { status: 200 }))
      return
    }
    if (!this.settle()) return
    const kept = this.#chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0)
    const body = this.#status === 200 ? new Uint8Array(0) : concatChunks(this.#chunks, kept).subarray(0, MAX_ERROR_BODY)
    this.#resolve({ status: this.#status, headers: this.#headers, body })
  }

  /** Hands over every complete entry buffered, and keeps the rest. */
  #parse(): void {
    const bytes = this.#chunks.length === 1 ? (this.#chunks[0] as Uint8Array) : concatChunks(this.#chunks, this.#have)
    let at = 0
    while (!this.settled) {
      const frame = this.#frameAt(bytes, at)
      if (frame === undefined) break
      if (frame.end > bytes.byteLength) {
        this.#need = frame.end - at
        break
      }
      this.#deliver(bytes.subarray(frame.start, frame.end))
      at = frame.end
      this.#need = 0
    }
    const rest = bytes.subarray(at)
    this.#chunks = rest.byteLength === 0 ? [] : [rest]
    this.#have = rest.byteLength
  }

  /** The entry whose header starts at `at`: where its payload starts and ends; undefined while the header is incomplete or bad. */
  #frameAt(bytes: Uint8Array, at: number): { start: number; end: number } | undefined {
    if (at >= bytes.byteLength) return undefined
    if (bytes[at] !== ENTRIES_TAG) {
      this.#undecodable(`unexpected tag ${bytes[at]}`)
      return undefined
    }
    const length = readVarint(bytes, at + 1)
    if (length === undefined) return undefined
    if (length.value > this.options.maxResponseBytes) {
      this.stop(new ResponseTooLargeError(this.options.peer, `sent a batch entry of ${length.value} bytes, over the ${this.options.maxResponseBytes}-byte cap`))
      return undefined
    }
    return { start: length.next, end: length.next + length.value }
  }

  #deliver(payload: Uint8Array): void {
    let entry: BatchEntryMessage
    try {
      entry = decodeBatchEntry(payload)
    } catch (err) {
      this.#undecodable((err as Error).message)
      return
    }
    this.#onEntry(entry)
  }

  #undecodable(why: string): void {
    this.stop(new PeerResponseError(this.options.peer, `answered a body that is not a BatchResponse: ${why}`, { status: 200 }))
  }
}

/** The longest varint a length may take: 5 bytes hold any uint32. */
const MAX_LENGTH_VARINT = 5

/** readVarint reads a length varint at `at`; undefined while incomplete. A longer one reads as too large. */
function readVarint(bytes: Uint8Array, at: number): { value: number; next: number } | undefined {
  let value = 0
  for (let i = 0; i < MAX_LENGTH_VARINT; i++) {
    const byte = bytes[at + i]
    if (byte === undefined) return undefined
    value += (byte & 0x7f) * 2 ** (7 * i)
    if (byte < 0x80) return { value, next: at + i + 1 }
  }
  return { value: Number.MAX_SAFE_INTEGER, next: at + MAX_LENGTH_VARINT }
}
