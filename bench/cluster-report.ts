/**
 * cluster-report: the cluster benchmark's tables: one row per mode, then
 * peercache's ratios against the Redis and Map baselines measured in the
 * same run, next to issue #12's targets.
 */
import type { BenchRow } from './harness.js'
import type { Mode } from './cluster-caches.js'
import type { ModeResult } from './cluster-mode.js'

const LABELS: Record<Mode, string> = {
  peercache: 'peercache (3 apps, one cluster, defaults)',
  redis: 'Redis (ioredis cache-aside)',
  map: 'in-process Map per app (the ceiling)',
}

/** resultsTable is one row per mode. */
export function resultsTable(results: readonly ModeResult[]): string {
  const lines = [
    '| mode | req/s | p50 | p99 | origin queries / distinct key | app CPU / req | redis-server CPU / req | load generator CPU / req | errors | warm-up |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for (const r of results) {
    const warmup = `${r.warmupRequests.toLocaleString('en-US')} req in ${(r.warmupMs / 1000).toFixed(0)} s`
    const cells = [ms(r.p50Ms), ms(r.p99Ms), r.originQueriesPerKey.toFixed(2), us(r.appCpuMicrosPerReq), us(r.redisCpuMicrosPerReq), us(r.loadgenCpuMicrosPerReq), String(r.errors), warmup]
    lines.push(`| ${LABELS[r.mode]} | ${Math.round(r.reqPerSec).toLocaleString('en-US')} | ${cells.join(' | ')} |`)
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
export function ratiosTable(results: readonly ModeResult[]): string {
  const peercache = results.find((r) => r.mode === 'peercache')
  if (peercache === undefined) return ''
  const lines = ['| same-run ratio | value | target (#12) | met |', '|---|---:|---:|---|']
  for (const c of COMPARISONS) {
    const baseline = results.find((r) => r.mode === c.baseline)
    if (baseline === undefined) continue
    const value = c.value(peercache, baseline)
    const target = c.min !== undefined ? `≥ ${c.min}` : c.max !== undefined ? `≤ ${c.max}` : ''
    const met = c.min !== undefined ? value >= c.min : c.max !== undefined ? value <= c.max : undefined
    lines.push(`| ${c.name} | ${value.toFixed(2)} | ${target} | ${met === undefined ? '' : met ? 'yes' : '**no**'} |`)
  }
  return lines.join('\n')
}

/** hotShareLine says how peercache served gets for keys another app owns in the measured window. */
export function hotShareLine(results: readonly ModeResult[]): string {
  const hot = results.find((r) => r.mode === 'peercache')?.hot
  if (hot === undefined) return ''
  return (
    `peercache, gets for keys another app owns (${hot.remoteGets.toLocaleString('en-US')} in the window): ` +
    `${pct(hot.fromHot)} served from the hot cache, ${pct(1 - hot.fromHot)} went to the owner ` +
    `(${hot.peerFetchesPerGet.toFixed(2)} peer fetches per such get; the rest joined a fetch in flight). Target for the hot cache (#12): ≥ 90% from it.`
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

function ms(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(1)} ms` : '—'
}

function us(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(0)} µs` : '—'
}

function pct(share: number): string {
  return Number.isFinite(share) ? `${(share * 100).toFixed(1)}%` : '—'
}
