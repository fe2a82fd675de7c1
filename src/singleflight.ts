/**
 * singleflight collapses concurrent calls for one key into one execution, as
 * golang/groupcache's singleflight does, and fixes what that one leaves open:
 *
 *  - cleanup runs however fn ends (returns, throws, rejects), so a function
 *    that throws never wedges its key (golang/groupcache#139);
 *  - each caller may stop waiting through its own `signal`; the shared work
 *    goes on for the others, and is aborted only when the last waiter leaves
 *    (or `abortAll()` is called on shutdown, which also releases every
 *    waiter at once, whether or not the work heeds its signal);
 *  - `forget(key)` detaches a flight so that later callers start a new one and
 *    the detached flight can tell (`isCurrent()`) that its result is stale.
 */
import { AbortFanout, toAbortError } from './abort-fanout.js'
import { AbortError } from './errors.js'

export { toAbortError }

/** FlightContext is what the shared function receives. */
export interface FlightContext {
  /**
   * Aborted when every waiter has gone, or on abortAll(). Made on first
   * read: an AbortSignal costs more than the rest of a flight, and most
   * flights never need one.
   */
  readonly signal: AbortSignal
  /** aborted is signal.aborted without making the signal. */
  readonly aborted: boolean
  /** reason is why the flight was aborted (undefined while it was not). */
  readonly reason: unknown
  /**
   * abandonSignal is `signal` when the flight can be abandoned (its first
   * caller came with a signal of its own), else undefined. Hand it to work
   * done for the flight (a peer request, a nested flight): a flight whose
   * first caller has no signal is never abandoned, and on abortAll() the
   * waiters are released at once, whether or not that work stops.
   */
  readonly abandonSignal: AbortSignal | undefined
  /** False once the flight was forgotten: its result must not be cached. */
  isCurrent(): boolean
}

/** Singleflight runs at most one function per key at a time and shares its result. */
export class Singleflight<T> {
  readonly #flights = new Map<string, Flight<T>>()
  /** One abort listener per caller signal, for all its waits (getMany hands one signal to every key). */
  readonly #aborts = new AbortFanout()

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
    let flight = this.#flights.get(key)
    if (flight === undefined) {
      flight = new Flight(this.#flights, key, signal !== undefined)
      this.#flights.set(key, flight)
      void flight.run(fn)
    }
    return this.#wait(key, flight, signal)
  }

  /** forget detaches the key's current flight: new callers start afresh and its result is stale. */
  forget(key: string): void {
    this.#flights.delete(key)
  }

  /** forgetAll detaches every flight (a group's clear): their results are stale, new callers start afresh. */
  forgetAll(): void {
    this.#flights.clear()
  }

  /** drain resolves once every flight now in progress has settled (shutdown waits on it). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.#flights.values()].map((flight) => flight.promise))
  }

  /** abortAll aborts every flight's function and rejects its waiters with `reason` (used by close()). */
  abortAll(reason: unknown): void {
    for (const flight of this.#flights.values()) flight.abort(reason)
    this.#flights.clear()
  }

  #wait(key: string, flight: Flight<T>, signal: AbortSignal | undefined): Promise<T> {
    flight.waiters++
    // Invariant: a caller without a signal waits until the flight settles,
    // so it never leaves early and there is nothing to release for it.
    if (signal === undefined) return flight.promise
    const leave = (): void => {
      flight.waiters--
      this.#releaseIfAbandoned(key, flight)
    }
    const waiting = this.#aborts.wait(flight.promise, signal)
    waiting.then(leave, leave)
    return waiting
  }

  /**
   * The shared function is aborted only when no caller waits any more.
   * Invariant: `waiters` counts every caller still waiting; a caller without
   * a signal leaves only once the flight has settled, so it keeps it alive.
   */
  #releaseIfAbandoned(key: string, flight: Flight<T>): void {
    if (flight.settled || flight.waiters > 0 || flight.aborted) return
    flight.abort(new AbortError('every caller stopped waiting'))
    // Detach now, so that a new caller starts a fresh flight instead of
    // joining one whose function is being aborted.
    if (this.#flights.get(key) === flight) this.#flights.delete(key)
  }
}

/**
 * Flight is one run of a shared function, and the context it receives. A
 * class, not an object literal: a flight is made per miss, and a literal
 * with getters costs more to make than the rest of the flight.
 */
class Flight<T> implements FlightContext {
  /** Settles with fn's result, or rejects at once on abort. */
  readonly promise: Promise<T>
  waiters = 0
  settled = false
  #resolve!: (value: T) => void
  #reject!: (reason: unknown) => void
  /** Made on the first read of `signal` (see FlightContext.signal). */
  #controller: AbortController | undefined
  #aborted = false
  #reason: unknown
  readonly #flights: Map<string, Flight<T>>
  readonly #key: string
  readonly #abandonable: boolean

  constructor(flights: Map<string, Flight<T>>, key: string, abandonable: boolean) {
    this.#flights = flights
    this.#key = key
    this.#abandonable = abandonable
    // Invariant: every do() hands this promise to a handler (its caller's,
    // or abortable's), so a rejection is never unhandled here; a flight
    // whose every waiter left still settles into abortable's handlers.
    this.promise = new Promise<T>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController()
      if (this.#aborted) this.#controller.abort(this.#reason)
    }
    return this.#controller.signal
  }

  get aborted(): boolean {
    return this.#aborted
  }

  get reason(): unknown {
    return this.#reason
  }

  get abandonSignal(): AbortSignal | undefined {
    return this.#abandonable ? this.signal : undefined
  }

  isCurrent(): boolean {
    return this.#flights.get(this.#key) === this
  }

  /** run calls fn once and settles the flight with its outcome (a synchronous throw included). */
  async run(fn: (ctx: FlightContext) => Promise<T>): Promise<void> {
    try {
      const value = await fn(this)
      this.#finish()
      this.#resolve(value)
    } catch (err) {
      this.#finish()
      this.#reject(err)
    }
  }

  /** abort aborts fn's signal (if made) and rejects the waiters at once. */
  abort(reason: unknown): void {
    if (this.#aborted) return
    this.#aborted = true
    this.#reason = reason
    this.#controller?.abort(reason)
    this.#reject(reason)
  }

  #finish(): void {
    this.settled = true
    // Only remove our own entry: a forgotten flight may have been replaced.
    if (this.#flights.get(this.#key) === this) this.#flights.delete(this.#key)
  }
}

/**
 * abortable settles with `promise`, or rejects with an AbortError carrying
 * the signal's reason as soon as `signal` aborts, whichever comes first. The
 * listener is always removed, so long-lived signals do not leak listeners.
 * (A one-off wait; Singleflight shares one listener per signal, abort-fanout.ts.)
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new AbortFanout().wait(promise, signal)
}
