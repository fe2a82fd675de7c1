/**
 * cluster-mode: one mode of the cluster benchmark from start to end:
 * redis-server (redis mode), the app processes, the load generator; a
 * warm-up; a sample of every process; the measured window; a second sample;
 * then every process stopped by its PID, on every path. The result is per
 * request, from the difference of the two samples.
 *
 * The warm-up lasts a minimum time *and* a number of requests: the share of
 * first-time ids falls as requests go by (Zipf over 10,000 ids: 14% after
 * 25k requests, 3.6% after 100k), and a first-time id is a miss in every
 * mode. Counting requests measures every mode from the same point of the
 * same key sequence; a time alone would measure a slower mode colder.
 *
 * Variants (ModeOptions): `rate` drives the apps open-loop at a fixed rate
 * (cluster-loadgen.ts); `cold` skips the warm-up and measures from the first
 * request, every cache empty (the processes are new); `alone` never gives
 * the peercache apps their peers, so each is a cluster of itself: the
 * embedded path's own cost, with no peer fetch or hot cache.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type { GroupStats } from '../dist/index.js'
import type { Mode } from './cluster-caches.js'
import { BenchChild, type Message } from './cluster-ipc.js'
import type { LoadPlan, LoadSample } from './cluster-loadgen.js'
import type { TimelineStep } from './cluster-timeline.js'
import type { Processes } from './cluster-processes.js'
import { startRedisServer, type RedisServer } from './redis-server.js'

/** The warm-up ends after this long even if it has not reached its request count (a slow machine). */
const MAX_WARMUP_MS = 600_000
/** How often the warm-up asks the load generator how far it got. */
const PROGRESS_EVERY_MS = 250

/** ModeOptions is the run's setup, the same for every mode. */
export interface ModeOptions {
  secs: number
  /** The warm-up lasts at least this long… */
  warmupSecs: number
  /** …and until this many requests were served (bounded by MAX_WARMUP_MS). */
  warmupRequests: number
  apps: number
  concurrency: number
  keys: number
  zipfS: number
  seed: number
  /** Where the app processes write CPU profiles of the measured window (one folder per mode), if profiling. */
  cpuProfDir: string | undefined
  /** The redis-server binary (redis mode). */
  redisServer: string | undefined
  ticksPerSecond: number
  /** Open loop at this many requests/s over all apps; undefined for the closed loop. */
  rate: number | undefined
  /** Open loop: the most requests in flight. */
  maxInFlight: number
  /** No warm-up: measured from the first request. */
  cold: boolean
  /** Each peercache app alone (its peers never set). */
  alone: boolean
}

/** HotShare is how gets for keys another app owns were served (peercache mode). */
export interface HotShare {
  remoteGets: number
  /** Share of those gets served from the hot cache. */
  fromHot: number
  /** Peer fetches (peerLoads + peerErrors) per such get. */
  peerFetchesPerGet: number
  /** Peer fetches that failed (then loaded locally) in the window. */
  peerErrors: number
  /** … and in the whole run, warm-up included (each may cost an extra origin query). */
  peerErrorsInRun: number
}

/** ModeResult is one row of the cluster benchmark's table. */
export interface ModeResult {
  mode: Mode
  /** How long the warm-up took, and how many requests it served. */
  warmupMs: number
  warmupRequests: number
  reqPerSec: number
  p50Ms: number
  p99Ms: number
  errors: number
  firstError: string | undefined
  originQueriesPerKey: number
  /** Origin queries of all apps in the measured window (cold: every load since the first request). */
  originQueries: number
  /** Open loop: the offered rate (NaN for the closed loop), and the requests due but not sent (in-flight cap). */
  offeredRate: number
  dropped: number
  appCpuMicrosPerReq: number
  /** NaN outside redis mode. */
  redisCpuMicrosPerReq: number
  loadgenCpuMicrosPerReq: number
  hot: HotShare | undefined
  /** The window's first seconds (cluster-timeline.ts). */
  timeline: TimelineStep[]
}

/** AppSample is what an app answers to `sample`. */
interface AppSample {
  cpuMicros: number
  originQueries: number
  group: GroupStats | undefined
}

/** Sample is every process's sample taken at one moment. */
interface Sample {
  /** undefined before a cold start (no load yet). */
  load: LoadSample | undefined
  apps: AppSample[]
  redisCpuMicros: number
}

