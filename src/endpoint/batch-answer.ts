/**
 * batch-answer: the owner's side of a batch (POST /_peercache/batch/{group}).
 *
 * A batch is an optimisation, never a unit of failure (issue 13). So:
 *  - keys are deduplicated: naming a key 10,000 times costs one entry;
 *  - each key's entry is written as soon as it is ready: hits at once (one
 *    write), misses as their loads finish (BATCH_CONCURRENCY loads at a
 *    time), so one slow or failing key holds back no other key; the asker
 *    reads the entries as they stream in (batch-stream.ts);
 *  - entries ready in the same turn of the event loop go out in one write,
 *    with the headers when they are the first (a batch of misses whose loads
 *    end together costs one write, as a single get does); headers still
 *    unsent after HEADERS_GRACE_MS go alone, so a batch of slow loads shows
 *    the asker at once that its owner is alive (exchange.ts);
 *  - the answer is bounded: once BATCH_ANSWER_BUDGET bytes of values are
 *    written, or while the endpoint's send queue is full (send-queue.ts),
 *    further keys are answered `overBudget` without their value (the asker
 *    asks for them alone), so no batch makes the owner build a huge answer;
 *  - the answer is paced by its client: an entry is added only while the
 *    socket takes more and the answer has under maxQueuedBytes queued, so
 *    a client that does not read holds one bounded answer, until the stall
 *    deadline (writeStallMs) resets its connection;
 *  - a closing owner answers the keys it did not serve `unserved`, never a
 *    final error: for the asker that is a transport failure of those keys.
 * An answer with no miss that fits in maxQueuedBytes is sent whole with a
 * Content-Length (the fast path).
 */
import type { ServerResponse } from 'node:http'
import { ClosedError, NotFoundError } from '../errors.js'
import type { ServedEntry, ServedGroup } from '../group/owner.js'
import { encodeBatchResponse, type BatchEntryMessage } from '../proto/codec.js'
import { batchStatus } from '../proto/paths.js'
import type { QueuedAnswer, SendQueue } from './send-queue.js'

/** BATCH_CONCURRENCY bounds the loads one batch runs at once. */
const BATCH_CONCURRENCY = 64

/** BATCH_ANSWER_BUDGET bounds the value bytes of one batch answer (16 MiB). */
export const BATCH_ANSWER_BUDGET = 16 * 1024 * 1024

/**
 * HEADERS_GRACE_MS is how long a streamed answer holds its headers back for
 * its first entries to go with them. Far below any transport timeout's half
 * (when an asker starts asking whether its owner is alive).
 */
const HEADERS_GRACE_MS = 20

/** BATCH_ENTRY_OVERHEAD_BYTES bounds what an entry of a hit adds to its key and value when encoded (tags, lengths, status, expire, minute_qps). */
const BATCH_ENTRY_OVERHEAD_BYTES = 48

/** BatchContext is what a batch answer needs from the endpoint: when to stop serving, and the bounds on what it may queue. */
export interface BatchContext {
  closing(): boolean
  sendQueue: SendQueue
}

/**
 * writeBatch answers `keys` (deduplicated here) of group on res: whole when
 * every key is cached and the answer fits in maxQueuedBytes, else streamed
 * with backpressure (file comment). A full send queue was refused before (serve.ts).
 */
export async function writeBatch(group: ServedGroup, keys: readonly string[], res: ServerResponse, ctx: BatchContext): Promise<void> {
  const hits: BatchEntryMessage[] = []
  const misses: string[] = []
  let size = 0
  for (const key of new Set(keys)) {
    const entry = group.serveCached(key)
    if (entry === undefined) misses.push(key)
    else {
      hits.push(found(key, entry))
      // An upper bound of the encoded entry: a UTF-16 unit is at most 3 UTF-8 bytes.
      size += entry.value.byteLength + 3 * key.length + BATCH_ENTRY_OVERHEAD_BYTES
    }
  }
  const writer = new BatchWriter(res, ctx.sendQueue)
  if (misses.length === 0 && size <= ctx.sendQueue.limits.maxQueuedBytes) return writer.endWhole(hits)
  writer.start()
  for (const hit of hits) if (!writer.gone) await writer.addWhenRoom(hit)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < misses.length && !writer.gone) {
      const key = misses[next++] as string
      if (ctx.closing()) await writer.addWhenRoom(unserved(key, 'the owner is closing'))
      else if (writer.spent) await writer.addWhenRoom(overBudget(key))
      else await writer.addWhenRoom(await loadEntry(group, key))
    }
  }
  await Promise.all(Array.from({ length: Math.min(BATCH_CONCURRENCY, misses.length) }, worker))
  writer.end()
}

/** loadEntry loads one missed key (no signal: the load lands in the cache whoever waits) and maps its outcome to an entry. */
async function loadEntry(group: ServedGroup, key: string): Promise<BatchEntryMessage> {
  try {
    const entry = await group.serveLoad(key)
    return found(key, entry)
  } catch (err) {
    if (err instanceof NotFoundError) return failed(key, batchStatus.notFound, err)
    // A closed group could not serve the key: not the loader's answer.
    if (err instanceof ClosedError) return unserved(key, 'the owner is closing')
    return failed(key, batchStatus.loadFailed, err)
  }
}

/**
 * found is a batch's answer for a key served (flagged when stale: the
 * owner's stale windows), with the key's request rate here as minute_qps.
 */
