/**
 * isolated runs one measurement in a fresh Node process. V8 shares type
 * feedback between everything one process runs: a call site that has seen
 * the baseline's types (the harness loop, lru-cache's own `get`) runs slower
 * for the candidate measured after it, and the other way round. A fresh
 * process per measurement gives every measurement the same start, which is
 * what a ratio between them needs.
 *
 * Bounded: the child must answer within 60 s or it is killed by its PID.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { BenchResult } from './harness.js'

const CHILD = fileURLToPath(new URL('./measure-child.ts', import.meta.url))
const TIMEOUT_MS = 60_000

/** RUNS is how many fresh processes measure each case: the median is kept. */
const RUNS = 3

/**
 * isolated runs `cases[name]()` of the module at `casesUrl` in RUNS new
 * processes, one after another, and returns the median result. One fresh
 * process is not always the same start: V8 sometimes compiles a hot loop
 * differently, and one run in three or four of a nanosecond-scale case
 * comes out a fifth slower (group.peek measured 0.87, 0.87, 0.68 of the
 * same baseline); the median of three sets that run aside, for the baseline
 * and the candidate alike.
 */
export async function isolated(casesUrl: URL, name: string): Promise<BenchResult> {
  const results: BenchResult[] = []
  for (let run = 0; run < RUNS; run++) results.push(await runResultChild<BenchResult>(['--import', 'tsx', CHILD, casesUrl.href, name], `measurement ${name}`))
  results.sort((a, b) => a.opsPerSec - b.opsPerSec)
  return results[Math.floor(RUNS / 2)] as BenchResult
}

/**
 * runResultChild runs `node ...args` (killed after timeoutMs) and resolves to
 * the JSON of the `RESULT …` line it printed; shared by every suite that
 * measures in a fresh process.
 */
export function runResultChild<T>(args: readonly string[], label: string, timeoutMs = TIMEOUT_MS): Promise<T> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    let output = ''
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8')
    })
    child.once('error', reject)
    child.once('exit', (code) => {
      clearTimeout(timer)
      const line = /^RESULT (.+)$/m.exec(output)
      if (code === 0 && line !== null) resolve(JSON.parse(line[1] as string) as T)
      else reject(new Error(`${label} exited with ${code} and no result`))
    })
  })
}
