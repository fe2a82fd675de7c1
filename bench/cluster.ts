/**
 * cluster bench: `npm run bench -- cluster [--secs 20] [--warmup 5]
 * [--warmup-requests 100000] [--rounds 1] [--modes peercache,redis,map]
 * [--cpu-prof DIR]`.
 * The job peercache exists
 * for, measured the way a user would: the same 3 app processes under the
 * same load, once as one peercache cluster, once with Redis cache-aside, once
 * with an in-process Map (the ceiling), side by side in one run, so the
 * ratios compare runs on the same machine at the same time.
 *
 * It runs only when named (over a minute). A run of all three modes for at
 * least 20 s (and no --cpu-prof) rewrites its section of BENCHMARKS.md.
 * The warm-up lasts --warmup seconds and --warmup-requests requests, both
 * (see cluster-mode.ts for why). `--rounds N` runs the modes N times, in
 * alternating order (A B C, C B A, …), and reports medians: on a shared
 * machine the load drifts within minutes, and one round's ratios carry it. `--cpu-prof DIR` has each app process write
 * a V8 CPU profile of the measured window, one folder per mode (read them
 * with `tsx bench/profiles.ts DIR/peercache`).
 */
import { mkdirSync } from 'node:fs'
import { cpus } from 'node:os'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import type { BenchRow } from './harness.js'
import { MODES, type Mode } from './cluster-caches.js'
import { runMode, type ModeOptions, type ModeResult } from './cluster-mode.js'
import { Processes } from './cluster-processes.js'
import { benchRows, hotShareLine, medians, ratiosTable, resultsTable } from './cluster-report.js'
import { clockTicksPerSecond } from './proc-cpu.js'
import { ensureRedisServer, INSTALL_HINT } from './redis-server.js'
import { writeSection } from './sections.js'

/** The setup of issue #12: fixed, so runs compare. */
const SETUP = { apps: 3, concurrency: 64, keys: 10_000, zipfS: 0.99, seed: 12 }
/** A run shorter than this is a trial: it does not rewrite BENCHMARKS.md. */
const RECORD_MIN_SECS = 20

/** Flags are the cluster bench's command-line options. */
interface Flags {
  secs: number
  warmupSecs: number
  warmupRequests: number
  rounds: number
  modes: Mode[]
  cpuProfDir: string | undefined
}

/** parseFlags reads the cluster flags from `npm run bench`'s arguments (suite names are positionals). */
export function parseFlags(argv: readonly string[]): Flags {
  const { values } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      secs: { type: 'string', default: '20' },
      warmup: { type: 'string', default: '5' },
      'warmup-requests': { type: 'string', default: '100000' },
      rounds: { type: 'string', default: '1' },
      modes: { type: 'string', default: MODES.join(',') },
      'cpu-prof': { type: 'string' },
    },
  })
  const modes = values.modes.split(',').filter((m) => m !== '')
  const unknown = modes.filter((m) => !MODES.includes(m as Mode))
  if (unknown.length > 0 || modes.length === 0) throw new Error(`--modes takes a comma-separated list of ${MODES.join(', ')}; got ${values.modes}`)
  const dir = values['cpu-prof']
  return {
    secs: seconds('--secs', values.secs),
    warmupSecs: seconds('--warmup', values.warmup),
    warmupRequests: count('--warmup-requests', values['warmup-requests']),
    rounds: Math.max(1, count('--rounds', values.rounds)),
    modes: modes as Mode[],
    cpuProfDir: dir === undefined ? undefined : resolve(dir),
  }
}

function count(flag: string, raw: string): number {
  const value = Number(raw)
  if (raw.trim() === '' || !Number.isInteger(value) || value < 0 || value > 1e8) throw new Error(`${flag} takes a whole number from 0 to 100000000, got ${raw}`)
  return value
}

function seconds(flag: string, raw: string): number {
  const value = Number(raw)
  if (raw.trim() === '' || !Number.isFinite(value) || value < 1 || value > 3600) throw new Error(`${flag} takes seconds from 1 to 3600, got ${raw}`)
  return value
}

