/**
 * cluster-report: the cluster benchmark's tables: one row per mode, then
 * peercache's ratios against the Redis and Map baselines measured in the
 * same run, next to issue #12's targets. With several rounds, each figure
 * is the median over the rounds, and each ratio the median of the rounds'
 * own ratios (a ratio is taken between modes run minutes apart, not hours).
 */
import type { BenchRow } from './harness.js'
import type { Mode } from './cluster-caches.js'
import type { HotShare, ModeResult } from './cluster-mode.js'
import { median } from './cluster-ratios.js'
import { medianTimeline } from './cluster-timeline.js'
import { ms, pct, us, whole } from './format.js'

const LABELS: Record<Mode, string> = {
  peercache: 'peercache (3 apps, one cluster, defaults)',
  redis: 'Redis (ioredis cache-aside)',
  map: 'in-process Map per app (the ceiling)',
}

/** Columns are the optional columns of the results table: the open loop's rates, a cold start's origin loads. */
export interface Columns {
  rate?: boolean
  cold?: boolean
  alone?: boolean
}

/** resultsTable is one row per mode (with `columns`' extra columns). */
export function resultsTable(results: readonly ModeResult[], columns: Columns = {}): string {
  const head = ['mode', 'req/s', 'p50', 'p99', 'origin queries / distinct key', 'app CPU / req', 'redis-server CPU / req', 'load generator CPU / req', 'errors', 'warm-up']
  if (columns.rate === true) head.splice(2, 0, 'offered req/s', 'not sent (in-flight cap)')
  if (columns.cold === true) head.splice(head.indexOf('app CPU / req'), 0, 'origin loads in the window')
  const lines = [`| ${head.join(' | ')} |`, `|---|${head.slice(1).map(() => '---:').join('|')}|`]
  for (const r of results) {
    const warmup = r.warmupRequests === 0 ? 'none (cold)' : `${Math.round(r.warmupRequests).toLocaleString('en-US')} req in ${(r.warmupMs / 1000).toFixed(0)} s`
    const cells = [whole(r.reqPerSec), ms(r.p50Ms), ms(r.p99Ms), r.originQueriesPerKey.toFixed(2), us(r.appCpuMicrosPerReq), us(r.redisCpuMicrosPerReq), us(r.loadgenCpuMicrosPerReq), String(r.errors), warmup]
    if (columns.rate === true) cells.splice(1, 0, whole(r.offeredRate), whole(r.dropped))
    if (columns.cold === true) cells.splice(cells.length - 5, 0, whole(r.originQueries))
    const label = columns.alone === true && r.mode === 'peercache' ? 'peercache alone (each app a cluster of itself)' : LABELS[r.mode]
    lines.push(`| ${label} | ${cells.join(' | ')} |`)
  }
  return lines.join('\n')
}

/** Comparison is one of issue #12's targets: peercache against a baseline of the same run. */
interface Comparison {
  name: string
  baseline: Mode
  value(peercache: ModeResult, baseline: ModeResult): number
  /** The ratio must be ≥ min, or ≤ max. */
  min?: number
  max?: number
}

const COMPARISONS: readonly Comparison[] = [
  { name: 'req/s, peercache / Redis', baseline: 'redis', value: (p, b) => p.reqPerSec / b.reqPerSec, min: 1 },
  { name: 'req/s, peercache / Map ceiling', baseline: 'map', value: (p, b) => p.reqPerSec / b.reqPerSec, min: 0.9 },
  { name: 'p99, peercache / Redis', baseline: 'redis', value: (p, b) => p.p99Ms / b.p99Ms, max: 1 },
  { name: 'CPU per request, peercache apps / (Redis apps + redis-server)', baseline: 'redis', value: (p, b) => p.appCpuMicrosPerReq / (b.appCpuMicrosPerReq + b.redisCpuMicrosPerReq), max: 1 },
  { name: 'origin queries per distinct key, peercache / Redis', baseline: 'redis', value: (p, b) => p.originQueriesPerKey / b.originQueriesPerKey, max: 1 },
  { name: 'p99, peercache / Map ceiling', baseline: 'map', value: (p, b) => p.p99Ms / b.p99Ms },
  { name: 'app CPU per request, peercache / Map ceiling', baseline: 'map', value: (p, b) => p.appCpuMicrosPerReq / b.appCpuMicrosPerReq },
]

