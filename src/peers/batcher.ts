/**
 * batcher: coalesces the single gets that one process sends to one peer in
 * the same tick into one batch request (POST /_peercache/batch/{group}),
 * so a page that needs 50 keys from a peer costs one round trip, not 50.
 *
 * Gets are collected until the next `setImmediate` (everything issued in the
 * current macrotask, including its microtasks), then sent: one key as a
 * plain GET (what any groupcache peer understands), several as one batch.
 * Each key keeps its own caller signal; the batch request is aborted only
 * when every key's caller has gone.
 */
import { setMaxListeners } from 'node:events'
import type { CacheEntry } from '../cache.js'
import { toAbortError } from '../singleflight.js'

/** BatchSender sends the keys of one group to the peer and settles each key's result. */
export interface BatchSender {
  /** sendOne fetches one key (a plain GET). */
  sendOne(group: string, key: string, signal: AbortSignal): Promise<CacheEntry>
  /** sendMany fetches several keys; the map holds, per key, its entry or its error. */
  sendMany(group: string, keys: readonly string[], signal: AbortSignal): Promise<Map<string, CacheEntry | Error>>
}

interface Waiter {
  resolve(entry: CacheEntry): void
  reject(err: unknown): void
  signal: AbortSignal | undefined
}

/** Batcher queues one peer's gets per group and flushes them together. */
export class Batcher {
  readonly #sender: BatchSender
  readonly #maxKeys: number
  /** group → key → waiters; cleared by each flush. */
  #pending = new Map<string, Map<string, Waiter[]>>()
  #scheduled = false

  constructor(sender: BatchSender, maxKeys: number) {
    this.#sender = sender
    this.#maxKeys = maxKeys
  }

  /** get queues key of group for the next flush and resolves with its entry. */
  get(group: string, key: string, signal?: AbortSignal): Promise<CacheEntry> {
    if (signal?.aborted) return Promise.reject(toAbortError(signal.reason))
    return new Promise<CacheEntry>((resolve, reject) => {
      let keys = this.#pending.get(group)
      if (keys === undefined) this.#pending.set(group, (keys = new Map()))
      const waiters = keys.get(key)
      const waiter: Waiter = { resolve, reject, signal }
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
    const pending = this.#pending
    this.#pending = new Map()
    for (const [group, keys] of pending) {
      const all = [...keys.entries()]
      for (let i = 0; i < all.length; i += this.#maxKeys) void this.#send(group, new Map(all.slice(i, i + this.#maxKeys)))
    }
  }

  async #send(group: string, keys: Map<string, Waiter[]>): Promise<void> {
    const done = new AbortController()
    // One listener per key of the batch, by design: not a leak.
    setMaxListeners(0, done.signal)
    const signal = joinedSignal([...keys.values()].flat(), done.signal)
    try {
      if (keys.size === 1) {
        const [key, waiters] = keys.entries().next().value as [string, Waiter[]]
        const entry = await this.#sender.sendOne(group, key, signal)
        for (const waiter of waiters) waiter.resolve(entry)
        return
      }
      const results = await this.#sender.sendMany(group, [...keys.keys()], signal)
      for (const [key, waiters] of keys) settle(waiters, results.get(key))
    } catch (err) {
      for (const waiters of keys.values()) for (const waiter of waiters) waiter.reject(err)
    } finally {
      done.abort() // removes the abort listeners added by joinedSignal
    }
  }
}

function settle(waiters: Waiter[], result: CacheEntry | Error | undefined): void {
  for (const waiter of waiters) {
    if (result instanceof Error) waiter.reject(result)
    else if (result === undefined) waiter.reject(new Error('batch answer lacks this key'))
    else waiter.resolve(result)
  }
}

/**
 * joinedSignal aborts once every waiter's signal has aborted (a waiter
 * without a signal keeps it alive); each aborted waiter is rejected at once.
 * The listeners live until `until` aborts (the end of the request).
 */
function joinedSignal(waiters: Waiter[], until: AbortSignal): AbortSignal {
  const controller = new AbortController()
  setMaxListeners(0, controller.signal)
  let remaining = waiters.length
  for (const waiter of waiters) {
    const signal = waiter.signal
    if (signal === undefined) continue
    signal.addEventListener(
      'abort',
      () => {
        waiter.reject(toAbortError(signal.reason))
        if (--remaining === 0) controller.abort(signal.reason)
      },
      { once: true, signal: until },
    )
  }
  return controller.signal
}
