/**
 * send-queue: bounds the answer bytes the peer endpoint has handed to
 * sockets and the kernel has not taken yet (issue 23, "Bounded memory"). A
 * client that asks for many big values and never reads would otherwise make
 * the owner hold every answer in memory for as long as the connection lives.
 *
 *  - Per answer: a batch answer adds an entry only while its socket takes
 *    more (res.write() did not return false) and its queued bytes are under
 *    `maxQueuedBytes`, so it holds at most that plus one value; otherwise it
 *    waits (batch-answer.ts).
 *  - Per connection: a value answer is refused (a 503 marked busy, serve.ts)
 *    on a connection that already holds `maxQueuedBytes`: a client that
 *    pipelines gets and never reads gets small refusals, not values.
 *  - In all: while every answer together has `maxTotalQueuedBytes` or more
 *    queued, the queue is `full`: value answers are refused the same way
 *    (the asker loads locally, and does not hold it against the owner) and
 *    running batch answers stop adding values.
 *  - In time: an answer whose queued bytes the client does not take any of
 *    for `writeStallMs` has its connection reset, which releases them.
 *
 * Bytes are counted from the write until the socket's write callback (the
 * kernel took them), and released at the latest when the response or its
 * connection closes (a pipelined answer still waiting for the connection
 * sees no 'close' of its own when the connection dies).
 */
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

/** SendLimits are the bounds of a SendQueue (`server.*` options). */
export interface SendLimits {
  readonly maxQueuedBytes: number
  readonly maxTotalQueuedBytes: number
  readonly writeStallMs: number
}

/**
 * SLICE_BYTES is the largest single socket write: a bigger answer is written
 * in slices (views, no copy), so that a client reading slowly but steadily
 * shows progress at least every slice and is not taken for a stalled one.
 */
const SLICE_BYTES = 1024 * 1024

/** SendQueue counts the queued bytes of every answer of one endpoint (see the file comment). */
export class SendQueue {
  readonly limits: SendLimits
  #total = 0
  /** The largest total seen, for tests and status: the bound holds if this stays within it plus one answer's excess. */
  #peak = 0
  /** The ledgers of the connections holding tracked answers; an entry goes with its socket. */
  readonly #connections = new WeakMap<object, Connection>()

  constructor(limits: SendLimits) {
    this.limits = { maxQueuedBytes: limits.maxQueuedBytes, maxTotalQueuedBytes: limits.maxTotalQueuedBytes, writeStallMs: limits.writeStallMs }
  }

  /** total is the bytes every answer has queued now. */
  get total(): number {
    return this.#total
  }

  /** peak is the largest total seen so far. */
  get peak(): number {
    return this.#peak
  }

  /** full is true while the total is at its bound: no new value answer is started, no running batch adds a value. */
  get full(): boolean {
    return this.#total >= this.limits.maxTotalQueuedBytes
  }

