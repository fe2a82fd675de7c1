/**
 * cluster bench: `npm run bench -- cluster [--secs 20] [--warmup 5]
 * [--warmup-requests 100000] [--rounds 1] [--modes peercache,redis,map]
 * [--cpu-prof DIR] [--rate [N|auto]] [--max-in-flight 1024] [--cold] [--alone]`.
 * The job peercache exists
 * for, measured the way a user would: the same 3 app processes under the
 * same load, once as one peercache cluster, once with Redis cache-aside, once
 * with an in-process Map (the ceiling), side by side in one run, so the
 * ratios compare runs on the same machine at the same time.
 *
 * It runs only when named (over a minute). A run of all its variant's modes
 * for at least 20 s (and no --cpu-prof) rewrites that variant's section of
 * BENCHMARKS.md. The warm-up lasts --warmup seconds and --warmup-requests
 * requests, both (see cluster-mode.ts for why). `--rounds N` runs the modes
 * N times, in alternating order (A B C, C B A, …), and reports medians: on a
 * shared machine the load drifts within minutes, and one round's ratios
 * carry it. `--cpu-prof DIR` has each app process write a V8 CPU profile of
 * the measured window, one folder per mode (read them with
 * `tsx bench/profiles.ts DIR/peercache [--against DIR/map]`).
 *
 * Variants (cluster-flags.ts): the closed loop is the default; `--rate N`
 * is an open loop at N requests/s (`--rate` or `--rate auto`: 60% of the
 * Map's closed-loop max, measured first), for CPU per request at equal work;
 * `--cold` measures from the first request with empty caches; `--alone`
 * compares each peercache app alone (no peers) with the same app on a Map.
 */
import { mkdirSync, readdirSync } from 'node:fs'
import { resolve } from 'node:path'
import type { BenchRow } from './harness.js'
import type { Mode } from './cluster-caches.js'
import { AUTO_RATE_SHARE, parseFlags, variantName, type Flags } from './cluster-flags.js'
import { runMode, type ModeOptions, type ModeResult } from './cluster-mode.js'
import { Processes } from './cluster-processes.js'
import { benchRows, hotShareLine, medians, ratiosTable, resultsTable } from './cluster-report.js'
import { variantRatiosTable } from './cluster-ratios.js'
import { timelineTable } from './cluster-timeline.js'
import { aloneSection, closedSection, coldSection, rateSection, sectionName } from './cluster-sections.js'
import { clockTicksPerSecond } from './proc-cpu.js'
import { ensureRedisServer, INSTALL_HINT } from './redis-server.js'
import { writeSection } from './sections.js'

export { parseFlags } from './cluster-flags.js'

/** The setup of issue #12: fixed, so runs compare. */
const SETUP = { apps: 3, concurrency: 64, keys: 10_000, zipfS: 0.99, seed: 12 }
/** A run shorter than this is a trial: it does not rewrite BENCHMARKS.md. */
const RECORD_MIN_SECS = 20

/** bench runs every requested mode, prints the tables and returns the req/s ratios for run.ts's table. */
export async function bench(argv: readonly string[] = []): Promise<BenchRow[]> {
  const flags = parseFlags(argv)
  const redisServer = flags.modes.includes('redis') ? ensureRedisServer() : undefined
  if (flags.modes.includes('redis') && redisServer === undefined) console.error(INSTALL_HINT)
  const modes = flags.modes.filter((mode) => mode !== 'redis' || redisServer !== undefined)
  if (modes.length === 0) {
    console.error('cluster: no mode left to run (redis-server is missing, see above)')
    return []
  }
  if (flags.cpuProfDir !== undefined) for (const mode of modes) profileFolder(resolve(flags.cpuProfDir, mode))
  const { secs, warmupSecs, warmupRequests, cold, alone, maxInFlight } = flags
  const closedLoop: ModeOptions = { ...SETUP, secs, warmupSecs, warmupRequests, redisServer, ticksPerSecond: clockTicksPerSecond(), cpuProfDir: undefined, rate: undefined, maxInFlight, cold: false, alone: false }
  const options: ModeOptions = { ...closedLoop, cpuProfDir: flags.cpuProfDir, cold, alone, rate: await offeredRate(flags, closedLoop) }
  const rounds = await runRounds(modes, flags.rounds, options)
  const results = medians(rounds, modes)
  const variant = variantName(flags)
  const columns = { rate: options.rate !== undefined, cold, alone }
  const ratios = variant === 'closed' ? ratiosTable(rounds) : variantRatiosTable(variant, rounds)
  const timeline = cold ? timelineTable(results) : ''
  const report = [resultsTable(results, columns), ratios, alone ? '' : hotShareLine(results), timeline].filter((part) => part !== '').join('\n\n')
  console.log(`\n${report}\n`)
  for (const r of results) if (r.errors > 0) console.error(`${r.mode}: ${r.errors} failed requests, first: ${r.firstError}`)
  for (const r of results) if (r.dropped > 0) console.error(`${r.mode}: ${r.dropped} requests not sent (over --max-in-flight ${maxInFlight}): it could not keep up with the offered rate`)
  const allModes = modes.length === flags.modes.length && (alone || modes.length === 3)
  if (allModes && flags.secs >= RECORD_MIN_SECS && flags.cpuProfDir === undefined) {
    writeSection(sectionName(variant), section(variant, report, flags, options))
    console.error(`BENCHMARKS.md: ${sectionName(variant)} section rewritten`)
  }
  return variant === 'closed' ? benchRows(results) : []
}

