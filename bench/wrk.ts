/**
 * wrk: runs Debian's `wrk` (a C HTTP load generator: one thread of it
 * outruns a Node server, so the figures are the server's) against one URL
 * for a bounded time, and reads its summary.
 */
import { execFile } from 'node:child_process'
import { ensureExecutable } from './debian.js'
import { pinned } from './pin.js'

/** WRK_HINT is printed when wrk is missing and cannot be installed here. */
export const WRK_HINT = 'wrk is not installed: `sudo apt-get install -y wrk` (Debian/Ubuntu) installs it; skipping the serving suite'

/** WrkRun is one wrk run against one URL. */
export interface WrkRun {
  threads: number
  connections: number
  secs: number
  /** The CPUs wrk runs on (a taskset list, see pin.ts), or anywhere. */
  cpus?: string | undefined
}

/** WrkResult is what wrk's summary says. */
export interface WrkResult {
  requests: number
  reqPerSec: number
  p50Ms: number
  p99Ms: number
}

/** ensureWrk returns the wrk binary (installing Debian's package when it can), or undefined. */
export function ensureWrk(): string | undefined {
  return ensureExecutable('wrk', 'wrk')
}

/**
 * runWrk runs wrk against `url` and parses its summary. A run with socket
 * errors or non-2xx answers is an error: the ratio would compare failures.
 */
export function runWrk(binary: string, url: string, run: WrkRun): Promise<WrkResult> {
  const args = ['-t', String(run.threads), '-c', String(run.connections), '-d', `${run.secs}s`, '--latency', url]
  return new Promise((resolve, reject) => {
    // wrk stops itself after -d; the timeout only bounds a wrk that hangs.
    const [file, argv] = pinned(run.cpus, binary, args)
    execFile(file, argv, { timeout: (run.secs + 30) * 1000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err !== null) return reject(new Error(`wrk ${args.join(' ')} failed: ${err.message}\n${stderr}`))
      try {
        resolve(parseWrk(stdout))
      } catch (parseErr) {
        reject(parseErr)
      }
    })
  })
}

/** parseWrk reads requests, req/s and the p50/p99 latency from wrk's `--latency` summary. */
export function parseWrk(out: string): WrkResult {
  const failed = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(out)
  if (failed !== null) throw new Error(`wrk saw failures (${failed[0]}):\n${out}`)
  const requests = /(\d+) requests in/.exec(out)
  const rate = /Requests\/sec:\s+([0-9.]+)/.exec(out)
  if (requests === null || rate === null) throw new Error(`wrk's summary is not as expected:\n${out}`)
  return { requests: Number(requests[1]), reqPerSec: Number(rate[1]), p50Ms: latencyMs(out, '50%'), p99Ms: latencyMs(out, '99%') }
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 }

/** latencyMs reads one line of wrk's latency distribution (`99%    3.21ms`), NaN when absent. */
function latencyMs(out: string, quantile: string): number {
  const match = new RegExp(`^\\s*${quantile}\\s+([0-9.]+)(us|ms|s|m)\\s*$`, 'm').exec(out)
  return match === null ? Number.NaN : Number(match[1]) * (UNIT_MS[match[2] as string] as number)
}
