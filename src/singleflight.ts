/**
 * singleflight collapses concurrent calls for one key into one execution, as
 * golang/groupcache's singleflight does, and fixes what that one leaves open:
 *
 *  - cleanup happens in `finally`, so a function that throws never wedges its
 *    key (golang/groupcache#139);
 *  - each caller may stop waiting through its own `signal`; the shared work
 *    goes on for the others, and is aborted only when the last waiter leaves
 *    (or `abortAll()` is called on shutdown);
 *  - `forget(key)` detaches a flight so that later callers start a new one and
 *    the detached flight can tell (`isCurrent()`) that its result is stale.
 */
import { AbortError } from './errors.js'

/** FlightContext is what the shared function receives. */
export interface FlightContext {
  /** Aborted when every waiter has gone, or on abortAll(). */
  readonly signal: AbortSignal
  /** False once the flight was forgotten: its result must not be cached. */
  isCurrent(): boolean
}

interface Flight<T> {
  promise: Promise<T>
  controller: AbortController
  waiters: number
  settled: boolean
}

/** Singleflight runs at most one function per key at a time and shares its result. */
export class Singleflight<T> {
  readonly #flights = new Map<string, Flight<T>>()

  /** size is the number of flights in progress (for tests and stats). */
  get size(): number {
    return this.#flights.size
  }

  /**
   * do runs `fn` for `key` unless a flight for it is already running, in
   * which case it waits for that one. `signal` ends only this caller's wait.
   */
  do(key: string, fn: (ctx: FlightContext) => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(toAbortError(signal.reason))
    const flight = this.#flights.get(key) ?? this.#start(key, fn)
    return this.#wait(key, flight, signal)
  }

  /** forget detaches the key's current flight: new callers start afresh and its result is stale. */
  forget(key: string): void {
    this.#flights.delete(key)
  }

  /** drain resolves once every flight now in progress has settled (shutdown waits on it). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.#flights.values()].map((flight) => flight.promise))
  }

  /** abortAll aborts every flight's function (used by close()). */
  abortAll(reason: unknown): void {
    for (const flight of this.#flights.values()) flight.controller.abort(reason)
    this.#flights.clear()
  }

  #start(key: string, fn: (ctx: FlightContext) => Promise<T>): Flight<T> {
    const controller = new AbortController()
    const flight: Flight<T> = { promise: undefined as never, controller, waiters: 0, settled: false }
    const ctx: FlightContext = { signal: controller.signal, isCurrent: () => this.#flights.get(key) === flight }
    this.#flights.set(key, flight)
    flight.promise = (async () => {
      try {
        return await fn(ctx)
      } finally {
        flight.settled = true
        // Only remove our own entry: a forgotten flight may have been replaced.
        if (this.#flights.get(key) === flight) this.#flights.delete(key)
      }
    })()
    // A flight whose every waiter left still settles; nobody awaits it then.
    flight.promise.catch(() => {})
    return flight
  }

  async #wait(key: string, flight: Flight<T>, signal: AbortSignal | undefined): Promise<T> {
    flight.waiters++
    try {
      return await (signal === undefined ? flight.promise : abortable(flight.promise, signal))
    } finally {
      flight.waiters--
      this.#releaseIfAbandoned(key, flight)
    }
  }

  /**
   * The shared function is aborted only when no caller waits any more.
   * Invariant: `waiters` counts every caller still waiting; a caller without
   * a signal leaves only once the flight has settled, so it keeps it alive.
   */
  #releaseIfAbandoned(key: string, flight: Flight<T>): void {
    if (flight.settled || flight.waiters > 0 || flight.controller.signal.aborted) return
    flight.controller.abort(new AbortError('every caller stopped waiting'))
    // Detach now, so that a new caller starts a fresh flight instead of
    // joining one whose function is being aborted.
    if (this.#flights.get(key) === flight) this.#flights.delete(key)
  }
}

/**
 * abortable settles with `promise`, or rejects with an AbortError carrying
 * the signal's reason as soon as `signal` aborts, whichever comes first. The
 * listener is always removed, so long-lived signals do not leak listeners.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(toAbortError(signal.reason))
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(toAbortError(signal.reason))
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}

/** toAbortError wraps a signal's reason in our typed AbortError (kept as `cause`). */
export function toAbortError(reason: unknown): AbortError {
  if (reason instanceof AbortError) return reason
  const why = reason instanceof Error ? reason.message : String(reason)
  return new AbortError(`aborted: ${why}`, { cause: reason })
}