/**
 * offeredRate is the open loop's rate: the one given, or (auto) a share of
 * the Map mode's closed-loop req/s, measured now with the run's warm-up and
 * window; undefined for the closed loop.
 */
async function offeredRate(flags: Flags, closedLoop: ModeOptions): Promise<number | undefined> {
  if (flags.rate !== 'auto') return flags.rate
  process.stderr.write(`cluster: --rate auto: measuring the Map mode's closed-loop max first (${closedLoop.secs} s after the warm-up)…\n`)
  const [[map]] = (await runRounds(['map'], 1, closedLoop)) as [[ModeResult]]
  const rate = Math.round(map.reqPerSec * AUTO_RATE_SHARE)
  process.stderr.write(`cluster: Map closed loop ${Math.round(map.reqPerSec)} req/s; offered rate ${rate} req/s (${AUTO_RATE_SHARE * 100}%)\n`)
  return rate
}

/** profileFolder makes a mode's profile folder; one holding an earlier run's profiles is refused (its windows would add up with this run's). */
function profileFolder(dir: string): void {
  mkdirSync(dir, { recursive: true })
  if (readdirSync(dir).some((name) => name.endsWith('.cpuprofile') || name === 'window.json')) throw new Error(`--cpu-prof: ${dir} holds profiles of an earlier run; give an empty or new folder`)
}

function section(variant: ReturnType<typeof variantName>, report: string, flags: Flags, options: ModeOptions): string {
  if (variant === 'rate') return rateSection(report, flags, options.rate as number)
  if (variant === 'cold') return coldSection(report, flags)
  if (variant === 'alone') return aloneSection(report, flags)
  return closedSection(report, flags)
}

/**
 * runRounds runs the modes one after the other, `rounds` times, every other
 * round in reverse order. Every process is stopped by its PID at the end of
 * each mode; on Ctrl-C/SIGTERM the run ends early and stops them; if this
 * process exits any other way they are SIGKILLed.
 */
async function runRounds(modes: readonly Mode[], rounds: number, options: ModeOptions): Promise<ModeResult[][]> {
  const processes = new Processes()
  const interrupted = new AbortController()
  const onSignal = (signal: NodeJS.Signals): void => interrupted.abort(new Error(`interrupted by ${signal}`))
  const onExit = (): void => processes.killAllNow()
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal).on('exit', onExit)
  try {
    const all: ModeResult[][] = []
    for (let i = 0; i < rounds; i++) {
      const order = i % 2 === 0 ? modes : [...modes].reverse()
      const label = rounds > 1 ? `round ${i + 1}/${rounds}, ` : ''
      const round: ModeResult[] = []
      for (const mode of order) {
        process.stderr.write(`cluster: ${label}${mode}, ${describe(options)}…\n`)
        round.push(await runMode(mode, options, processes, interrupted.signal))
      }
      all.push(round)
    }
    return all
  } catch (err) {
    if (!interrupted.signal.aborted) throw err
    await processes.stopAll()
    console.error(`cluster: ${(interrupted.signal.reason as Error).message}; every process it started is stopped`)
    process.exit(130)
  } finally {
    await processes.stopAll()
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal).off('exit', onExit)
  }
}

/** describe says what a mode's run does, for the progress lines. */
function describe(options: ModeOptions): string {
  const load = options.rate === undefined ? 'closed loop' : `open loop at ${options.rate} req/s`
  const start = options.cold ? 'cold (no warm-up)' : `warm-up (${options.warmupSecs} s and ${options.warmupRequests} requests)`
  return `${options.alone ? 'each app alone, ' : ''}${load}, ${start}, then ${options.secs} s measured`
}
