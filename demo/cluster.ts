/**
 * cluster: `npm run demo`. Starts N copies of demo/app.ts, each an ordinary
 * web service embedding peercache and configured the way a deployment is
 * (PEERCACHE_SELF / PEERCACHE_PEERS), drives Zipf-distributed load at them
 * through a retrying "load balancer", SIGKILLs one app at 40% of the run and
 * restarts it at 70%, and shows live what the cluster does. It ends with a
 * summary and exits 0 only if no request was lost and the origin query count
 * is what peercache promises; every app process is stopped on every exit path.
 *
 * Exit codes: 0 ok, 1 a check failed (the reason is printed), 2 bad flags,
 * 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { performance } from 'node:perf_hooks'
import { LoadGenerator } from './loadgen.js'
import { AppProcess, Fleet, freePorts, controlAgent } from './processes.js'
import { DEFAULT_PRODUCTS, ensureProducts } from './products.js'
import { Monitor, Screen, fetchStats, fmt, plural, readOriginLogs, sum, summarize } from './report.js'
import { mulberry32, zipfSampler } from './zipf.js'

const DATA = fileURLToPath(new URL('.data/', import.meta.url))
const DB = join(DATA, 'products.db')
/** The run's outage, as fractions of the load duration. */
const KILL_AT = 0.4
const RESTART_AT = 0.7
/** --rolling: when the rolling restart starts, and how long a leaving app drains. */
const ROLLING_AT = 0.15
const DRAIN_MS = 1500

const USAGE = `Usage: npm run demo -- [options]

Runs a peercache cluster of app processes on 127.0.0.1 under Zipf(0.99) load,
kills one app with SIGKILL at 40% of the run and restarts it at 70%.

Options:
  --procs <n>             app processes (default 3)
  --duration <seconds>    length of the load (default 20)
  --keys <n>              distinct product ids requested, 1..100000 (default 10000)
  --concurrency <n>       requests in flight (default 64)
  --origin-latency <ms>   artificial latency added to each origin query (default 5)
  --no-kill               do not kill and restart an app
  --rolling               instead of the kill, a rolling restart of every app, one at a time (from 15% of
                          the run): each leaves the peer registry, drains for 1.5 s, stops, restarts and rejoins
  -h, --help              show this help

Exit status: 0 ok, 1 a check failed, 2 bad options, 130 interrupted.`

/** Options are the demo's flags, parsed and checked. */
interface Options {
  procs: number
  durationS: number
  keys: number
  concurrency: number
  originLatencyMs: number
  kill: boolean
  rolling: boolean
}

/** parseOptions reads the flags; it throws a message meant for the user on a bad one. */
function parseOptions(argv: string[]): Options | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      procs: { type: 'string', default: '3' },
      duration: { type: 'string', default: '20' },
      keys: { type: 'string', default: '10000' },
      concurrency: { type: 'string', default: '64' },
      'origin-latency': { type: 'string', default: '5' },
      'no-kill': { type: 'boolean', default: false },
      rolling: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) return 'help'
  return {
    procs: number('--procs', values.procs, 1, 32, true),
    durationS: number('--duration', values.duration, 0.5, 3600, false),
    keys: number('--keys', values.keys, 1, 100_000, true),
    concurrency: number('--concurrency', values.concurrency, 1, 1024, true),
    originLatencyMs: number('--origin-latency', values['origin-latency'], 0, 10_000, false),
    kill: !values['no-kill'] && !values.rolling,
    rolling: values.rolling,
  }
}

function number(flag: string, raw: string, min: number, max: number, integer: boolean): number {
  const value = Number(raw)
  if (raw.trim() === '' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new Error(`${flag} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${JSON.stringify(raw)}`)
  }
  return value
}

const screen = new Screen()
const runDir = join(DATA, `run-${process.pid}`)
/** Aborted when the demo must stop early: Ctrl-C, a crashed app, a failed restart. */
const stopRun = new AbortController()
let fleet: Fleet | undefined
let exiting = false

