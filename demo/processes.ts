/**
 * processes: starting, killing and always stopping the demo's app processes.
 *
 * Every child ever spawned is tracked until it has exited and been reaped,
 * so the parent can stop them all on a normal end, on Ctrl-C and on error,
 * and leave no orphan. Children also watch their stdin (a pipe from this
 * process): if the parent dies without cleaning up, the pipe closes and they
 * exit by themselves.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request } from 'undici'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const APP = join(ROOT, 'demo', 'app.ts')
/** How long an app may take to answer /healthz after spawning. */
const HEALTHY_WITHIN_MS = 20_000
/** How long a child gets after SIGTERM before it is SIGKILLed. */
const STOP_GRACE_MS = 3_000

/** The HTTP client the parent uses for /healthz and /stats: short timeouts, never the load's pools. */
export const controlAgent = new Agent({ connections: 2, headersTimeout: 1_000, bodyTimeout: 1_000, connect: { timeout: 1_000 } })

/** freePorts finds n distinct free ports on 127.0.0.1 (listen on port 0, read it, close). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = Array.from({ length: n }, () => createServer())
  const ports = await Promise.all(
    servers.map(
      (server) =>
        new Promise<number>((resolve, reject) => {
          server.once('error', reject)
          server.listen(0, '127.0.0.1', () => {
            const address = server.address()
            resolve(typeof address === 'object' && address !== null ? address.port : 0)
          })
        }),
    ),
  )
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
  return ports
}

/** AppState is what the live table shows in the state column. */
export type AppState = 'starting' | 'up' | 'killed' | 'stopping' | 'stopped' | 'crashed'

/** AppEvents are how a Fleet reports to the demo. */
export interface AppEvents {
  /** A line the app wrote to stderr. */
  log(app: AppProcess, line: string): void
  /** An app exited without being asked to. */
  crashed(app: AppProcess, why: string): void
}

/** AppProcess is one app instance (index 1..N): at most one live child at a time, restartable. */
export class AppProcess {
  readonly index: number
  readonly url: string
  state: AppState = 'stopped'
  /** The current (or last) child's pid. */
  pid: number | undefined
  /** 1 for the first start, 2 after a restart, ... */
  generation = 0
  #child: ChildProcess | undefined
  #exited: Promise<void> = Promise.resolve()
  readonly #env: Record<string, string>
  readonly #logFor: (generation: number) => string
  readonly #events: AppEvents
  readonly #stderrTail: string[] = []

  constructor(index: number, url: string, env: Record<string, string>, logFor: (generation: number) => string, events: AppEvents) {
    this.index = index
    this.url = url
    this.#env = env
    this.#logFor = logFor
    this.#events = events
  }

  /** name is how the demo prints this app. */
  get name(): string {
    return `app ${this.index}`
  }

  /** originLog is the query log of the current (or last) child. */
  get originLog(): string {
    return this.#logFor(this.generation)
  }