/** runMode runs `mode` and returns its result; `signal` (Ctrl-C) and a crashed child end it early. */
export async function runMode(mode: Mode, options: ModeOptions, processes: Processes, signal: AbortSignal): Promise<ModeResult> {
  const crashed = new AbortController()
  const onCrash = (why: string): void => crashed.abort(new Error(why))
  const stop = AbortSignal.any([signal, crashed.signal])
  try {
    const redis = mode === 'redis' ? processes.add(await startRedis(options)) : undefined
    const apps = await startApps(mode, options, redis, processes, onCrash)
    const remote = mode === 'peercache' && !options.alone ? await joinCluster(apps, options.keys) : []
    const loadgen = processes.add(BenchChild.fork('load generator', './cluster-loadgen.ts', [], onCrash))
    await loadgen.ready()
    const start = (): Promise<unknown> => loadgen.ask('start', { plan: plan(apps, options) })
    // Cold: the window opens before the first request. Warm: the load runs through the warm-up first.
    const warmup = options.cold ? { warmupMs: 0, warmupRequests: 0 } : await start().then(() => warmUp(loadgen, options, stop))
    const before = await sampleAll(options.cold ? undefined : loadgen, apps, redis)
    if (options.cpuProfDir !== undefined) await askAll(apps, 'profileStart')
    if (options.cold) await start()
    await sleep(options.secs * 1000, undefined, { signal: stop })
    const after = await sampleAll(loadgen, apps, redis)
    const window = after.load as LoadSample
    if (options.cpuProfDir !== undefined) await stopProfiles(apps, join(options.cpuProfDir, mode), window, after.apps)
    await loadgen.stop() // first, so that no app is closed with requests of the load in flight
    return { ...result(mode, before, after, remote, options), ...warmup }
  } catch (err) {
    throw crashed.signal.aborted ? crashed.signal.reason : err
  } finally {
    await processes.stopAll()
  }
}

/** warmUp waits until the warm-up's time and request count are both reached (or MAX_WARMUP_MS passed). */
async function warmUp(loadgen: BenchChild, options: ModeOptions, signal: AbortSignal): Promise<{ warmupMs: number; warmupRequests: number }> {
  const started = performance.now()
  await sleep(options.warmupSecs * 1000, undefined, { signal })
  let served = await loadgen.ask<number>('progress')
  while (served < options.warmupRequests && performance.now() - started < MAX_WARMUP_MS) {
    await sleep(PROGRESS_EVERY_MS, undefined, { signal })
    served = await loadgen.ask<number>('progress')
  }
  return { warmupMs: performance.now() - started, warmupRequests: served }
}

async function askAll(apps: App[], type: string): Promise<void> {
  await Promise.all(apps.map(([app]) => app.ask(type)))
}

/** ProfiledWindow is window.json: the profiled windows' requests, length and the apps' CPU time in them. */
interface ProfiledWindow {
  requests: number
  windowMs: number
  cpuMicros: number
}

/** stopProfiles has the apps write their profiles, and writes the window's request count and the apps' CPU time in it beside them (bench/profiles.ts reads them). */
async function stopProfiles(apps: App[], dir: string, window: LoadSample, samples: readonly AppSample[]): Promise<void> {
  await askAll(apps, 'profileStop')
  const file = join(dir, 'window.json')
  // With --rounds, a mode's folder holds every round's profiles: the windows add up.
  const earlier = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as ProfiledWindow) : { requests: 0, windowMs: 0, cpuMicros: 0 }
  const cpuMicros = samples.reduce((sum, app) => sum + app.cpuMicros, 0)
  const summed: ProfiledWindow = { requests: earlier.requests + window.requests, windowMs: earlier.windowMs + window.windowMs, cpuMicros: earlier.cpuMicros + cpuMicros }
  writeFileSync(file, JSON.stringify(summed))
}

async function startRedis(options: ModeOptions): Promise<RedisServer> {
  if (options.redisServer === undefined) throw new Error('redis mode needs redis-server')
  return startRedisServer(options.redisServer, options.ticksPerSecond)
}

type App = [BenchChild, Message]

