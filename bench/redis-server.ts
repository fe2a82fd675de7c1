/**
 * redis-server: the real Redis the cluster benchmark compares against.
 * Finds Debian's `redis-server` (installing it with apt-get when running as
 * root, debian.ts), starts it on a free
 * 127.0.0.1 port with persistence off, and stops it by its PID.
 */
import { spawn } from 'node:child_process'
import { tmpdir } from 'node:os'
import { freePorts } from '../demo/processes.js'
import { ensureExecutable } from './debian.js'
import { processCpuMicros } from './proc-cpu.js'

/** How long redis-server may take to say it is ready, and to exit after SIGTERM before SIGKILL. */
const READY_WITHIN_MS = 10_000
const STOP_GRACE_MS = 5_000

/** INSTALL_HINT is printed when redis-server is missing and cannot be installed here. */
export const INSTALL_HINT = 'redis-server is not installed: `sudo apt-get install -y redis-server` (Debian/Ubuntu) installs it; skipping the redis mode'

/** RedisServer is a running redis-server the benchmark started. */
export interface RedisServer {
  readonly url: string
  readonly pid: number
  /** cpuMicros is the CPU time redis-server has used so far (µs, from /proc). */
  cpuMicros(): number
  stop(): Promise<void>
  /** killNow SIGKILLs it synchronously (the last resort from an 'exit' handler). */
  killNow(): void
}

/** ensureRedisServer returns the redis-server binary (installing Debian's package when it can), or undefined. */
export function ensureRedisServer(): string | undefined {
  return ensureExecutable('redis-server', 'redis-server')
}

/** startRedisServer starts `binary` on a free 127.0.0.1 port, persistence off, and resolves once it accepts connections. */
export async function startRedisServer(binary: string, ticksPerSecond: number): Promise<RedisServer> {
  const [port] = await freePorts(1)
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmpdir(), '--loglevel', 'notice']
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  const pid = child.pid ?? -1
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const alive = (): boolean => child.exitCode === null && child.signalCode === null
  const killNow = (): void => void (alive() && child.kill('SIGKILL'))
  try {
    await waitReady(child.stdout, exited)
  } catch (err) {
    killNow()
    throw err
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    pid,
    cpuMicros: () => processCpuMicros(pid, ticksPerSecond),
    killNow,
    stop: async () => {
      if (alive()) child.kill('SIGTERM')
      const timer = setTimeout(killNow, STOP_GRACE_MS)
      await exited
      clearTimeout(timer)
    },
  }
}

/** waitReady resolves when redis-server logs that it accepts connections; its later output is drained. */
function waitReady(stdout: NodeJS.ReadableStream | null, exited: Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server was not ready within ${READY_WITHIN_MS} ms`)), READY_WITHIN_MS)
    let log = ''
    let ready = false
    stdout?.setEncoding('utf8')
    stdout?.on('data', (chunk: string) => {
      if (ready) return
      log += chunk
      if (!log.includes('Ready to accept connections')) return
      ready = true
      clearTimeout(timer)
      resolve()
    })
    void exited.then(() => {
      clearTimeout(timer)
      reject(new Error(`redis-server exited before it was ready:\n${log.slice(-2000)}`))
    })
  })
}
