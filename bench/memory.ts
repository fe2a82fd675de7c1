/**
 * memory bench: what a full group costs the process, against its budget.
 * Each measurement runs in a fresh process with --expose-gc
 * (bench/memory-child.ts), so that nothing else lives in its heap:
 *
 *  - RSS after filling a 64 MiB group with 1 KiB values, and with 16-byte
 *    values, above the RSS of an empty process (the same group, nothing
 *    stored), as a multiple of cacheBytes — targets ≤ 1.5 and ≤ 2; both
 *    once idle with V8's young generation back at its least (memory-child.ts);
 *  - the heap while writing 10× the budget of 1 KiB values: the largest
 *    heap after a full GC at each 1× over the smallest — target: flat;
 *  - under churn (bench/churn.ts): RSS per budget byte after writing 10× and
 *    50× the budget, against the same gets with a 1 MiB budget.
 * The "fill once" rows stay for information; the churn rows are the targets.
 */
import { fileURLToPath } from 'node:url'
import type { BenchRow } from './harness.js'
import { runResultChild } from './isolated.js'
import { churnRows } from './churn.js'

const CHILD = fileURLToPath(new URL('./memory-child.ts', import.meta.url))
const CACHE_BYTES = 64 << 20
const TIMEOUT_MS = 120_000

interface ChildResult {
  rss: number
  heapUsed: number
  items: number
  bytes: number
  heaps: number[]
}

/** bench measures RSS per budget byte and the heap under churn. */
export async function bench(): Promise<BenchRow[]> {
  const empty = await runChild('empty', 1024)
  const rows: BenchRow[] = []
  for (const valueBytes of [1024, 16]) {
    const full = await runChild('fill', valueBytes)
    const above = full.rss - empty.rss
    rows.push({
      suite: 'memory',
      name: `RSS above an empty process, group full of ${valueBytes}-byte values (${full.items} items)`,
      opsPerSec: above,
      baseline: 'cacheBytes',
      baselineOpsPerSec: CACHE_BYTES,
      ratio: above / CACHE_BYTES,
      format: mib,
    })
  }
  const churn = await runChild('churn', 1024)
  const settled = churn.heaps
  rows.push({
    suite: 'memory',
    name: 'heap after GC, largest of 10 while writing 10× the budget (1 KiB values)',
    opsPerSec: Math.max(...settled),
    baseline: 'smallest of the 10',
    baselineOpsPerSec: Math.min(...settled),
    ratio: Math.max(...settled) / Math.min(...settled),
    format: mib,
  })
  rows.push(...(await churnRows()))
  return rows
}

function mib(n: number): string {
  return `${(n / (1 << 20)).toFixed(1)} MiB`
}

/** runChild runs one measurement in a fresh process and returns what it printed. */
function runChild(mode: string, valueBytes: number): Promise<ChildResult> {
  const args = ['--expose-gc', '--import', 'tsx', CHILD, mode, String(valueBytes), String(CACHE_BYTES)]
  return runResultChild<ChildResult>(args, `memory measurement ${mode}`, TIMEOUT_MS)
}