function found(key: string, entry: ServedEntry): BatchEntryMessage {
  const message: BatchEntryMessage = { key, status: batchStatus.ok, value: entry.value, expiresAt: entry.expiresAt, minuteQps: entry.minuteQps }
  if (entry.stale === true) message.stale = true
  return message
}

function failed(key: string, status: number, err: unknown): BatchEntryMessage {
  return { key, status, expiresAt: 0, error: err instanceof Error ? err.message : String(err) }
}

function unserved(key: string, why: string): BatchEntryMessage {
  return { key, status: batchStatus.unserved, expiresAt: 0, error: why }
}

function overBudget(key: string): BatchEntryMessage {
  return { key, status: batchStatus.overBudget, expiresAt: 0, error: 'batch answer budget spent: ask for this key alone' }
}

/**
 * BatchWriter writes one batch answer: whole (endWhole) or streamed (start,
 * addWhenRoom..., end), every byte through the answer's QueuedAnswer (send-queue.ts).
 * Entries added in one turn of the event loop go out in one write: they are
 * queued and flushed on setImmediate (our own cork; the response is never
 * corked, see end()), the headers with the first of them.
 */
class BatchWriter {
  readonly #res: ServerResponse
  readonly #queue: SendQueue
  readonly #answer: QueuedAnswer
  #valueBytes = 0
  /** Encoded entries waiting for this turn's flush (already charged to #answer). */
  #queued: Uint8Array[] = []
  #flushing = false
  /** Armed by start() until the headers go out: with the first flush, or alone after HEADERS_GRACE_MS. */
  #headersTimer: NodeJS.Timeout | undefined

  constructor(res: ServerResponse, queue: SendQueue) {
    this.#res = res
    this.#queue = queue
    this.#answer = queue.track(res)
  }

  /** gone is true once the client is gone: nothing more is worth loading or writing. */
  get gone(): boolean {
    return this.#answer.gone
  }

  /** spent is true once no value is added any more: the answer carries BATCH_ANSWER_BUDGET bytes of values, or the send queue is full. */
  get spent(): boolean {
    return this.#valueBytes >= BATCH_ANSWER_BUDGET || this.#queue.full
  }

  /**
   * addWhenRoom adds entry once the answer has room (its socket takes more
   * and it is under maxQueuedBytes). Invariant: the last check of room and
   * the add run in one synchronous step, so however many workers wait, the
   * answer goes past its bound by one entry at most.
   */
  async addWhenRoom(entry: BatchEntryMessage): Promise<void> {
    while (!this.#answer.hasRoom) await this.#answer.progress()
    this.#add(entry)
  }

  /** #add queues one entry for this tick's write; a value once the answer is spent is replaced by overBudget. */
  #add(entry: BatchEntryMessage): void {
    if (this.gone) return
    this.#write(encodeBatchResponse([this.#admit(entry)]))
  }

  /** endWhole sends the entries as one body with a Content-Length. */
  endWhole(entries: BatchEntryMessage[]): void {
    const body = encodeBatchResponse(entries.map((entry) => this.#admit(entry)))
    this.#res.statusCode = 200
    this.#res.setHeader('Content-Type', 'application/x-protobuf')
    this.#res.setHeader('Content-Length', body.byteLength)
    this.#answer.write(body)
    this.#answer.end()
  }

  /**
   * start sets the headers; they go with the first entries, or alone after
   * HEADERS_GRACE_MS (the asker then knows the owner is alive and working).
   */
  start(): void {
    const res = this.#res
    res.statusCode = 200
    res.setHeader('Content-Type', 'application/x-protobuf')
    this.#headersTimer = setTimeout(this.#sendHeaders, HEADERS_GRACE_MS)
    this.#headersTimer.unref()
  }

  readonly #sendHeaders = (): void => {
    this.#headersTimer = undefined
    if (!this.gone && !this.#res.headersSent) this.#res.flushHeaders()
  }

  /**
   * end finishes the answer after writing what is queued. Invariant: the
   * response is never corked when end() runs — Node 22 (seen on 22.23) writes
   * the chunked terminator ahead of bytes still corked in the response, and a
   * corked response with a full buffer never emitted 'drain' there.
   */
  end(): void {
    this.#stopHeadersTimer()
    if (this.gone) return
    this.#flush()
    this.#answer.end()
  }

  #stopHeadersTimer(): void {
    if (this.#headersTimer === undefined) return
    clearTimeout(this.#headersTimer)
    this.#headersTimer = undefined
  }

  /** #admit is entry, or overBudget in its place when it carries a value and the answer is spent. */
  #admit(entry: BatchEntryMessage): BatchEntryMessage {
    const bytes = entry.value?.byteLength ?? 0
    if (bytes === 0) return entry
    if (this.spent) return overBudget(entry.key)
    this.#valueBytes += bytes
    return entry
  }

  #write(bytes: Uint8Array): void {
    this.#answer.charge(bytes.byteLength)
    this.#queued.push(bytes)
    if (this.#flushing) return
    this.#flushing = true
    setImmediate(this.#flush)
  }

  /** #flush writes the queued entries in one write (the headers with them when still unsent). */
  readonly #flush = (): void => {
    this.#flushing = false
    const queued = this.#queued
    if (queued.length === 0 || this.gone) return
    this.#stopHeadersTimer()
    this.#queued = []
    this.#answer.write(queued.length === 1 ? (queued[0] as Uint8Array) : Buffer.concat(queued), true)
  }
}
