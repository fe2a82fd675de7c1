/**
 * child: starts a bench/server-child.ts process and stops it by its PID.
 * Bounded: it must say `URL …` within 20 s, and is killed on stop.
 * With BENCH_CHILD_CPU_PROF=DIR each server child writes a V8 CPU profile
 * there (read it with bench/profiles.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { pinned } from './pin.js'

/** ServerChild is a running benchmark server process. */
export interface ServerChild {
  url: string
  /** cpuMicros resolves to the child's CPU time so far (user + system), in µs. */
  cpuMicros(): Promise<number>
  stop(): Promise<void>
}

/**
 * startServerChild runs server-child.ts in `mode` and resolves once it
 * listens; `args` follow the mode (a value size, or for `replay` the answer to
 * replay). `cpus` (a taskset list) pins it: see pin.ts.
 */
export async function startServerChild(mode: 'raw' | 'peercache' | 'replay', args: readonly string[] = ['100'], cpus?: string): Promise<ServerChild> {
  const script = fileURLToPath(new URL('./server-child.ts', import.meta.url))
  const [file, argv] = pinned(cpus, process.execPath, [...cpuProfileArgs(), '--import', 'tsx', script, mode, ...args])
  const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'inherit'] })
  const url = await readUrl(child)
  return {
    url,
    cpuMicros: () => askCpu(child),
    stop: async () => {
      if (child.exitCode !== null) return
      const exited = once(child, 'exit')
      child.stdin?.end()
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
      await exited
      clearTimeout(timer)
    },
  }
}

function readUrl(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error('benchmark server did not start within 20 s'))
    }, 20_000)
    let buffered = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8')
      const match = /URL (\S+)\n/.exec(buffered)
      if (match === null) return
      clearTimeout(timer)
      resolve(match[1] as string)
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`benchmark server exited early with ${code}`))
    })
  })
}

/** askCpu writes `cpu` to the child and resolves with the number of its `CPU <µs>` answer. */
function askCpu(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let buffered = ''
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString('utf8')
      const match = /CPU (\d+)\n/.exec(buffered)
      if (match === null) return
      child.stdout?.off('data', onData)
      resolve(Number(match[1]))
    }
    child.stdout?.on('data', onData)
    child.stdin?.write('cpu\n', (err) => {
      if (err) reject(err)
    })
  })
}

/** cpuProfileArgs are node's flags for a CPU profile of the child when BENCH_CHILD_CPU_PROF names a folder. */
function cpuProfileArgs(): string[] {
  const dir = process.env['BENCH_CHILD_CPU_PROF']
  return dir === undefined || dir === '' ? [] : ['--cpu-prof', '--cpu-prof-dir', dir]
}