/** bench runs every requested mode, prints the tables and returns the req/s ratios for run.ts's table. */
export async function bench(argv: readonly string[] = []): Promise<BenchRow[]> {
  const flags = parseFlags(argv)
  const redisServer = flags.modes.includes('redis') ? ensureRedisServer() : undefined
  if (flags.modes.includes('redis') && redisServer === undefined) console.error(INSTALL_HINT)
  const modes = flags.modes.filter((mode) => mode !== 'redis' || redisServer !== undefined)
  if (flags.cpuProfDir !== undefined) for (const mode of modes) mkdirSync(resolve(flags.cpuProfDir, mode), { recursive: true })
  const { secs, warmupSecs, warmupRequests } = flags
  const options: ModeOptions = { ...SETUP, secs, warmupSecs, warmupRequests, cpuProfDir: flags.cpuProfDir, redisServer, ticksPerSecond: clockTicksPerSecond() }
  const rounds = await runRounds(modes, flags.rounds, options)
  const results = medians(rounds, modes)
  const report = [resultsTable(results), ratiosTable(rounds), hotShareLine(results)].filter((part) => part !== '').join('\n\n')
  console.log(`\n${report}\n`)
  for (const r of results) if (r.errors > 0) console.error(`${r.mode}: ${r.errors} failed requests, first: ${r.firstError}`)
  if (modes.length === MODES.length && flags.secs >= RECORD_MIN_SECS && flags.cpuProfDir === undefined) {
    writeSection('cluster', section(report, flags))
    console.error('BENCHMARKS.md: cluster section rewritten')
  }
  return benchRows(results)
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
        process.stderr.write(`cluster: ${label}${mode}, warm-up (${options.warmupSecs} s and ${options.warmupRequests} requests), then ${options.secs} s measured…\n`)
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

/** section is the cluster benchmark's part of BENCHMARKS.md. */
function section(report: string, flags: Flags): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  return `## Cluster: peercache vs Redis vs an in-process Map (issue #12)

Made by \`npm run bench -- cluster --secs ${flags.secs}${flags.rounds > 1 ? ` --rounds ${flags.rounds}` : ''}\` (bench/cluster.ts) on ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cpus().length} × ${cpu}.
It runs only when named (a few minutes), not in a plain \`npm run bench\`.
Three node:http app processes serve \`GET /item/:id\` (~250-byte JSON) through a cache in front of an origin that
takes 5 ms per query (counted); one load generator process asks for ids drawn Zipf(0.99) over 10,000 ids, 64
requests in flight, round robin over the apps, over undici keep-alive. Per mode: a warm-up of at least ${flags.warmupSecs} s and
${flags.warmupRequests.toLocaleString('en-US')} requests (so that every mode is measured from the same point of the same key sequence: a first-time id is
a miss in every mode, and their share falls as requests go by), then ${flags.secs} s measured.
Everything (apps, peers, redis-server, load) shares this machine's cores, as on the issue's 2-core box: req/s is
bounded by CPU, so CPU per request is what decides it. Modes: **peercache** (the apps are one peercache cluster,
defaults, each app's peer endpoint on its own 127.0.0.1 port), **Redis** (a real \`redis-server\`, persistence off,
started and stopped by the bench; ioredis cache-aside in each app: GET, on a miss load and SET), **Map** (a Map per
process, loads deduplicated per key: no network at all). CPU: \`process.cpuUsage()\` of each app and of the load
generator, \`/proc/<pid>/stat\` for redis-server; origin queries per distinct key = all apps' origin queries over
the distinct ids requested in the whole run (warm-up included). The modes run one after another: compare them on a
quiet machine, or with \`--rounds N\` (the modes N times in alternating order; medians, and each ratio the median of
the rounds' own ratios). Where the time goes: \`npm run bench -- cluster --modes peercache --cpu-prof prof\`, then
\`npx tsx bench/profiles.ts prof/peercache\` (CPU and allocation profiles of the measured window, summed by file and function, per request).

${report}
`
}
