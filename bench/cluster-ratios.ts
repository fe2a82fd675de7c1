/**
 * cluster-ratios: the same-run ratios of a `--rate`, `--cold` or `--alone`
 * cluster run: every mode that ran against the Map (the ceiling) and against
 * Redis, on the figures that variant is about. Each ratio is the median of
 * the rounds' own ratios (a ratio is taken between modes run a minute apart
 * in one round, in alternating order), printed with every round's ratio.
 */
import type { Mode } from './cluster-caches.js'
import type { ModeResult } from './cluster-mode.js'

/** Variant is what the run measured: an open loop at a fixed rate, a cold start, or each app alone. */
export type Variant = 'rate' | 'cold' | 'alone'

/** Figure is one number of a mode's result, compared as candidate / baseline (lower is better unless `higher`). */
interface Figure {
  name: string
  value(r: ModeResult): number
  higher?: boolean
}

const reqPerSec: Figure = { name: 'req/s', value: (r) => r.reqPerSec, higher: true }
const p50: Figure = { name: 'p50', value: (r) => r.p50Ms }
const p99: Figure = { name: 'p99', value: (r) => r.p99Ms }
const appCpu: Figure = { name: 'app CPU / req', value: (r) => r.appCpuMicrosPerReq }
/** All the cache's CPU: the apps', plus redis-server's in redis mode. */
const cacheCpu: Figure = { name: 'apps + redis-server CPU / req', value: (r) => r.appCpuMicrosPerReq + (Number.isNaN(r.redisCpuMicrosPerReq) ? 0 : r.redisCpuMicrosPerReq) }
const originLoads: Figure = { name: 'origin loads', value: (r) => r.originQueries }

/** FIGURES are the figures each variant compares. */
const FIGURES: Record<Variant, readonly Figure[]> = {
  rate: [appCpu, cacheCpu, p50, p99, { ...reqPerSec, name: 'achieved req/s' }],
  cold: [reqPerSec, p99, originLoads, appCpu],
  alone: [appCpu, reqPerSec, p50, p99],
}

/** PAIRS are candidate/baseline pairs, in the order printed. */
const PAIRS: ReadonlyArray<[Mode, Mode]> = [
  ['peercache', 'map'],
  ['peercache', 'redis'],
  ['redis', 'map'],
]

const NAMES: Record<Mode, string> = { peercache: 'peercache', redis: 'Redis', map: 'Map' }

/** variantRatiosTable is one row per pair that ran and figure: the median of the rounds' ratios, and each round's. */
export function variantRatiosTable(variant: Variant, rounds: ReadonlyArray<readonly ModeResult[]>): string {
  const lines = ['| same-run ratio | median | each round | better when |', '|---|---:|---|---|']
  for (const [candidate, baseline] of PAIRS) {
    for (const figure of FIGURES[variant]) {
      const values = roundRatios(rounds, candidate, baseline, figure)
      if (values.length === 0) continue
      const name = `${figure.name}, ${NAMES[candidate]}${variant === 'alone' && candidate === 'peercache' ? ' alone' : ''} / ${NAMES[baseline]}`
      const each = values.map((v) => v.toFixed(2)).join(', ')
      lines.push(`| ${name} | ${median(values).toFixed(2)} | ${each} | ${figure.higher === true ? 'higher' : 'lower'} |`)
    }
  }
  return lines.length > 2 ? lines.join('\n') : ''
}

/** roundRatios is candidate / baseline in every round where both ran (and the figure is a number). */
function roundRatios(rounds: ReadonlyArray<readonly ModeResult[]>, candidate: Mode, baseline: Mode, figure: Figure): number[] {
  return rounds.flatMap((round) => {
    const c = round.find((r) => r.mode === candidate)
    const b = round.find((r) => r.mode === baseline)
    if (c === undefined || b === undefined) return []
    const ratio = figure.value(c) / figure.value(b)
    return Number.isFinite(ratio) ? [ratio] : []
  })
}

/** median of values (NaN when empty or when any is NaN, as for redis-server CPU outside redis mode). */
export function median(values: readonly number[]): number {
  if (values.length === 0 || values.some(Number.isNaN)) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}
