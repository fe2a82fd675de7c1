/**
 * cluster-origin: the cluster benchmark's origin, standing in for a database
 * an app queries: every load waits 5 ms (a round trip, no CPU) and is counted,
 * so the benchmark can report origin queries per distinct key.
 */
import { setTimeout as sleep } from 'node:timers/promises'

/** DESCRIPTION pads each item to the size of a small product record (~250 bytes of JSON). */
const DESCRIPTION = 'A sturdy, well made item that does what it says on the box. '.repeat(3).trim()

/** Origin is one app process's view of the database: a slow, counted query. */
export class Origin {
  /** queries counts every load this process made. */
  queries = 0
  readonly #latencyMs: number

  constructor(latencyMs: number) {
    this.#latencyMs = latencyMs
  }

  /** load waits the query's latency, counts it, and returns the item's JSON. */
  async load(id: string): Promise<string> {
    await sleep(this.#latencyMs)
    this.queries++
    return itemJson(id)
  }
}

/** itemJson is item `id` as the origin returns it: deterministic, ~250 bytes. */
export function itemJson(id: string): string {
  const n = Number(id)
  return JSON.stringify({ id: n, name: `Item ${id}`, priceCents: (n * 7919) % 100_000, stock: n % 97, description: DESCRIPTION })
}
