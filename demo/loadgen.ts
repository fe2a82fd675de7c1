/**
 * loadgen: the demo's load generator, standing in for users behind a load
 * balancer. `concurrency` workers each send one request at a time, round
 * robin over the instances, for keys drawn from a Zipf distribution. A
 * request that cannot be served (connection refused or reset, a 5xx) is
 * retried on the next instance, as a load balancer would; only a request
 * that fails on every attempt counts as an error.
 */
import { performance } from 'node:perf_hooks'
import { Pool } from 'undici'

/** LoadOptions configure one run. */
export interface LoadOptions {
  /** The instances' base URLs. */
  targets: readonly string[]
  /** Workers, each with one request in flight. */
  concurrency: number
  /** How long new requests are started, in ms. */
  durationMs: number
  /** Draws the next product id. */
  nextKey: () => number
  /** Highest product id nextKey can return. */
  keys: number
  /** Aborts the run early (Ctrl-C, a crashed app). */
  signal: AbortSignal
}

/** Outcome is one attempt's result. */
type Outcome = { ok: true } | { ok: false; retry: boolean; why: string }

/** Attempts per request: the first instance and up to two others. */
const MAX_ATTEMPTS = 3

/** LoadGenerator runs the load and keeps its tallies. */
export class LoadGenerator {
  /** Requests finished (served or failed). */
  requests = 0
  /** Requests that failed on every attempt (must stay 0). */
  errors = 0
  /** Requests served only after a retry on another instance. */
  retried = 0
  /** Requests served, by the instance that served them. */
  readonly served: number[]
  /** The first few error messages, for the summary. */
  readonly errorSamples: string[] = []
  /** Latency of every request in ms, retries included. */
  readonly latencies: number[] = []
  /** Distinct ids requested cluster-wide, and served by each instance. */
  readonly distinct: KeySet
  readonly distinctByTarget: KeySet[]
  /** When the load started and ended (performance.now() ms). */
  startedAt = 0
  endedAt = 0
  readonly #options: LoadOptions
  readonly #pools: Pool[]
  #nextTarget = 0

  constructor(options: LoadOptions) {
    this.#options = options
    const n = options.targets.length
    this.served = new Array<number>(n).fill(0)
    this.distinct = new KeySet(options.keys)
    this.distinctByTarget = options.targets.map(() => new KeySet(options.keys))
    this.#pools = options.targets.map(
      (url) => new Pool(url, { connections: options.concurrency, headersTimeout: 10_000, bodyTimeout: 10_000, connect: { timeout: 2_000 } }),
    )
    // Stopping early fails the requests in flight at once (they are not counted as errors of the cluster).
    options.signal.addEventListener('abort', () => void this.close(), { once: true })
  }

  /** run drives the load for durationMs (or until aborted) and waits for requests in flight. */
  async run(): Promise<void> {
    this.startedAt = performance.now()
    const end = this.startedAt + this.#options.durationMs
    const worker = async (): Promise<void> => {
      while (performance.now() < end && !this.#options.signal.aborted) await this.#oneRequest()
    }
    await Promise.all(Array.from({ length: this.#options.concurrency }, worker))
    this.endedAt = performance.now()
  }

  /** elapsedMs is the time since the load started. */
  elapsedMs(): number {
    return (this.endedAt || performance.now()) - this.startedAt
  }

  /** close closes every connection (destroying those in flight when the run was stopped). Idempotent. */
  async close(): Promise<void> {
    await Promise.all(this.#pools.map((pool) => (this.#options.signal.aborted ? pool.destroy() : pool.close()).catch(() => {})))
  }

  async #oneRequest(): Promise<void> {
    const id = this.#options.nextKey()
    this.distinct.add(id)
    const first = this.#nextTarget++ % this.#pools.length
    const started = performance.now()
    let lastError = ''
    for (let attempt = 0; attempt < Math.min(MAX_ATTEMPTS, this.#pools.length); attempt++) {
      const target = (first + attempt) % this.#pools.length
      const outcome = await this.#fetch(target, id)
      if (outcome.ok) {
        this.#served(target, id, attempt > 0, performance.now() - started)
        return
      }
      if (this.#options.signal.aborted) return // the run was stopped: abandoned, not an error of the cluster
      lastError = `${this.#options.targets[target]}/products/${id}: ${outcome.why}`
      if (!outcome.retry) break
    }
    this.requests++
    this.errors++
    if (this.errorSamples.length < 5) this.errorSamples.push(lastError)
  }

  #served(target: number, id: number, retried: boolean, latencyMs: number): void {
    this.requests++
    if (retried) this.retried++
    this.served[target]!++
    this.latencies.push(latencyMs)
    this.distinctByTarget[target]!.add(id)
  }

  /**
   * #fetch asks one instance for product id. A connection failure or a 5xx
   * is worth retrying elsewhere; any other answer is final.
   */
  async #fetch(target: number, id: number): Promise<Outcome> {
    let status: number
    let body: string
    try {
      const response = await this.#pools[target]!.request({ method: 'GET', path: `/products/${id}` })
      status = response.statusCode
      body = await response.body.text()
    } catch (err) {
      const code = (err as { code?: unknown }).code
      return { ok: false, retry: true, why: `${typeof code === 'string' ? `${code} ` : ''}${err instanceof Error ? err.message : String(err)}` }
    }
    if (status !== 200) return { ok: false, retry: status >= 500, why: `HTTP ${status} ${body.slice(0, 200)}` }
    // Check what came back: the product asked for, not a neighbour's.
    const productId = parseId(body)
    return productId === id ? { ok: true } : { ok: false, retry: false, why: `answered product ${String(productId)}` }
  }
}

/** parseId reads the id of a product's JSON, or undefined when the body is not a product. */
function parseId(body: string): unknown {
  try {
    return (JSON.parse(body) as { id?: unknown } | null)?.id
  } catch {
    return undefined
  }
}

/** KeySet is a set of ids 1..max as a bitmap, with its size. */
export class KeySet {
  size = 0
  readonly #bits: Uint8Array

  constructor(max: number) {
    this.#bits = new Uint8Array(max + 1)
  }

  add(id: number): void {
    if (this.#bits[id] === 1) return
    this.#bits[id] = 1
    this.size++
  }

  has(id: number): boolean {
    return this.#bits[id] === 1
  }

  /** ids lists the members in ascending order. */
  *ids(): Generator<number> {
    for (let id = 1; id < this.#bits.length; id++) if (this.#bits[id] === 1) yield id
  }
}