  /**
   * refuses tells whether a value answer on `connection` (the request's
   * socket, when known) must be refused busy: the queue is full, or that
   * connection already holds maxQueuedBytes. Nothing queued anywhere (the
   * common case) costs one comparison.
   */
  refuses(connection: object | undefined): boolean {
    if (this.#total === 0) return false
    if (this.full) return true
    return connection !== undefined && (this.#connections.get(connection)?.queued ?? 0) >= this.limits.maxQueuedBytes
  }

  /** track starts counting the queued bytes of res; its writes go through the QueuedAnswer returned. */
  track(res: ServerResponse): QueuedAnswer {
    // A pipelined answer waiting behind another has no socket yet: its request knows the connection.
    const socket = res.socket ?? (res.req as { socket?: Socket | null } | undefined)?.socket ?? undefined
    return new QueuedAnswer(this, res, socket === undefined || socket === null ? undefined : this.#connectionOf(socket))
  }

  /**
   * send ends res with body (a whole answer, its headers set), counting
   * what the socket did not take at once. The common case — the kernel took
   * it all in the write — costs one property read and no listener.
   */
  send(res: ServerResponse, body: Uint8Array): void {
    if (body.byteLength <= SLICE_BYTES) {
      res.end(body)
      if (res.writableLength > 0) this.track(res).holdEnded(res.writableLength)
      return
    }
    const answer = this.track(res)
    answer.write(body)
    answer.end()
  }

  /** change adds delta (negative: released) to the total; for QueuedAnswer. */
  change(delta: number): void {
    this.#total += delta
    if (this.#total > this.#peak) this.#peak = this.#total
  }

  /** #connectionOf is socket's ledger, made at its first tracked answer with the one 'close' listener that releases them all. */
  #connectionOf(socket: Socket): Connection {
    const known = this.#connections.get(socket)
    if (known !== undefined) return known
    const made: Connection = { socket, queued: 0, answers: new Set() }
    this.#connections.set(socket, made)
    socket.once('close', () => {
      this.#connections.delete(socket)
      for (const answer of made.answers) answer.abandon()
    })
    return made
  }
}

/** Connection is what one connection's tracked answers hold: their queued bytes, and the answers themselves (to release them with it). */
interface Connection {
  readonly socket: Socket
  queued: number
  readonly answers: Set<QueuedAnswer>
}

/**
 * QueuedAnswer is one response's share of a SendQueue. Invariant: `queued`
 * is the bytes charged and not yet released, and the queue's total and its
 * connection's ledger hold exactly them until release; after the response
 * or its connection closes it is 0 and stays 0.
 */
export class QueuedAnswer {
  readonly #queue: SendQueue
  readonly #res: ServerResponse
  readonly #connection: Connection | undefined
  queued = 0
  #closed = false
  /** Armed while bytes are queued; refreshed whenever the client takes some; destroys the response when it fires. */
  #stall: NodeJS.Timeout | undefined
  /** Waiters for the next progress (bytes taken, 'drain' or close): one promise for all of them. */
  #progress: Promise<void> | undefined
  #wake: (() => void) | undefined

  constructor(queue: SendQueue, res: ServerResponse, connection: Connection | undefined) {
    this.#queue = queue
    this.#res = res
    this.#connection = connection
    connection?.answers.add(this)
    res.once('close', this.abandon)
  }

  /** gone is true once the response closed: nothing more is worth writing. */
  get gone(): boolean {
    return this.#closed
  }

  /** hasRoom is true while the socket takes more and this answer is under its bound (or gone: nothing waits for a closed one). */
  get hasRoom(): boolean {
    return this.#closed || (!this.#res.writableNeedDrain && this.queued < this.#queue.limits.maxQueuedBytes)
  }

  /** progress resolves on the next sign the answer moved: bytes taken, 'drain', or close. */
  progress(): Promise<void> {
    if (this.#closed) return Promise.resolve()
    this.#progress ??= new Promise((resolve) => {
      this.#wake = resolve
      this.#res.once('drain', this.#onProgress)
    })
    return this.#progress
  }

  /** charge counts bytes about to be written (write() of them follows, this tick). */
  charge(bytes: number): void {
    if (this.#closed || bytes === 0) return
    this.#count(bytes)
    if (this.#stall === undefined) {
      this.#stall = setTimeout(this.#onStall, this.#queue.limits.writeStallMs)
      this.#stall.unref()
    }
  }

  /** write writes bytes already charged, in slices; it returns what the last res.write() returned. */
  write(bytes: Uint8Array, charged = false): boolean {
    if (this.#closed) return false
    if (!charged) this.charge(bytes.byteLength)
    let ok = true
    for (let at = 0; at < bytes.byteLength; at += SLICE_BYTES) {
      const slice = bytes.byteLength <= SLICE_BYTES ? bytes : bytes.subarray(at, at + SLICE_BYTES)
      ok = this.#res.write(slice, () => this.#release(slice.byteLength))
    }
    return ok
  }

  /** end ends the response; bytes still queued stay counted until the client takes them (or the stall deadline). */
  end(): void {
    if (!this.#closed) this.#res.end()
  }

  /** holdEnded counts bytes of an ended response still queued, released once it finishes. */
  holdEnded(bytes: number): void {
    this.charge(bytes)
    this.#res.once('finish', () => this.#release(bytes))
  }

  #release(bytes: number): void {
    if (this.#closed) return
    this.#count(-bytes)
    if (this.queued > 0) this.#stall?.refresh()
    else this.#disarm()
    this.#onProgress()
  }

  #count(delta: number): void {
    this.queued += delta
    this.#queue.change(delta)
    if (this.#connection !== undefined) this.#connection.queued += delta
  }

  #disarm(): void {
    if (this.#stall !== undefined) clearTimeout(this.#stall)
    this.#stall = undefined
  }

  readonly #onProgress = (): void => {
    const wake = this.#wake
    if (wake === undefined) return
    this.#res.off('drain', this.#onProgress)
    this.#progress = undefined
    this.#wake = undefined
    wake()
  }

  /**
   * The client took none of the queued bytes for writeStallMs: drop it, its
   * bytes released on close. A reset, not a close: a close would leave the
   * kernel holding what it took, behind a FIN the client never reads.
   */
  readonly #onStall = (): void => {
    this.#stall = undefined
    const socket = this.#connection?.socket ?? this.#res.socket
    try {
      if (socket != null) socket.resetAndDestroy()
    } catch {
      // Not a TCP handle (TLS: the handle is the TLS layer's): a plain destroy.
    }
    this.#res.destroy()
  }

  /** abandon releases everything once the response or its connection closed; later calls do nothing. */
  readonly abandon = (): void => {
    if (this.#closed) return
    this.#disarm()
    this.#count(-this.queued)
    this.#closed = true
    this.#connection?.answers.delete(this)
    this.#res.off('close', this.abandon)
    this.#onProgress()
  }
}
