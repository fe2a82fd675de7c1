/**
 * batcher: coalesces the single gets that one process sends to one peer in
 * the same tick into one batch request (POST /_peercache/batch/{group}),
 * so a page that needs 50 keys from a peer costs one round trip, not 50.
 *
 * Gets are collected until the next `setImmediate` (everything issued in the
 * current macrotask, including its microtasks), then sent: one key as a
 * plain GET (what any groupcache peer understands), several as one batch.
 * Each key is settled as soon as its outcome is known (batch-channel.ts), and keeps
 * its own caller signal; the batch request is aborted only when every key's
 * caller has gone. Invariant: a flush whose callers brought no signal (the
 * common case: nobody can abort) makes no AbortController, adds no listener
 * and so creates no DOMException.
 *
 * A traced get brings its trace context as headers (tracing.ts); a batch
 * can carry one, so it carries its first traced waiter's: the owner's serve
 * span is that get's child, and the batch's other gets show only their own
 * fetch spans.
 */
import type { CacheEntry } from '../cache.js'
import { toAbortError } from '../singleflight.js'

/** TraceHeaders are the trace context headers a request carries, or undefined when untraced. */
export type TraceHeaders = Readonly<Record<string, string>> | undefined

/** BatchSender sends the keys of one group to the peer and settles each key's result. */
export interface BatchSender {
  /** sendOne fetches one key (a plain GET). */
  sendOne(group: string, key: string, signal: AbortSignal | undefined, headers: TraceHeaders): Promise<CacheEntry>
  /** sendMany fetches several keys; onResult hears each key's entry or error as soon as it is known. */
  sendMany(
    group: string,
    keys: readonly string[],
    signal: AbortSignal | undefined,
    onResult: (key: string, result: CacheEntry | Error) => void,
    headers: TraceHeaders,
  ): Promise<unknown>
}

interface Waiter {
  resolve(entry: CacheEntry): void
  reject(err: unknown): void
  signal: AbortSignal | undefined
  headers: TraceHeaders
}

/** Batcher queues one peer's gets per group and flushes them together. */
export class Batcher {
  readonly #sender: BatchSender
  readonly #maxKeys: number
  /** group → key → waiters; cleared by each flush. */
  #pending = new Map<string, Map<string, Waiter[]>>()
  #scheduled = false
  /** Whether a get of this flush came traced: only then is a flush's trace context looked for (untraced, nothing is walked). */
  #traced = false

  constructor(sender: BatchSender, maxKeys: number) {
    this.#sender = sender
    this.#maxKeys = maxKeys
  }

  /** get queues key of group for the next flush and resolves with its entry. */
  get(group: string, key: string, signal?: AbortSignal, headers?: TraceHeaders): Promise<CacheEntry> {
    if (signal?.aborted) return Promise.reject(toAbortError(signal.reason))
    return new Promise<CacheEntry>((resolve, reject) => {
      let keys = this.#pending.get(group)
      if (keys === undefined) this.#pending.set(group, (keys = new Map()))
      const waiters = keys.get(key)
      const waiter: Waiter = { resolve, reject, signal, headers }
      if (headers !== undefined) this.#traced = true
      if (waiters === undefined) keys.set(key, [waiter])
      else waiters.push(waiter)
      this.#schedule()
    })
  }

  #schedule(): void {
    if (this.#scheduled) return
    this.#scheduled = true
    setImmediate(() => this.#flush())
  }

  #flush(): void {
    this.#scheduled = false
    const traced = this.#traced
    this.#traced = false
    const pending = this.#pending
    this.#pending = new Map()
    for (const [group, keys] of pending) {
      const all = [...keys.entries()]
      for (let i = 0; i < all.length; i += this.#maxKeys) void this.#send(group, new Map(all.slice(i, i + this.#maxKeys)), traced)
    }
  }

  async #send(group: string, keys: Map<string, Waiter[]>, traced: boolean): Promise<void> {
    const joined = JoinedSignal.of([...keys.values()].flat())
    const headers = traced ? firstHeaders(keys) : undefined
    try {
      if (keys.size === 1) {
        const [key, waiters] = keys.entries().next().value as [string, Waiter[]]
        const entry = await this.#sender.sendOne(group, key, joined?.signal, headers)
        for (const waiter of waiters) waiter.resolve(entry)
        return
      }
      await this.#sender.sendMany(group, [...keys.keys()], joined?.signal, (key, result) => settle(keys.get(key), result), headers)
      // A key the sender never settled (it should not happen) must not hang its callers.
      for (const waiters of keys.values()) settle(waiters, new Error('batch answer lacks this key'))
    } catch (err) {
      for (const waiters of keys.values()) for (const waiter of waiters) waiter.reject(err)
    } finally {
      joined?.release()
    }
  }
}

/** firstHeaders is the trace context of the first traced waiter (in the order the gets came), the one a request carries. */
function firstHeaders(keys: Map<string, Waiter[]>): TraceHeaders {
  for (const waiters of keys.values()) for (const waiter of waiters) if (waiter.headers !== undefined) return waiter.headers
  return undefined
}

/** settle settles every waiter of a key (a settled promise ignores a second settle). */
function settle(waiters: Waiter[] | undefined, result: CacheEntry | Error): void {
  if (waiters === undefined) return
  for (const waiter of waiters) {
    if (result instanceof Error) waiter.reject(result)
    else waiter.resolve(result)
  }
}

/**
 * JoinedSignal aborts once every waiter's signal has aborted; each aborted
 * waiter is rejected at once. Made only when every waiter came with a
 * signal: a waiter without one can never leave, so the batch can never be
 * abandoned and needs no signal at all.
 */
class JoinedSignal {
  readonly #controller = new AbortController()
  readonly #listeners: Array<[AbortSignal, () => void]> = []
  #remaining: number

  static of(waiters: Waiter[]): JoinedSignal | undefined {
    return waiters.every((waiter) => waiter.signal !== undefined) ? new JoinedSignal(waiters) : undefined
  }

  private constructor(waiters: Waiter[]) {
    this.#remaining = waiters.length
    for (const waiter of waiters) {
      const signal = waiter.signal as AbortSignal
      const onAbort = (): void => {
        waiter.reject(toAbortError(signal.reason))
        if (--this.#remaining === 0) this.#controller.abort(signal.reason)
      }
      signal.addEventListener('abort', onAbort, { once: true })
      this.#listeners.push([signal, onAbort])
    }
  }

  get signal(): AbortSignal {
    return this.#controller.signal
  }

  /** release removes every listener (the request is over). */
  release(): void {
    for (const [signal, onAbort] of this.#listeners) signal.removeEventListener('abort', onAbort)
  }
}
