/**
 * report: what the demo prints. The live table (polled from every app's
 * /stats about once a second), the origin query count (read from the apps'
 * query logs, which a SIGKILL cannot lose), and the final summary with the
 * checks that decide the exit code.
 */
import { existsSync, readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { request } from 'undici'
import { HashRing, type GroupStats } from '../src/index.js'
import type { LoadGenerator } from './loadgen.js'
import { controlAgent, type AppProcess } from './processes.js'

/** AppStats is what an app's GET /stats answers. */
export interface AppStats {
  pid: number
  requests: number
  originQueries: number
  peersDown: string[]
  /** Histogram of the time spent in group.getString per request (ms). */
  getMs: { bounds: number[]; counts: number[] }
  group: GroupStats
}

/** fetchStats polls one app's /stats; undefined when it does not answer (it is down). */
export async function fetchStats(url: string): Promise<AppStats | undefined> {
  try {
    const response = await request(`${url}/stats`, { dispatcher: controlAgent })
    const body = await response.body.text()
    return response.statusCode === 200 ? (JSON.parse(body) as AppStats) : undefined
  } catch {
    return undefined
  }
}

/**
 * readOriginLogs counts origin queries per key over the apps' query logs
 * (one line per query, written before the answer leaves the app).
 */
export function readOriginLogs(paths: readonly string[]): Map<string, number> {
  const byKey = new Map<string, number>()
  for (const path of paths) {
    if (!existsSync(path)) continue
    for (const key of readFileSync(path, 'utf8').split('\n')) {
      if (key !== '') byKey.set(key, (byKey.get(key) ?? 0) + 1)
    }
  }
  return byKey
}

/** sum adds numbers up (the values of a count map, a column). */
export function sum(counts: Iterable<number>): number {
  let total = 0
  for (const n of counts) total += n
  return total
}

/**
 * Screen prints log lines and the live table. On a terminal the table is
 * redrawn in place under the log lines; elsewhere (a pipe, a CI log) every
 * table is printed in turn.
 */
export class Screen {
  readonly #tty = process.stdout.isTTY === true
  #table: string[] = []
  #muted = false

  /** log prints one line above the table. */
  log(line: string): void {
    if (this.#muted) return
    this.#erase()
    process.stdout.write(`${line}\n`)
    this.#draw()
  }

  /** table replaces the live table. */
  table(lines: string[]): void {
    if (this.#muted) return
    this.#erase()
    this.#table = lines
    this.#draw()
    if (!this.#tty) this.#table = [] // printed once: a pipe cannot redraw it
  }

  /** done leaves the last table on screen and stops redrawing it. */
  done(): void {
    this.#table = []
  }

  /** mute leaves the screen as it is and prints nothing more (the demo is being interrupted). */
  mute(): void {
    this.done()
    this.#muted = true
  }

  #erase(): void {
    if (this.#tty && this.#table.length > 0) process.stdout.write(`\x1b[${this.#table.length}A\x1b[J`)
  }

  #draw(): void {
    if (this.#table.length > 0) process.stdout.write(`${this.#table.join('\n')}\n`)
  }
}

/** Sample is one app's counters at one poll. */
interface Sample {
  at: number
  served: number
  stats: AppStats | undefined
}

/** Counts are the cache counters the table shows, summed over an app's lifetimes. */
interface Counts {
  localLoads: number
  peerLoads: number
  peerErrors: number
}

/**
 * Monitor polls every app and renders the live table: request rate and hit
 * ratio over the last interval, load counters since the demo started (a
 * restarted app's earlier lifetime included, as last seen before it died).
 */
export class Monitor {
  readonly #apps: readonly AppProcess[]
  readonly #load: LoadGenerator
  readonly #last = new Map<AppProcess, Sample>()
  /** Counters of an app's earlier lifetimes, as last polled. */
  readonly #retired = new Map<AppProcess, Counts>()
  /** The last stats of every process lifetime, by pid. */
  readonly #byPid = new Map<number, AppStats>()

  constructor(apps: readonly AppProcess[], load: LoadGenerator) {
    this.#apps = apps
    this.#load = load
  }

  /** lifetimes lists the last stats polled from every process, killed ones included. */
  lifetimes(): AppStats[] {
    return [...this.#byPid.values()]
  }

  /** sample polls every app and returns the table's lines. */
  async sample(): Promise<string[]> {
    const now = performance.now()
    const polled = await Promise.all(this.#apps.map((app) => (app.state === 'up' ? fetchStats(app.url) : undefined)))
    for (const stats of polled) if (stats !== undefined) this.#byPid.set(stats.pid, stats)
    // Origin queries come from the query logs: a killed lifetime's queries still count.
    const originByApp = this.#apps.map((app) => sum(readOriginLogs(app.originLogs()).values()))
    const rows = this.#apps.map((app, i) => this.#row(app, i, now, polled[i], originByApp[i]!))
    const seconds = this.#load.startedAt === 0 ? '0.0' : (this.#load.elapsedMs() / 1000).toFixed(1)
    // Read after the logs: a key is requested before it is queried, so the two numbers compare fairly.
    const distinctKeys = this.#load.distinct.size
    return [
      `${seconds.padStart(5)} s  ${HEADER}`,
      ...rows.map((row) => `         ${row.cells}`),
      `         ${totalCells(rows)}`,
      `         origin queries ${fmt(sum(originByApp))} for ${fmt(distinctKeys)} distinct keys requested`,
    ]
  }

  #row(app: AppProcess, i: number, now: number, stats: AppStats | undefined, origin: number): Row {
    const previous = this.#last.get(app)
    const served = this.#load.served[i] ?? 0
    const sample: Sample = { at: now, served, stats: stats ?? previous?.stats }
    this.#last.set(app, sample)
    const seconds = previous === undefined ? 0 : (now - previous.at) / 1000
    const rate = seconds > 0 ? (served - previous!.served) / seconds : 0
    // A restarted process starts its counters from zero: retire the old lifetime's.
    const sameLife = previous?.stats?.pid === sample.stats?.pid
    if (!sameLife && previous?.stats !== undefined) this.#retired.set(app, add(this.#retired.get(app), previous.stats.group))
    const before = sameLife ? previous?.stats : undefined
    const gets = (sample.stats?.group.gets ?? 0) - (before?.group.gets ?? 0)
    const hits = (sample.stats?.group.cacheHits ?? 0) - (before?.group.cacheHits ?? 0)
    const counts = sample.stats === undefined ? undefined : add(this.#retired.get(app), sample.stats.group)
    const cells = [
      app.name.padEnd(6),
      String(app.pid ?? '').padStart(7),
      app.state.padStart(9),
      fmt(Math.round(rate)).padStart(8),
      ratio(hits, gets).padStart(7),
      fmt(counts?.localLoads).padStart(12),
      fmt(counts?.peerLoads).padStart(11),
      fmt(counts?.peerErrors).padStart(12),
      fmt(origin).padStart(15),
    ].join(' ')
    return { cells, rate, gets, hits, counts }
  }
}

const HEADER = ['proc  ', '    pid', '    state', '   req/s', '  hit %', ' local loads', ' peer loads', ' peer errors', ' origin queries'].join(' ')

interface Row {
  cells: string
  rate: number
  gets: number
  hits: number
  counts: Counts | undefined
}

function totalCells(rows: Row[]): string {
  const total = (pick: (c: Counts) => number): number => sum(rows.map((r) => (r.counts === undefined ? 0 : pick(r.counts))))
  return [
    'all   ',
    ''.padStart(7),
    ''.padStart(9),
    fmt(Math.round(sum(rows.map((r) => r.rate)))).padStart(8),
    ratio(sum(rows.map((r) => r.hits)), sum(rows.map((r) => r.gets))).padStart(7),
    fmt(total((c) => c.localLoads)).padStart(12),
    fmt(total((c) => c.peerLoads)).padStart(11),
    fmt(total((c) => c.peerErrors)).padStart(12),
  ].join(' ')
}

function add(a: Counts | undefined, b: Counts): Counts {
  return {
    localLoads: (a?.localLoads ?? 0) + b.localLoads,
    peerLoads: (a?.peerLoads ?? 0) + b.peerLoads,
    peerErrors: (a?.peerErrors ?? 0) + b.peerErrors,
  }
}

function ratio(hits: number, gets: number): string {
  return gets > 0 ? `${((100 * hits) / gets).toFixed(1)}%` : '-'
}

/** fmt formats a count with thousands separators ('-' when unknown). */
export function fmt(n: number | undefined): string {
  return n === undefined ? '-' : n.toLocaleString('en-US')
}

/** plural writes a count and its noun ("1 process", "3 processes"). */
export function plural(n: number, one: string, many: string): string {
  return `${fmt(n)} ${n === 1 ? one : many}`
}

/** percentile returns the p-th percentile (0..100) of ascending values (nearest rank). */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank]!
}

/**
 * getPercentile returns the bucket bound under which p% (0..100) of the apps'
 * gets finished, merging their histograms: "≤ 0.02 ms", or "> 1000 ms".
 */
export function getPercentile(stats: readonly AppStats[], p: number): string {
  const bounds = stats[0]?.getMs.bounds ?? []
  const counts = bounds.map(() => 0).concat(0)
  for (const s of stats) s.getMs.counts.forEach((n, i) => (counts[i] = (counts[i] ?? 0) + n))
  const total = sum(counts)
  let seen = 0
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i]!
    if (total > 0 && seen >= (p / 100) * total) return i < bounds.length ? `≤ ${bounds[i]} ms` : `> ${bounds.at(-1)} ms`
  }
  return '-'
}

/** RunFacts is everything the summary and its checks need. */
export interface RunFacts {
  procs: number
  durationS: number
  concurrency: number
  keys: number
  originLatencyMs: number
  load: LoadGenerator
  peers: readonly string[]
  /** The app killed mid-run (undefined with --no-kill). */
  victim: AppProcess | undefined
  /** --rolling: the apps restarted one at a time. */
  rolling?: readonly AppProcess[] | undefined
  /** The last stats of every app process (for the time spent in peercache). */
  appStats: readonly AppStats[]
  /** Origin queries per key, from every query log. */
  originByKey: Map<string, number>
  /** Problems found during the run (crashes, a failed restart, counters that disagree). */
  problems: string[]
  pids: readonly number[]
  /** Pids still alive after the demo stopped its apps. */
  leftRunning: readonly number[]
}

/** Summary is the final report: lines to print, a JSON record, and the verdict. */
export interface Summary {
  lines: string[]
  record: Record<string, unknown>
  reasons: string[]
}

/** Figures are the numbers the summary reports, computed once. */
interface Figures {
  seconds: number
  p50: number
  p99: number
  hitRatio: string
  distinct: number
  origin: number
  ownedByVictim: number
  allowance: number
  reloaded: number
  reloadedByVictim: number
  privateCaches: number
}

/** summarize computes the summary, checks the run (see checkRun) and writes both for people and machines. */
export function summarize(f: RunFacts): Summary {
  const n = figures(f)
  const reasons = checkRun(f, n)
  return { lines: summaryLines(f, n, reasons), record: summaryRecord(f, n, reasons), reasons }
}

function figures(f: RunFacts): Figures {
  const sorted = Float64Array.from(f.load.latencies).sort()
  const ring = new HashRing(f.peers)
  const victimUrl = f.victim?.url
  const ownedByVictim = victimUrl === undefined ? 0 : countOwned(f.load, ring, victimUrl)
  const reloaded = [...f.originByKey].filter(([, count]) => count > 1).map(([key]) => key)
  return {
    seconds: f.load.elapsedMs() / 1000,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    hitRatio: ratio(sum(f.appStats.map((a) => a.group.cacheHits)), sum(f.appStats.map((a) => a.group.gets))),
    distinct: f.load.distinct.size,
    origin: sum(f.originByKey.values()),
    ownedByVictim,
    // --rolling: each restart may cost at most the keys of the app that was down at that moment.
    allowance: f.rolling === undefined ? f.procs * ownedByVictim : sum(f.rolling.map((app) => countOwned(f.load, ring, app.url))),
    reloaded: reloaded.length,
    reloadedByVictim: reloaded.filter((key) => ring.pick(key) === victimUrl).length,
    privateCaches: sum(f.load.distinctByTarget.map((set) => set.size)),
  }
}

/**
 * checkRun returns why the run failed (empty when it passed):
 * - errors must be 0: every request was served, by a retry if need be;
 * - origin queries >= distinct keys: every key requested was queried (the count is complete);
 * - origin queries <= distinct keys + allowance. While all peers are up each
 *   key is queried once cluster-wide. A key owned by the killed app may be
 *   queried again by each survivor (a survivor whose request to the dead
 *   owner failed loads it itself; the next peer on the ring loads it as the
 *   stand-in owner) and once more by the restarted app, whose cache starts
 *   empty: allowance = procs × the killed app's keys requested.
 */
function checkRun(f: RunFacts, n: Figures): string[] {
  const reasons = [...f.problems]
  if (f.load.errors > 0) reasons.push(`${f.load.errors} requests failed on every instance (e.g. ${f.load.errorSamples[0] ?? '?'})`)
  if (f.load.requests === 0) reasons.push('no request was served')
  // A run stopped early abandons requests whose loads still ran: the origin bounds only hold for a whole run.
  if (f.problems.length === 0) {
    if (n.origin < n.distinct) reasons.push(`origin queries ${n.origin} < distinct keys ${n.distinct}: the query count is incomplete`)
    if (n.origin > n.distinct + n.allowance) reasons.push(`origin queries ${n.origin} > distinct keys ${n.distinct} + allowance ${n.allowance}`)
  }
  if (f.leftRunning.length > 0) reasons.push(`processes left running: ${f.leftRunning.join(' ')}`)
  return reasons
}

function summaryLines(f: RunFacts, n: Figures, reasons: string[]): string[] {
  const victim = f.victim?.name ?? ''
  const get = (p: number): string => getPercentile(f.appStats, p)
  return [
    '',
    `Summary: ${plural(f.procs, 'process', 'processes')}, ${f.durationS} s, concurrency ${f.concurrency}, ` +
      `${fmt(f.keys)} keys (Zipf 0.99), origin latency ${f.originLatencyMs} ms`,
    `  requests        ${fmt(f.load.requests)} in ${n.seconds.toFixed(1)} s = ${fmt(Math.round(f.load.requests / n.seconds))} req/s`,
    `  errors          ${fmt(f.load.errors)}` +
      (f.load.retried > 0 ? `   (${fmt(f.load.retried)} requests hit a dead instance and were retried on another)` : ''),
    `  latency         p50 ${n.p50.toFixed(2)} ms   p99 ${n.p99.toFixed(2)} ms   (end to end, retries included)`,
    `  in peercache    p50 ${get(50)}   p90 ${get(90)}   p99 ${get(99)}   ` +
      `(time in group.get; ${n.hitRatio} of gets were memory hits, the rest a peer fetch or an origin query)`,
    `  origin queries  ${fmt(n.origin)} for ${fmt(n.distinct)} distinct keys requested` +
      (f.victim === undefined ? '' : ` (allowed: ${fmt(n.distinct)} + ${f.procs} × ${fmt(n.ownedByVictim)} keys owned by ${victim} = ${fmt(n.distinct + n.allowance)})`) +
      (f.rolling === undefined ? '' : ` (allowed: ${fmt(n.distinct)} + the keys of each app while it restarted = ${fmt(n.distinct + n.allowance)})`),
    `  re-queried      ${plural(n.reloaded, 'key', 'keys')}` + (f.victim === undefined ? '' : `, ${fmt(n.reloadedByVictim)} of them owned by the killed ${victim}`),
    `  without peers   ${fmt(n.privateCaches)} origin queries: a private cache per process loads every key it is asked for`,
    `  processes       ${f.pids.length} started (pids ${f.pids.join(' ')}), ${f.leftRunning.length === 0 ? 'all stopped' : `${f.leftRunning.length} LEFT RUNNING`}`,
    reasons.length > 0
      ? `FAIL: ${reasons.join('; ')}`
      : `OK: no request lost, and every key was queried once${f.victim === undefined ? '' : ", plus the reloads of the killed app's keys"}` +
        (f.rolling === undefined ? '' : ', plus the reloads of keys whose owner was restarting'),
  ]
}

function summaryRecord(f: RunFacts, n: Figures, reasons: string[]): Record<string, unknown> {
  return {
    ok: reasons.length === 0,
    reasons,
    procs: f.procs,
    durationS: f.durationS,
    requests: f.load.requests,
    errors: f.load.errors,
    retried: f.load.retried,
    throughput: Math.round(f.load.requests / n.seconds),
    p50Ms: round2(n.p50),
    p99Ms: round2(n.p99),
    hitRatio: n.hitRatio,
    getP50: getPercentile(f.appStats, 50),
    getP99: getPercentile(f.appStats, 99),
    originQueries: n.origin,
    distinctKeys: n.distinct,
    killed: f.victim === undefined ? null : { app: f.victim.index, url: f.victim.url, ownedKeys: n.ownedByVictim },
    rolling: f.rolling !== undefined,
    allowance: n.allowance,
    reloadedKeys: n.reloaded,
    reloadedOwnedByKilled: n.reloadedByVictim,
    privateCacheQueries: n.privateCaches,
    pids: f.pids,
    leftRunning: f.leftRunning,
  }
}

/** countOwned counts the distinct keys requested that the ring gives to peer. */
function countOwned(load: LoadGenerator, ring: HashRing, peer: string): number {
  let n = 0
  for (const id of load.distinct.ids()) if (ring.pick(String(id)) === peer) n++
  return n
}

function round2(n: number): number {
  return Math.round(n * 100) / 100
}
