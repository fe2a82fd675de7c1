/**
 * cluster-loadgen: the cluster benchmark's load generator, in its own process
 * so its CPU is counted apart from the apps'. Closed loop (the default):
 * `concurrency` workers each keep one `GET /item/:id` in flight. Open loop
 * (`rate`): requests leave on a fixed schedule, `rate` per second, whatever
 * the latency (a slow answer does not slow the sending, as with real users),
 * with at most `maxInFlight` in flight: a request due while that many are
 * out is not sent and counted as `dropped`; its latency runs from the time it
 * was due, not from when it left (no coordinated omission). Either way
 * requests go round robin over the apps, over undici keep-alive pools; ids
 * are drawn from a seeded Zipf distribution. Every
 * `sample` request answers what happened since the previous one: requests,
 * errors, p50/p99 latency, CPU time, requests served and the slowest per half
 * second of the window's first seconds, and how often each app was asked for
 * each id (to tell gets for remote-owned keys apart). `progress` answers
 * how many requests were served since the start (the warm-up waits on it).
 *
 * Usage (by cluster.ts only): cluster-loadgen.ts, then a `start` request.
 */
import { performance } from 'node:perf_hooks'
import { Pool } from 'undici'
import { mulberry32, zipfSampler } from '../demo/zipf.js'
import { KeySet } from '../demo/loadgen.js'
import { serveParent, type Message } from './cluster-ipc.js'
import { TIMELINE_STEP_MS, TIMELINE_STEPS, type TimelineStep } from './cluster-timeline.js'

/** LoadPlan is what the `start` request carries. */
export interface LoadPlan {
  targets: string[]
  concurrency: number
  keys: number
  zipfS: number
  seed: number
  /** Open loop: requests per second over all targets; undefined for the closed loop. */
  rate?: number | undefined
  /** Open loop: the most requests in flight at once (bounds memory and sockets when the apps fall behind). */
  maxInFlight?: number
}

/** How often the open loop's scheduler wakes up to send the requests that fell due. */
const TICK_MS = 1

/** LoadSample is the answer to `sample`: the window since the previous sample. */
export interface LoadSample {
  windowMs: number
  requests: number
  errors: number
  firstError: string | undefined
  p50Ms: number
  p99Ms: number
  /** Open loop: requests due but not sent because maxInFlight were out. */
  dropped: number
  cpuMicros: number
  /** idCounts[t][id]: how often app t was asked for id in the window. */
  idCounts: number[][]
  /** distinct ids requested since the start (not only in the window). */
  distinct: number
  /** The window's first TIMELINE_STEPS steps, by the time each request was due. */
  timeline: TimelineStep[]
}

/** Load runs the workers and keeps the window's tallies. */
class Load {
  readonly #plan: LoadPlan
  readonly #pools: Pool[]
  readonly #next: () => number
  readonly #distinct: KeySet
  #running = true
  #workers: Promise<void> = Promise.resolve()
  #target = 0
  #inFlight = 0
  /** Requests served since the start. */
  total = 0
  #window: Window

  constructor(plan: LoadPlan) {
    this.#plan = plan
    this.#pools = plan.targets.map((url) => new Pool(url, { connections: plan.concurrency, headersTimeout: 10_000, bodyTimeout: 10_000 }))
    this.#next = zipfSampler(plan.keys, plan.zipfS, mulberry32(plan.seed))
    this.#distinct = new KeySet(plan.keys)
    this.#window = newWindow(plan.targets.length, plan.keys)
  }

  start(): void {
    this.#window = newWindow(this.#plan.targets.length, this.#plan.keys)
    const rate = this.#plan.rate
    if (rate !== undefined) this.#workers = this.#openLoop(rate, this.#plan.maxInFlight ?? 1024)
    else this.#workers = Promise.all(Array.from({ length: this.#plan.concurrency }, () => this.#worker())).then(() => {})
  }

