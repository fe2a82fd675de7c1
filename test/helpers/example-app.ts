/**
 * example-app: runs the files of examples/app as real child processes, the
 * way a container runs them (`node server.mjs`, configured by environment),
 * with 'peercache' resolved to this repository's src/ (peercache-from-src.mjs);
 * and any other node script that announces itself the same way (the README's
 * recipe, from the packed tarball).
 * Readiness is the process's `listening on PORT` line, awaited with a
 * deadline; processes are stopped by their own PID (stopChild).
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { stopChild, type ChildPeer } from './child-procs.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const HOOK = fileURLToPath(new URL('./peercache-from-src.mjs', import.meta.url))
const READY_DEADLINE_MS = 20_000

/** ExampleProcess is a running example script, with what it printed so far. */
export interface ExampleProcess extends ChildPeer {
  readonly output: () => string
}

/** startExample spawns examples/app/<script> with env (no inherited PEERCACHE_*) and resolves once it listens. */
export function startExample(script: string, tag: string, env: Record<string, string>): Promise<ExampleProcess> {
  return startListening(['--import', 'tsx', '--import', HOOK, `examples/app/${script}`], { cwd: ROOT, tag, env })
}

/**
 * startListening spawns node with args in cwd, with env over this process's
 * environment less any PEERCACHE_* variable, and resolves once the process
 * prints `listening on PORT` (env.PORT); a process that does not is killed.
 */
export async function startListening(args: readonly string[], { cwd, tag, env }: { cwd: string; tag: string; env: Record<string, string> }): Promise<ExampleProcess> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('PEERCACHE_')))
  const child = spawn(process.execPath, args, { cwd, env: { ...inherited, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
  const started: ExampleProcess = { tag, url: `http://127.0.0.1:${env.PORT}`, process: child, output: () => output }
  try {
    await listening(started, env.PORT ?? '')
  } catch (err) {
    await stopChild(started, 'SIGKILL')
    throw err
  }
  return started
}

/** listening resolves when the process printed `listening on PORT`; rejects if it exits first or the deadline passes. */
function listening({ tag, process: child, output }: ExampleProcess, port: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`${tag} not listening within ${READY_DEADLINE_MS} ms:\n${output()}`)), READY_DEADLINE_MS)
    const onData = (): void => {
      if (output().includes(`listening on ${port}`)) done()
    }
    const onExit = (code: number | null): void => done(new Error(`${tag} exited (${code}) before listening:\n${output()}`))
    function done(err?: Error): void {
      clearTimeout(timer)
      child.stdout.off('data', onData)
      child.off('exit', onExit)
      if (err) reject(err)
      else resolve()
    }
    child.stdout.on('data', onData)
    child.once('exit', onExit)
    onData()
  })
}
