/**
 * churn: what a budget costs the process under churn. For each case, fresh
 * processes (bench/churn-child.ts) make the same gets — a loader making
 * fresh values, keys never repeating — once with the case's budget and once
 * with a 1 MiB budget; the row is (RSS with the budget − RSS with 1 MiB) ÷
 * budget, after 10× and after 50× the budget written. Redis (jemalloc,
 * maxmemory) gives 1.05 under the same churn. Each round's ratio is
 * printed, the median is the row.
 * A heap row per case shows the heap after GC at 50× over at 1× (flat: 1).
 */
import type { BenchRow } from './harness.js'
import { runResultChild } from './isolated.js'
import { fileURLToPath } from 'node:url'

const CHILD = fileURLToPath(new URL('./churn-child.ts', import.meta.url))
const MIB = 1 << 20
const BASELINE_BYTES = MIB
const ROUNDS = 3
const TIMEOUT_MS = 2_400_000

/** CASES: value sizes (churn-child's `fixed:N` or `mixed`) and budget. */
const CASES: ReadonlyArray<{ sizes: string; label: string; cacheBytes: number }> = [
  { sizes: 'fixed:1024', label: '1 KiB values', cacheBytes: 64 * MIB },
  { sizes: 'mixed', label: 'mixed 100 B–64 KiB values (log-uniform)', cacheBytes: 64 * MIB },
  { sizes: 'fixed:16', label: '16-byte values', cacheBytes: 8 * MIB },
  { sizes: 'fixed:16', label: '16-byte values', cacheBytes: 32 * MIB },
]
const TIMES = [10, 50] as const

interface Point {
  times: number
  rss: number
  heapUsed: number
}
interface ChildResult {
  points: Point[]
  items: number
  gets: number
}

/**
 * churnRows measures every case (or those whose sizes are in `only`) and
 * returns its rows (the 10× and 50× RSS rows, then the heap row).
 */
export async function churnRows(only?: readonly string[]): Promise<BenchRow[]> {
  const rows: BenchRow[] = []
  for (const c of CASES) if (only === undefined || only.includes(c.sizes)) rows.push(...(await measureCase(c.sizes, c.label, c.cacheBytes)))
  return rows
}

/**
 * measureCase runs a case's rounds. Every child of a case runs at once:
 * each measures only its own RSS, which processes running beside it do not
 * change, and 50× the budget is millions of gets per child.
 */
async function measureCase(sizes: string, label: string, cacheBytes: number): Promise<BenchRow[]> {
  const pending = Array.from({ length: ROUNDS }, () => Promise.all([runChild(sizes, cacheBytes, cacheBytes), runChild(sizes, BASELINE_BYTES, cacheBytes)]))
  const rounds: Array<{ full: ChildResult; small: ChildResult }> = []
  for (const [round, done] of pending.entries()) {
    const [full, small] = await done
    rounds.push({ full, small })
    process.stderr.write(`  churn ${label}, ${mib(cacheBytes)} round ${round + 1}: ${TIMES.map((t) => `${t}× ${ratioAt(full, small, t, cacheBytes).toFixed(2)}`).join(', ')} (${full.items} items, ${full.gets} gets)\n`)
  }
  const rows: BenchRow[] = TIMES.map((times) => {
    const ratios = rounds.map((r) => ratioAt(r.full, r.small, times, cacheBytes))
    const median = medianOf(ratios)
    return {
      suite: 'memory',
      name: `RSS per budget byte under churn, ${label}, ${mib(cacheBytes)} budget, after ${times}× the budget (rounds ${ratios.map((r) => r.toFixed(2)).join(', ')})`,
      opsPerSec: median * cacheBytes,
      baseline: 'cacheBytes (RSS above the same gets with a 1 MiB budget)',
      baselineOpsPerSec: cacheBytes,
      ratio: median,
      format: mib,
    }
  })
  const heaps = rounds.map((r) => [pointAt(r.full, 1).heapUsed, pointAt(r.full, 50).heapUsed] as const)
  const growth = heaps.map(([before, after]) => after / before)
  const median = medianOf(growth)
  const [before, after] = heaps[growth.indexOf(median)] as readonly [number, number]
  rows.push({
    suite: 'memory',
    name: `heap after GC at 50× over at 1× the budget, ${label}, ${mib(cacheBytes)} budget (rounds ${growth.map((g) => g.toFixed(2)).join(', ')})`,
    opsPerSec: after,
    baseline: 'heap at 1×',
    baselineOpsPerSec: before,
    ratio: median,
    format: mib,
  })
  return rows
}

function pointAt(result: ChildResult, times: number): Point {
  const point = result.points.find((p) => p.times === times)
  if (point === undefined) throw new Error(`churn child gave no point at ${times}×`)
  return point
}

function ratioAt(full: ChildResult, small: ChildResult, times: number, cacheBytes: number): number {
  return (pointAt(full, times).rss - pointAt(small, times).rss) / cacheBytes
}

function medianOf(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] as number
}

function mib(n: number): string {
  return `${(n / MIB).toFixed(1)} MiB`
}

function runChild(sizes: string, cacheBytes: number, writeBudget: number): Promise<ChildResult> {
  const args = ['--expose-gc', '--import', 'tsx', CHILD, sizes, String(cacheBytes), String(writeBudget)]
  return runResultChild<ChildResult>(args, `churn measurement ${sizes} ${cacheBytes}`, TIMEOUT_MS)
}
