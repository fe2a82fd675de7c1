/**
 * pin: runs a benchmark's server and its load generator on CPUs of their
 * own (Linux `taskset`), so that every round measures the same thing.
 *
 * Why: on our 2-core reference box (a VM) the same server under the same
 * wrk load costs either ~22 or ~44 µs of CPU per request, depending on
 * whether the scheduler put it on wrk's CPU or the other one that round
 * (waking a process on another virtual CPU is dear there). Unpinned, the
 * serving rounds' ratios spread 0.52–0.99 (`npm run bench -- serving
 * --rounds 10`); pinned they spread 0.81–0.97, and each side's CPU per
 * request moves by a few µs, not 2×.
 */
import { availableParallelism } from 'node:os'
import { findExecutable } from './debian.js'

/** CpuPins says which CPUs (a taskset list, e.g. "1") the server and the load generator run on. */
export interface CpuPins {
  readonly server: string
  readonly client: string
}

/**
 * servingPins puts the load generator on CPU 0 and the server on the last
 * CPU; undefined (run unpinned) on a single CPU, without taskset, or when
 * BENCH_PIN=0.
 */
export function servingPins(): CpuPins | undefined {
  if (process.env['BENCH_PIN'] === '0' || availableParallelism() < 2 || findExecutable('taskset') === undefined) return undefined
  return { server: String(availableParallelism() - 1), client: '0' }
}

/** pinned is the command line that runs `file args` on `cpus` (taskset execs it: same PID), or as it is when cpus is undefined. */
export function pinned(cpus: string | undefined, file: string, args: readonly string[]): [string, string[]] {
  return cpus === undefined ? [file, [...args]] : ['taskset', ['-c', cpus, file, ...args]]
}

/** describePins says how a run was pinned, for the report's heading. */
export function describePins(pins: CpuPins | undefined): string {
  return pins === undefined ? 'unpinned' : `server on CPU ${pins.server}, wrk on CPU ${pins.client} (taskset)`
}