/**
 * exit stops every app (SIGTERM, then SIGKILL after a grace period), waits
 * until each is reaped, removes the run's files and exits. Only the first
 * call counts: errors raised while stopping are expected and ignored.
 */
async function exit(code: number, message?: string): Promise<void> {
  if (exiting) return
  exiting = true
  stopRun.abort()
  screen.mute()
  if (message !== undefined) console.error(message)
  await fleet?.stopAll()
  await controlAgent.close().catch(() => {})
  rmSync(runDir, { recursive: true, force: true })
  process.exit(code)
}

/** A second Ctrl-C while the apps stop SIGKILLs them at once. */
function interrupted(code: number, message: string): void {
  if (!exiting) return void exit(code, message)
  fleet?.killAllNow()
  process.exit(code)
}

process.on('SIGINT', () => interrupted(130, '\ninterrupted: stopping every app'))
process.on('SIGTERM', () => interrupted(143, 'terminated: stopping every app'))
process.on('uncaughtException', (err) => void exit(1, `demo failed: ${err.stack ?? String(err)}`))
process.on('unhandledRejection', (err) => void exit(1, `demo failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`))
// The last resort, should anything exit behind our back: nothing may outlive the demo.
process.on('exit', () => fleet?.killAllNow())

async function main(): Promise<void> {
  let options: Options | 'help'
  try {
    options = parseOptions(process.argv.slice(2))
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`)
    return exit(2)
  }
  if (options === 'help') {
    console.log(USAGE)
    return exit(0)
  }
  const code = await run(options)
  await exit(code)
}

/** Cluster is the running apps: their URLs (the peer list), the fleet, and the app the outage kills. */
interface Cluster {
  urls: string[]
  apps: AppProcess[]
  fleet: Fleet
  victim: AppProcess | undefined
  /** The registry file the apps read their peers from (--rolling). */
  peersFile: string
}

/** run is the whole demo; it resolves to the exit code. */
async function run(o: Options): Promise<number> {
  const problems: string[] = []
  const cluster = await startCluster(o, problems)
  const load = new LoadGenerator({
    targets: cluster.urls,
    concurrency: o.concurrency,
    durationMs: o.durationS * 1000,
    nextKey: zipfSampler(o.keys, 0.99, mulberry32(42)),
    keys: o.keys,
    signal: stopRun.signal,
  })
  const monitor = new Monitor(cluster.apps, load)
  await driveLoad(o, cluster, load, monitor, problems)
  if (exiting) return 1 // interrupted: exit() is stopping the apps, and there is nothing to summarize
  return finish(o, cluster, load, monitor, problems)
}

/**
 * startCluster seeds the database, picks free ports, and starts one app per
 * port with the same peer list, the way a deployment configures peercache.
 */
async function startCluster(o: Options, problems: string[]): Promise<Cluster> {
  const products = Math.max(DEFAULT_PRODUCTS, o.keys)
  ensureProducts(DB, products)
  removeStaleRuns()
  mkdirSync(runDir, { recursive: true })
  const urls = (await freePorts(o.procs)).map((port) => `http://127.0.0.1:${port}`)
  const peersFile = join(runDir, 'peers')
  if (o.rolling) writeFileSync(peersFile, urls.join('\n'))
  const env = o.rolling
    ? { DEMO_PEERS_FILE: peersFile, DEMO_DRAIN_MS: String(DRAIN_MS), DEMO_DB: DB, DEMO_ORIGIN_LATENCY_MS: String(o.originLatencyMs) }
    : { PEERCACHE_PEERS: urls.join(','), DEMO_DB: DB, DEMO_ORIGIN_LATENCY_MS: String(o.originLatencyMs) }
  const events = {
    log: (app: AppProcess, line: string) => screen.log(`[${app.name}] ${line}`),
    crashed: (_app: AppProcess, why: string) => {
      problems.push(why)
      stopRun.abort()
    },
  }
  const apps = urls.map((url, i) => {
    const originLog = (generation: number): string => join(runDir, `origin-app${i + 1}-${generation}.log`)
    return new AppProcess(i + 1, url, { ...env, PEERCACHE_SELF: url }, originLog, events)
  })
  fleet = new Fleet(apps)
  const victim = o.kill && o.procs >= 2 ? apps[1] : undefined

  screen.log(`peercache demo: ${plural(o.procs, 'app process', 'app processes')}, ${o.durationS} s of load, ` +
    `concurrency ${o.concurrency}, ${fmt(o.keys)} keys (Zipf 0.99), origin latency ${o.originLatencyMs} ms`)
  screen.log(`database ${relative(process.cwd(), DB)} (${fmt(products)} products), peers ${urls.join(',')}` + (o.rolling ? ' (registry file, discovery)' : ''))
  if (o.kill && victim === undefined) screen.log('one process only: nothing to fail over to, so no kill')
  const booting = performance.now()
  await fleet.startAll((app) => screen.log(`starting ${app.name} (pid ${app.pid}) at ${app.url}`))
  screen.log(`${plural(o.procs, 'app', 'apps')} healthy after ${Math.round(performance.now() - booting)} ms`)
  if (victim !== undefined) {
    screen.log(`load for ${o.durationS} s; ${victim.name} is SIGKILLed at ${(KILL_AT * o.durationS).toFixed(1)} s ` +
      `and restarted at ${(RESTART_AT * o.durationS).toFixed(1)} s`)
  }
  if (o.rolling) screen.log(`load for ${o.durationS} s; rolling restart of every app from ${(ROLLING_AT * o.durationS).toFixed(1)} s`)
  return { urls, apps, fleet, victim, peersFile }
}

/** driveLoad runs the load, the outage and the live table side by side until the load ends. */
async function driveLoad(o: Options, cluster: Cluster, load: LoadGenerator, monitor: Monitor, problems: string[]): Promise<void> {
  await monitor.sample() // the baseline the first second's rates are computed from
  const running = load.run()
  const victim = cluster.victim
  const failed = (what: string) => (err: unknown): void => {
    problems.push(`${what} failed: ${err instanceof Error ? err.message : String(err)}`)
    stopRun.abort()
  }
  const outage = o.rolling
    ? rollingRestart(cluster, load, o, stopRun.signal).catch(failed('rolling restart'))
    : victim === undefined
      ? Promise.resolve()
      : killAndRestart(victim, cluster.fleet, load, o, stopRun.signal).catch(failed(`restart of ${victim?.name}`))
  const ticker = refreshTable(monitor, running)
  await running
  await outage
  await ticker
  await load.close()
  if (exiting) return
  screen.table(await monitor.sample())
  screen.done()
}

/** finish cross-checks the counts, stops every app, prints the summary and returns the exit code. */
async function finish(o: Options, cluster: Cluster, load: LoadGenerator, monitor: Monitor, problems: string[]): Promise<number> {
  problems.push(...(await reconcile(cluster.apps)))
  await cluster.fleet.stopAll()
  const summary = summarize({
    procs: o.procs,
    durationS: o.durationS,
    concurrency: o.concurrency,
    keys: o.keys,
    originLatencyMs: o.originLatencyMs,
    load,
    peers: cluster.urls,
    victim: cluster.victim,
    rolling: o.rolling ? cluster.apps : undefined,
    appStats: monitor.lifetimes(),
    originByKey: readOriginLogs(cluster.apps.flatMap((app) => app.originLogs())),
    problems,
    pids: cluster.fleet.pids,
    leftRunning: cluster.fleet.pids.filter(isAlive),
  })
  for (const line of summary.lines) screen.log(line)
  screen.log(`SUMMARY ${JSON.stringify(summary.record)}`)
  return summary.reasons.length === 0 ? 0 : 1
}

/** killAndRestart is the outage: SIGKILL at 40% of the run, restart on the same port at 70%. */
async function killAndRestart(victim: AppProcess, fleet: Fleet, load: LoadGenerator, o: Options, signal: AbortSignal): Promise<void> {
  const at = (fraction: number): number => Math.max(0, fraction * o.durationS * 1000 - load.elapsedMs())
  try {
    await sleep(at(KILL_AT), undefined, { signal })
  } catch {
    return // the run was stopped before the outage
  }
  screen.log(`${clock(load)}  SIGKILL ${victim.name} (pid ${victim.pid}): its keys fail over to the next peer on the ring`)
  victim.kill()
  try {
    await sleep(at(RESTART_AT), undefined, { signal })
  } catch {
    return
  }
  await fleet.start(victim, () => screen.log(`${clock(load)}  restarting ${victim.name} (pid ${victim.pid}) on ${victim.url}`))
  screen.log(`${clock(load)}  ${victim.name} is back (pid ${victim.pid}) with an empty cache; peers send it its keys again once they see it up`)
}

/**
 * rollingRestart restarts every app in turn, as a Kubernetes rolling update
 * does: the app leaves the peer registry (the others drop it on their next
 * refresh), gets SIGTERM and drains for DRAIN_MS (its peers peek the keys it
 * owned), exits, starts again on its URL and rejoins the registry (it peeks
 * its keys back from their stand-in owners).
 */
async function rollingRestart(cluster: Cluster, load: LoadGenerator, o: Options, signal: AbortSignal): Promise<void> {
  const register = (urls: readonly string[]): void => writeFileSync(cluster.peersFile, urls.join('\n'))
  try {
    await sleep(Math.max(0, ROLLING_AT * o.durationS * 1000 - load.elapsedMs()), undefined, { signal })
    for (const app of cluster.apps) {
      register(cluster.urls.filter((url) => url !== app.url))
      screen.log(`${clock(load)}  ${app.name} leaves the registry and drains for ${DRAIN_MS} ms (SIGTERM)`)
      await app.stop()
      await cluster.fleet.start(app, () => screen.log(`${clock(load)}  restarting ${app.name} (pid ${app.pid}) on ${app.url}`))
      register(cluster.urls)
      screen.log(`${clock(load)}  ${app.name} is back (pid ${app.pid}) and rejoins the registry`)
      await sleep(1000, undefined, { signal })
    }
  } catch (err) {
    if (!signal.aborted) throw err
  }
}

/** refreshTable redraws the live table about once a second until the load ends. */
async function refreshTable(monitor: Monitor, running: Promise<void>): Promise<void> {
  let finished = false
  const done = (): void => void (finished = true)
  running.then(done, done)
  while (!finished) {
    await Promise.race([sleep(1000), running])
    if (!finished) screen.table(await monitor.sample())
  }
}

/**
 * reconcile checks the two ways origin queries are counted against each
 * other: each live app's in-memory counter (GET /stats) must equal the lines
 * of its query log.
 */
async function reconcile(apps: readonly AppProcess[]): Promise<string[]> {
  const problems: string[] = []
  for (const app of apps.filter((a) => a.state === 'up')) {
    const stats = await fetchStats(app.url)
    const logged = sum(readOriginLogs([app.originLog]).values())
    if (stats === undefined) problems.push(`${app.name} did not answer /stats at the end`)
    else if (stats.originQueries !== logged) problems.push(`${app.name} counted ${stats.originQueries} origin queries but logged ${logged}`)
  }
  return problems
}

/** removeStaleRuns deletes the query logs of earlier demos that could not clean up (they were SIGKILLed). */
function removeStaleRuns(): void {
  for (const name of readdirSync(DATA)) {
    const pid = /^run-(\d+)$/.exec(name)?.[1]
    if (pid !== undefined && !isAlive(Number(pid))) rmSync(join(DATA, name), { recursive: true, force: true })
  }
}

function clock(load: LoadGenerator): string {
  return `${(load.elapsedMs() / 1000).toFixed(1).padStart(5)} s`
}

/** isAlive tells whether pid still exists (signal 0 checks without sending anything). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

main().catch((err: unknown) => exit(1, `demo failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`))
