/**
 * batch-answer: the owner's side of a batch (POST /_peercache/batch/{group}).
 *
 * A batch is an optimisation, never a unit of failure (issue 13). So:
 *  - keys are deduplicated: naming a key 10,000 times costs one entry;
 *  - each key's entry is written as soon as it is ready: hits at once (one
 *    write), misses as their loads finish (BATCH_CONCURRENCY loads at a
 *    time), so one slow or failing key holds back no other key; the asker
 *    reads the entries as they stream in (batch-stream.ts);
 *  - the answer is bounded: once BATCH_ANSWER_BUDGET bytes of values are
 *    written, further keys are answered `overBudget` without their value
 *    (the asker asks for them alone), so no batch makes the owner build or
 *    buffer a huge answer; writes wait for the socket to drain;
 *  - a closing owner answers the keys it did not serve `unserved`, never a
 *    final error: for the asker that is a transport failure of those keys.
 * An answer with no miss is sent whole with a Content-Length (the fast path).
 */
import type { ServerResponse } from 'node:http'
import type { CacheEntry } from '../cache.js'
import { ClosedError, NotFoundError } from '../errors.js'
import type { ServedEntry, ServedGroup } from '../group/owner.js'
import { encodeBatchResponse, type BatchEntryMessage } from '../proto/codec.js'
import { batchStatus } from '../proto/paths.js'

/** BATCH_CONCURRENCY bounds the loads one batch runs at once. */
const BATCH_CONCURRENCY = 64

/** BATCH_ANSWER_BUDGET bounds the value bytes of one batch answer (16 MiB). */
export const BATCH_ANSWER_BUDGET = 16 * 1024 * 1024

/** writeBatch answers `keys` (deduplicated here) of group on res; `closing` tells when to stop serving. */
export async function writeBatch(group: ServedGroup, keys: readonly string[], res: ServerResponse, closing: () => boolean): Promise<void> {
  const writer = new BatchWriter(res)
  const misses: string[] = []
  for (const key of new Set(keys)) {
    const entry = group.serveCached(key)
    if (entry === undefined) misses.push(key)
    else writer.add(found(key, entry), entry.value.byteLength)
  }
  if (misses.length === 0) return writer.endWhole()
  writer.start()
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < misses.length && !writer.gone) {
      const key = misses[next++] as string
      if (closing()) writer.add(unserved(key, 'the owner is closing'), 0)
      else if (writer.spent) writer.add(overBudget(key), 0)
      else {
        const entry = await loadEntry(group, key)
        writer.add(entry, entry.value?.byteLength ?? 0)
      }
      await writer.drained()
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
 * add..., end). Entries added in one tick go out in one write: they are
 * queued and flushed on the next tick (our own cork; the response is never
 * corked, see end()).
 */
class BatchWriter {
  readonly #res: ServerResponse
  #pending: BatchEntryMessage[] = []
  #valueBytes = 0
  #streaming = false
  /** Encoded entries waiting for this tick's flush. */
  #queued: Uint8Array[] = []
  /** Resolves once the queued entries are written; undefined when nothing is queued. */
  #flushed: Promise<void> | undefined
  /** Resolves on the socket's next 'drain' (or close); shared by every worker that waits. */
  #drainWait: Promise<void> | undefined
  /** True once the client is gone: nothing more is worth loading or writing. */
  gone = false

  constructor(res: ServerResponse) {
    this.#res = res
  }

  /** spent is true once the answer carries BATCH_ANSWER_BUDGET bytes of values. */
  get spent(): boolean {
    return this.#valueBytes >= BATCH_ANSWER_BUDGET
  }

  /** add queues (whole) or writes (streamed) one entry; a value past the budget is replaced by overBudget. */
  add(entry: BatchEntryMessage, valueBytes: number): void {
    if (valueBytes > 0 && this.spent) entry = overBudget(entry.key)
    else this.#valueBytes += valueBytes
    if (!this.#streaming) this.#pending.push(entry)
    else this.#write(encodeBatchResponse([entry]))
  }

  /** endWhole sends the queued entries as one body with a Content-Length. */
  endWhole(): void {
    const body = encodeBatchResponse(this.#pending)
    this.#res.statusCode = 200
    this.#res.setHeader('Content-Type', 'application/x-protobuf')
    this.#res.setHeader('Content-Length', body.byteLength)
    this.#res.end(body)
  }

  /** start sends the headers at once (the asker then knows the owner is alive and working), then the queued entries. */
  start(): void {
    const res = this.#res
    res.once('close', () => {
      this.gone = !res.writableFinished
    })
    res.statusCode = 200
    res.setHeader('Content-Type', 'application/x-protobuf')
    res.flushHeaders()
    this.#streaming = true
    if (this.#pending.length > 0) this.#write(encodeBatchResponse(this.#pending))
    this.#pending = []
  }

  /**
   * drained resolves once the socket can take more: after this tick's flush,
   * at once unless that write filled the socket's buffer, else on 'drain'
   * (or when the client is gone).
   */
  drained(): Promise<void> {
    if (this.gone) return Promise.resolve()
    if (this.#flushed !== undefined) return this.#flushed.then(() => this.#drain())
    return this.#drain()
  }

  /**
   * end finishes the answer after writing what is queued. Invariant: the
   * response is never corked when end() runs — Node 22 (seen on 22.23) writes
   * the chunked terminator ahead of bytes still corked in the response, and a
   * corked response with a full buffer never emitted 'drain' there.
   */
  end(): void {
    if (this.gone) return
    this.#flush()
    this.#res.end()
  }

  /** #drain waits for 'drain' once for all workers (one pair of listeners, however many wait). */
  #drain(): Promise<void> {
    const res = this.#res
    if (!res.writableNeedDrain || this.gone) return Promise.resolve()
    this.#drainWait ??= new Promise((resolve) => {
      const done = (): void => {
        res.off('drain', done)
        res.off('close', done)
        this.#drainWait = undefined
        resolve()
      }
      res.on('drain', done)
      res.on('close', done)
    })
    return this.#drainWait
  }

  #write(bytes: Uint8Array): void {
    if (this.gone) return
    this.#queued.push(bytes)
    this.#flushed ??= new Promise((resolve) => process.nextTick(() => resolve(this.#flush())))
  }

  #flush(): void {
    this.#flushed = undefined
    const queued = this.#queued
    if (queued.length === 0 || this.gone) return
    this.#queued = []
    this.#res.write(queued.length === 1 ? (queued[0] as Uint8Array) : Buffer.concat(queued))
  }
}
