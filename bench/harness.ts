/**
 * harness: the one way our benchmarks measure. Every result is reported as a
 * ratio against a baseline measured in the same run on the same machine (raw
 * lru-cache get, raw undici request), because absolute numbers from a shared
 * 2-core machine mean little, while ratios hold.
 */
import { performance } from 'node:perf_hooks'

/** BenchResult is one measured operation: how many ops per second it did. */
export interface BenchResult {
  name: string
  opsPerSec: number
}

/** BenchRow is one line of BENCHMARKS.md: a result next to its baseline. */
export interface BenchRow {
  suite: string
  name: string
  opsPerSec: number
  baseline: string
  baselineOpsPerSec: number
  /** opsPerSec / baselineOpsPerSec: above 1 is faster than the baseline. */
  ratio: number
  /** How to print opsPerSec and baselineOpsPerSec when they are not ops/s (a share, bytes). */
  format?: (n: number) => string
}

/** MeasureOptions bounds a measurement in time and iterations. */
export interface MeasureOptions {
  /** How long to measure after warm-up, in milliseconds. @default 1000 */
  durationMs?: number
  /** How long to warm up first, in milliseconds. @default 200 */
  warmupMs?: number
  /** Operations per batch between clock reads (sync benchmarks). @default 1000 */
  batch?: number
}

/** measureSync runs `fn` in batches for a bounded time and returns its ops/s. */
export function measureSync(name: string, fn: (i: number) => unknown, options: MeasureOptions = {}): BenchResult {
  const { durationMs = 1000, warmupMs = 200, batch = 1000 } = options
  let sink: unknown
  let i = 0
  const warmEnd = performance.now() + warmupMs
  while (performance.now() < warmEnd) for (let b = 0; b < batch; b++) sink = fn(i++)
  let ops = 0
  const start = performance.now()
  const end = start + durationMs
  let now = start
  while (now < end) {
    for (let b = 0; b < batch; b++) sink = fn(i++)
    ops += batch
    now = performance.now()
  }
  keep(sink)
  return { name, opsPerSec: (ops * 1000) / (now - start) }
}

/** AsyncCase is an async operation to measure: `concurrency` calls in flight, each worth `opsPerCall` operations. */
export interface AsyncCase {
  name: string
  fn: (i: number) => Promise<unknown>
  concurrency?: number
  opsPerCall?: number
}

/** Slice is what one bounded run of an AsyncCase did: operations completed, in how many ms. */
interface Slice {
  ops: number
  ms: number
}

/**
 * runSlice keeps the case's calls in flight for about `ms` and returns what
 * completed. `next` numbers the calls across slices (keys rotate).
 */
async function runSlice(c: AsyncCase, ms: number, next: { i: number }): Promise<Slice> {
  const { fn, concurrency = 16, opsPerCall = 1 } = c
  const start = performance.now()
  const end = start + ms
  let done = 0
  // Read the clock every 64 calls only: a clock read costs as much as a cache hit.
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      for (let b = 0; b < 64; b++) {
        await fn(next.i++)
        done++
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { ops: done * opsPerCall, ms: performance.now() - start }
}

/**
 * measureAsync keeps `concurrency` calls of `fn` in flight for a bounded time
 * and returns completed ops/s. `opsPerCall` counts calls that do several
 * operations (a batch of keys).
 */
export async function measureAsync(
  name: string,
  fn: (i: number) => Promise<unknown>,
  options: MeasureOptions & { concurrency?: number; opsPerCall?: number } = {},
): Promise<BenchResult> {
  const { durationMs = 1000, warmupMs = 200 } = options
  const c: AsyncCase = { name, fn, ...options }
  const next = { i: 0 }
  await runSlice(c, warmupMs, next)
  const { ops, ms } = await runSlice(c, durationMs, next)
  return { name, opsPerSec: (ops * 1000) / ms }
}

/**
 * interleaved measures a candidate against its baseline in alternating short
 * slices (baseline first in even rounds, candidate first in odd ones) and
 * sums each side's slices. On a shared 2-core machine the speed drifts over
 * seconds: measured in long blocks, a drift lands on one side of the ratio
 * (the remote rows moved by ±0.15 between runs); in slices of a few hundred
 * ms it lands on both alike.
 */
export async function interleaved(
  suite: string,
  baseline: AsyncCase,
  candidate: AsyncCase,
  options: { rounds?: number; sliceMs?: number; warmupMs?: number } = {},
): Promise<BenchRow> {
  const { rounds = 10, sliceMs = 300, warmupMs = 300 } = options
  const sides = [baseline, candidate]
  const totals = sides.map(() => ({ ops: 0, ms: 0 }))
  const next = { i: 0 }
  for (const side of sides) await runSlice(side, warmupMs, next)
  for (let round = 0; round < rounds; round++) {
    for (const at of round % 2 === 0 ? [0, 1] : [1, 0]) {
      const slice = await runSlice(sides[at] as AsyncCase, sliceMs, next)
      const total = totals[at] as Slice
      total.ops += slice.ops
      total.ms += slice.ms
    }
  }
  const rate = (at: number): number => ((totals[at] as Slice).ops * 1000) / (totals[at] as Slice).ms
  return row(suite, { name: candidate.name, opsPerSec: rate(1) }, { name: baseline.name, opsPerSec: rate(0) })
}

/**
 * bracketed measures the baseline before and after the candidate and keeps
 * their mean, so a change in machine load during the run (a shared 2-core
 * machine) does not land on one side of the ratio only. It is for
 * measurements that each run whole in a process of their own (isolated.ts);
 * pairs measured in this process are `interleaved`, which spreads drift finer.
 */
export async function bracketed(
  suite: string,
  baseline: () => Promise<BenchResult>,
  candidates: ReadonlyArray<() => Promise<BenchResult>>,
): Promise<BenchRow[]> {
  const rows: BenchRow[] = []
  for (const candidate of candidates) {
    const before = await baseline()
    const result = await candidate()
    const after = await baseline()
    rows.push(row(suite, result, { name: before.name, opsPerSec: (before.opsPerSec + after.opsPerSec) / 2 }))
  }
  return rows
}

/** row turns a result and its baseline into a BENCHMARKS.md row. */
export function row(suite: string, result: BenchResult, baseline: BenchResult): BenchRow {
  return {
    suite,
    name: result.name,
    opsPerSec: result.opsPerSec,
    baseline: baseline.name,
    baselineOpsPerSec: baseline.opsPerSec,
    ratio: result.opsPerSec / baseline.opsPerSec,
  }
}

/** Keeps a value observable so the JIT cannot drop the benchmarked work. */
function keep(value: unknown): void {
  if (value === keep) console.log('unreachable')
}