/** ratiosTable compares peercache with each baseline that ran; empty when peercache did not run. */
export function ratiosTable(rounds: ReadonlyArray<readonly ModeResult[]>): string {
  if (!rounds.some((round) => round.some((r) => r.mode === 'peercache'))) return ''
  const lines = ['| same-run ratio | value | target (#12) | met |', '|---|---:|---:|---|']
  for (const c of COMPARISONS) {
    const values = rounds.flatMap((round) => {
      const peercache = round.find((r) => r.mode === 'peercache')
      const baseline = round.find((r) => r.mode === c.baseline)
      return peercache === undefined || baseline === undefined ? [] : [c.value(peercache, baseline)]
    })
    if (values.length === 0) continue
    const value = median(values)
    const target = c.min !== undefined ? `≥ ${c.min}` : c.max !== undefined ? `≤ ${c.max}` : ''
    const met = c.min !== undefined ? value >= c.min : c.max !== undefined ? value <= c.max : undefined
    const spread = values.length > 1 ? ` (${values.map((v) => v.toFixed(2)).join(', ')})` : ''
    lines.push(`| ${c.name} | ${value.toFixed(2)}${spread} | ${target} | ${met === undefined ? '' : met ? 'yes' : '**no**'} |`)
  }
  return lines.join('\n')
}

/** medians is one result per mode (in `modes` order): each figure's median over the rounds; errors summed. */
export function medians(rounds: ReadonlyArray<readonly ModeResult[]>, modes: readonly Mode[]): ModeResult[] {
  return modes.flatMap((mode) => {
    const runs = rounds.flatMap((round) => round.filter((r) => r.mode === mode))
    const first = runs[0]
    if (first === undefined) return []
    const m = (field: keyof ModeResult): number => median(runs.map((r) => r[field] as number))
    const hots = runs.flatMap((r) => (r.hot === undefined ? [] : [r.hot]))
    return [
      {
        mode,
        warmupMs: m('warmupMs'),
        warmupRequests: m('warmupRequests'),
        reqPerSec: m('reqPerSec'),
        p50Ms: m('p50Ms'),
        p99Ms: m('p99Ms'),
        errors: runs.reduce((sum, r) => sum + r.errors, 0),
        firstError: runs.find((r) => r.firstError !== undefined)?.firstError,
        originQueriesPerKey: m('originQueriesPerKey'),
        originQueries: m('originQueries'),
        offeredRate: m('offeredRate'),
        dropped: m('dropped'),
        appCpuMicrosPerReq: m('appCpuMicrosPerReq'),
        redisCpuMicrosPerReq: m('redisCpuMicrosPerReq'),
        loadgenCpuMicrosPerReq: m('loadgenCpuMicrosPerReq'),
        hot: hots.length === 0 ? undefined : medianHot(hots),
        timeline: medianTimeline(runs.map((r) => r.timeline)),
      },
    ]
  })
}

function medianHot(hots: readonly HotShare[]): HotShare {
  const m = (field: keyof HotShare): number => median(hots.map((h) => h[field]))
  return { remoteGets: m('remoteGets'), fromHot: m('fromHot'), peerFetchesPerGet: m('peerFetchesPerGet'), peerErrors: m('peerErrors'), peerErrorsInRun: m('peerErrorsInRun') }
}

/** hotShareLine says how peercache served gets for keys another app owns in the measured window. */
export function hotShareLine(results: readonly ModeResult[]): string {
  const hot = results.find((r) => r.mode === 'peercache')?.hot
  if (hot === undefined) return ''
  return (
    `peercache, gets for keys another app owns (${Math.round(hot.remoteGets).toLocaleString('en-US')} in the window): ` +
    `${pct(hot.fromHot)} served from the hot cache, ${pct(1 - hot.fromHot)} went to the owner ` +
    `(${hot.peerFetchesPerGet.toFixed(2)} peer fetches per such get, the rest joined a fetch in flight; ${hot.peerErrors} peer errors, ${hot.peerErrorsInRun} in the whole run). ` +
    'Target for the hot cache (#12): ≥ 90% from it.'
  )
}

/** benchRows are the req/s ratios in `npm run bench`'s common table. */
export function benchRows(results: readonly ModeResult[]): BenchRow[] {
  const rows: BenchRow[] = []
  const add = (mode: Mode, baseline: Mode): void => {
    const r = results.find((x) => x.mode === mode)
    const b = results.find((x) => x.mode === baseline)
    if (r === undefined || b === undefined) return
    const row = { suite: 'cluster', name: `${LABELS[mode]} req/s`, opsPerSec: r.reqPerSec }
    rows.push({ ...row, baseline: `${LABELS[baseline]} req/s`, baselineOpsPerSec: b.reqPerSec, ratio: r.reqPerSec / b.reqPerSec })
  }
  add('peercache', 'redis')
  add('peercache', 'map')
  add('redis', 'map')
  return rows
}
