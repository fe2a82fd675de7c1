/**
 * loader-context: LoadContext is the second argument a loader gets: the
 * signal that aborts when nobody waits for this load any more, and
 * `setTtl`, so that any loader — a typed group's too, whose value cannot be
 * a `{ value, ttl }` record — can give the value it returns a time to live
 * of its own, as bentocache's `ctx.setTtl` and lru-cache's `fetchMethod`
 * `options.ttl` do. One is made per load; its signal only when read.
 */
import type { LoaderContext } from './options.js'
import { checkTtl } from '../inputs.js'
import type { FlightContext } from '../singleflight.js'

/** LoadContext implements LoaderContext for one run of a loader. */
export class LoadContext implements LoaderContext {
  readonly #flight: FlightContext
  readonly #clock: () => number
  #ttl: number | undefined

  /** flight is the load's flight (its signal); clock gives epoch ms (to check a ttl against the wire's range). */
  constructor(flight: FlightContext, clock: () => number) {
    this.#flight = flight
    this.#clock = clock
  }

  get signal(): AbortSignal {
    return this.#flight.signal
  }

  setTtl(ms: number): void {
    checkTtl(ms, this.#clock())
    this.#ttl = ms
  }

  /** ttl is what setTtl last set, or undefined (then the group's ttl applies). */
  get ttl(): number | undefined {
    return this.#ttl
  }
}