  /** originLogs lists the query logs of every lifetime of this app so far. */
  originLogs(): string[] {
    return Array.from({ length: this.generation }, (_, g) => this.#logFor(g + 1))
  }

  /** start spawns the app and resolves once it answers /healthz (bounded). */
  async start(): Promise<void> {
    this.generation++
    this.state = 'starting'
    const child = spawn(process.execPath, ['--import', 'tsx', APP], {
      cwd: ROOT,
      env: { ...process.env, ...this.#env, DEMO_ORIGIN_LOG: this.originLog, DEMO_EXIT_WITH_PARENT: '1' },
      stdio: ['pipe', 'ignore', 'pipe'],
    })
    this.#child = child
    this.pid = child.pid
    this.#exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(this.#onExit(child, code, signal))))
    child.stdin?.on('error', () => {}) // the child may die first: a broken pipe is expected
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => this.#onStderr(chunk))
    await this.#waitHealthy(child)
    this.state = 'up'
  }

  /** kill ends the app abruptly with SIGKILL, as a crash or an OOM kill would. */
  kill(): void {
    if (!this.#alive()) return
    this.state = 'killed'
    this.#child?.kill('SIGKILL')
  }

  /** stop asks the app to shut down (SIGTERM), SIGKILLs it after a grace period, and waits until it is reaped. */
  async stop(): Promise<void> {
    const child = this.#child
    if (child !== undefined && this.#alive()) {
      if (this.state !== 'killed') this.state = 'stopping'
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS)
      await this.#exited
      clearTimeout(timer)
    }
    await this.#exited
  }

  /** killNow SIGKILLs the child synchronously: the last resort from a process 'exit' handler. */
  killNow(): void {
    if (this.#alive()) this.#child?.kill('SIGKILL')
  }

  /** stderrTail is the app's last stderr lines, for error messages. */
  stderrTail(): string {
    return this.#stderrTail.join('\n')
  }

  #alive(): boolean {
    const child = this.#child
    return child !== undefined && child.exitCode === null && child.signalCode === null
  }

  #onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child !== this.#child) return
    const expected = this.state === 'killed' || this.state === 'stopping'
    if (this.state !== 'killed') this.state = expected ? 'stopped' : 'crashed'
    if (!expected) this.#events.crashed(this, `${this.name} (pid ${child.pid}) exited unexpectedly with ${signal ?? `code ${code}`}`)
  }

  #onStderr(chunk: string): void {
    for (const line of chunk.split('\n')) {
      if (line.trim() === '') continue
      this.#stderrTail.push(line)
      if (this.#stderrTail.length > 20) this.#stderrTail.shift()
      this.#events.log(this, line)
    }
  }

  async #waitHealthy(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + HEALTHY_WITHIN_MS
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null || child !== this.#child) {
        throw new Error(`${this.name} exited before it was healthy\n${this.stderrTail()}`)
      }
      if (await isHealthy(this.url)) return
      await sleep(100)
    }
    throw new Error(`${this.name} was not healthy within ${HEALTHY_WITHIN_MS} ms\n${this.stderrTail()}`)
  }
}

/** isHealthy tells whether url answers GET /healthz with 200. */
async function isHealthy(url: string): Promise<boolean> {
  try {
    const response = await request(`${url}/healthz`, { dispatcher: controlAgent })
    await response.body.dump()
    return response.statusCode === 200
  } catch {
    return false
  }
}

/** Fleet is every app of the demo, and every pid it ever spawned. */
export class Fleet {
  readonly apps: AppProcess[]
  /** pids lists the pid of every child spawned so far, restarts included. */
  readonly pids: number[] = []
  #stopping = false

  constructor(apps: AppProcess[]) {
    this.apps = apps
  }

  /**
   * start starts one app, records its pid and calls onSpawn at once (so the
   * pid is known even if the app never becomes healthy), then resolves when
   * it is healthy. Refused once stopAll has begun.
   */
  async start(app: AppProcess, onSpawn: (app: AppProcess) => void): Promise<void> {
    if (this.#stopping) throw new Error(`not starting ${app.name}: the demo is stopping`)
    const started = app.start()
    if (app.pid !== undefined) this.pids.push(app.pid)
    onSpawn(app)
    await started
  }

  /** startAll starts every app in parallel and resolves when all are healthy. */
  async startAll(onSpawn: (app: AppProcess) => void): Promise<void> {
    await Promise.all(this.apps.map((app) => this.start(app, onSpawn)))
  }

  /** stopAll stops every app (SIGTERM, then SIGKILL) and resolves when all are reaped. */
  async stopAll(): Promise<void> {
    this.#stopping = true
    await Promise.all(this.apps.map((app) => app.stop()))
  }

  /** killAllNow SIGKILLs every live child synchronously (for process.on('exit')). */
  killAllNow(): void {
    for (const app of this.apps) app.killNow()
  }
}