/** startApps starts the app processes in parallel (each tracked as soon as it is ready). */
function startApps(mode: Mode, options: ModeOptions, redis: RedisServer | undefined, processes: Processes, onCrash: (why: string) => void): Promise<App[]> {
  const redisArgs = redis === undefined ? [] : ['--redis', redis.url]
  const profileArgs = options.cpuProfDir === undefined ? [] : ['--cpu-prof', join(options.cpuProfDir, mode)]
  const start = async (i: number): Promise<App> => {
    const args = [mode, `app${i + 1}`, ...redisArgs, ...profileArgs]
    const app = processes.add(BenchChild.fork(`${mode} app ${i + 1}`, './cluster-app.ts', args, onCrash))
    return [app, await app.ready()]
  }
  return Promise.all(Array.from({ length: options.apps }, (_, i) => start(i)))
}

/** joinCluster gives every app the peer list, then returns each app's remote-owned ids. */
async function joinCluster(apps: App[], keys: number): Promise<Array<Set<number>>> {
  const peers = apps.map(([, ready]) => ready.peerUrl as string)
  await Promise.all(apps.map(([app]) => app.ask('peers', { peers })))
  const remote = await Promise.all(apps.map(([app]) => app.ask<number[]>('remoteIds', { keys })))
  return remote.map((ids) => new Set(ids))
}

function plan(apps: App[], options: ModeOptions): LoadPlan {
  const targets = apps.map(([, ready]) => ready.url as string)
  const { concurrency, keys, zipfS, seed, rate, maxInFlight } = options
  return { targets, concurrency, keys, zipfS, seed, rate, maxInFlight }
}

/** sampleAll samples every process at (nearly) the same moment (the load generator too, unless it has no load yet). */
async function sampleAll(loadgen: BenchChild | undefined, apps: App[], redis: RedisServer | undefined): Promise<Sample> {
  const redisCpuMicros = redis?.cpuMicros() ?? Number.NaN
  const [load, ...appSamples] = await Promise.all([loadgen?.ask<LoadSample>('sample'), ...apps.map(([app]) => app.ask<AppSample>('sample'))])
  return { load: load as LoadSample | undefined, apps: appSamples as AppSample[], redisCpuMicros }
}

/** result turns the two samples into per-request figures; `after.load` is the measured window. */
function result(mode: Mode, before: Sample, after: Sample, remote: Array<Set<number>>, options: ModeOptions): Omit<ModeResult, 'warmupMs' | 'warmupRequests'> {
  const window = after.load as LoadSample
  const requests = window.requests
  const appCpu = after.apps.reduce((sum, app) => sum + app.cpuMicros, 0)
  const originQueries = after.apps.reduce((sum, app) => sum + app.originQueries, 0)
  const originBefore = before.apps.reduce((sum, app) => sum + app.originQueries, 0)
  return {
    mode,
    reqPerSec: (requests * 1000) / window.windowMs,
    p50Ms: window.p50Ms,
    p99Ms: window.p99Ms,
    errors: window.errors,
    firstError: window.firstError,
    originQueriesPerKey: originQueries / window.distinct,
    originQueries: originQueries - originBefore,
    offeredRate: options.rate ?? Number.NaN,
    dropped: window.dropped,
    appCpuMicrosPerReq: appCpu / requests,
    redisCpuMicrosPerReq: (after.redisCpuMicros - before.redisCpuMicros) / requests,
    loadgenCpuMicrosPerReq: window.cpuMicros / requests,
    hot: remote.length === 0 ? undefined : hotShare(before, after, remote),
    timeline: window.timeline,
  }
}

/** hotShare counts the window's gets for ids each app does not own, and how the hot cache and peers served them. */
function hotShare(before: Sample, after: Sample, remote: Array<Set<number>>): HotShare {
  let remoteGets = 0
  let hotHits = 0
  let peerFetches = 0
  let peerErrors = 0
  let peerErrorsInRun = 0
  remote.forEach((ids, i) => {
    const counts = after.load?.idCounts[i] ?? []
    for (const id of ids) remoteGets += counts[id] ?? 0
    const was = before.apps[i]?.group
    const now = after.apps[i]?.group
    if (was === undefined || now === undefined) return
    hotHits += now.hot.hits - was.hot.hits
    peerFetches += now.peerLoads + now.peerErrors - (was.peerLoads + was.peerErrors)
    peerErrors += now.peerErrors - was.peerErrors
    peerErrorsInRun += now.peerErrors
  })
  return { remoteGets, fromHot: hotHits / remoteGets, peerFetchesPerGet: peerFetches / remoteGets, peerErrors, peerErrorsInRun }
}