  /** sample returns the window since the last sample and starts a new one. */
  sample(): LoadSample {
    const w = this.#window
    this.#window = newWindow(this.#plan.targets.length, this.#plan.keys)
    const cpu = process.cpuUsage(w.cpu)
    const sorted = Float64Array.from(w.latencies).sort()
    const windowMs = performance.now() - w.startedAt
    return {
      windowMs,
      requests: w.requests,
      errors: w.errors,
      firstError: w.firstError,
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
      dropped: w.dropped,
      cpuMicros: cpu.user + cpu.system,
      idCounts: w.idCounts.map((counts) => Array.from(counts)),
      distinct: this.#distinct.size,
      // Only the steps the window covered whole.
      timeline: w.timeline.slice(0, Math.floor(windowMs / TIMELINE_STEP_MS)),
    }
  }

  async stop(): Promise<void> {
    this.#running = false
    await this.#workers
    await Promise.all(this.#pools.map((pool) => pool.close()))
  }

  async #worker(): Promise<void> {
    while (this.#running) await this.#request(performance.now())
  }

  /**
   * openLoop sends request i at start + i/rate ms, each tick sending every
   * request that fell due since the last (bounded by maxInFlight), until
   * stop. Resolves once stopped; the pools' close waits for those in flight.
   */
  #openLoop(rate: number, maxInFlight: number): Promise<void> {
    const intervalMs = 1000 / rate
    const startedAt = performance.now()
    let sent = 0
    return new Promise((resolve) => {
      const tick = (): void => {
        if (!this.#running) return resolve()
        const due = Math.floor((performance.now() - startedAt) / intervalMs)
        for (; sent < due; sent++) {
          if (this.#inFlight >= maxInFlight) this.#window.dropped++
          else void this.#request(startedAt + sent * intervalMs)
        }
        setTimeout(tick, TICK_MS)
      }
      tick()
    })
  }

  /** request sends one request; its latency counts from `dueAt` (when it left, or was due to in the open loop). */
  async #request(dueAt: number): Promise<void> {
    const id = this.#next()
    const target = this.#target++ % this.#pools.length
    this.#inFlight++
    this.#distinct.add(id)
    try {
      const { statusCode, body } = await this.#pools[target]!.request({ method: 'GET', path: `/item/${id}` })
      await body.dump()
      if (statusCode !== 200) throw new Error(`HTTP ${statusCode}`)
      this.#served(target, id, dueAt, performance.now() - dueAt)
    } catch (err) {
      this.#window.errors++
      this.#window.firstError ??= `${this.#plan.targets[target]}/item/${id}: ${err instanceof Error ? err.message : String(err)}`
    } finally {
      this.#inFlight--
    }
  }

  #served(target: number, id: number, dueAt: number, latencyMs: number): void {
    const w = this.#window
    this.total++
    w.requests++
    w.latencies.push(latencyMs)
    w.idCounts[target]![id]!++
    const step = w.timeline[Math.floor((dueAt - w.startedAt) / TIMELINE_STEP_MS)]
    if (step === undefined) return
    step.requests++
    if (latencyMs > step.maxMs) step.maxMs = latencyMs
  }
}

interface Window {
  startedAt: number
  cpu: NodeJS.CpuUsage
  requests: number
  errors: number
  firstError: string | undefined
  dropped: number
  latencies: number[]
  idCounts: Uint32Array[]
  timeline: TimelineStep[]
}

function newWindow(targets: number, keys: number): Window {
  return {
    startedAt: performance.now(),
    cpu: process.cpuUsage(),
    requests: 0,
    errors: 0,
    firstError: undefined,
    dropped: 0,
    latencies: [],
    idCounts: Array.from({ length: targets }, () => new Uint32Array(keys + 1)),
    timeline: Array.from({ length: TIMELINE_STEPS }, () => ({ requests: 0, maxMs: 0 })),
  }
}

/** percentile reads the q-quantile of ascending `sorted` (nearest rank), NaN when empty. */
function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!
}

let load: Load | undefined
serveParent(
  {},
  {
    start: (message: Message) => {
      load = new Load(message.plan as LoadPlan)
      load.start()
    },
    sample: () => load?.sample(),
    progress: () => load?.total ?? 0,
  },
  async () => load?.stop(),
)
