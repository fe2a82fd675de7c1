/**
 * child-procs: starts and stops child-process peers for the tests that
 * need real processes (child-processes, failover). Each child runs
 * test/helpers/child-peer.ts (a real peercache peer configured through
 * PEERCACHE_SELF / PEERCACHE_PEERS, whose loader tags values `${TAG}:${key}`)
 * on a port chosen here, so that a killed child can be restarted on the very
 * same URL. Readiness is the child's `READY` line, awaited with a deadline;
 * children are stopped by their own PID only (SIGTERM, then SIGKILL).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import type { Server } from 'node:http'
import { fileURLToPath } from 'node:url'
import { serverUrl } from '../../src/index.js'
import { closeServer, listenLocal } from './cluster.js'

const SCRIPT = fileURLToPath(new URL('./child-peer.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const READY_DEADLINE_MS = 20_000
const EXIT_DEADLINE_MS = 5_000

/** ChildPeer is one running (or exited) child process peer. */
export interface ChildPeer {
  readonly tag: string
  readonly url: string
  readonly process: ChildProcessWithoutNullStreams
}

/**
 * reservePorts returns n distinct free URLs on 127.0.0.1: it holds n
 * listeners on port 0 at once, notes their ports and closes them. Racy in
 * theory (another process could take a port before the child binds it),
 * acceptable in tests: the children must know every URL before they start.
 */
export async function reservePorts(n: number): Promise<string[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => listenLocal()))
  const urls = servers.map((server) => serverUrl(server))
  await Promise.all(servers.map((server) => closeServer(server)))
  return urls
}

/**
 * startChild spawns a child peer at url and resolves once it printed READY;
 * `env` adds variables (e.g. PEERCACHE_RING); `script` runs another peer
 * program that follows the same contract (e.g. otel-peer.ts).
 */
export async function startChild(tag: string, url: string, peers: readonly string[], env: Record<string, string> = {}, script = SCRIPT): Promise<ChildPeer> {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT,
    env: { ...inheritedEnv(), PEERCACHE_SELF: url, PEERCACHE_PEERS: peers.join(','), TAG: tag, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const peer: ChildPeer = { tag, url, process: child }
  try {
    await waitForReady(peer)
  } catch (err) {
    await stopChild(peer, 'SIGKILL')
    throw err
  }
  return peer
}

/** inheritedEnv is this process's environment less any PEERCACHE_* variable. */
function inheritedEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('PEERCACHE_')))
}

/** waitForReady resolves when the child prints READY; rejects if it exits first or the deadline passes. */
function waitForReady(child: ChildPeer): Promise<void> {
  const proc = child.process
  return new Promise((resolve, reject) => {
    let stdout = ''
    let stderr = ''
    const fail = (why: string): void => {
      cleanup()
      reject(new Error(`${child.tag} (pid ${proc.pid}) ${why}\nstdout: ${stdout}\nstderr: ${stderr}`))
    }
    const onStdout = (chunk: Buffer): void => {
      stdout += chunk.toString('utf8')
      if (/^READY$/m.test(stdout)) {
        cleanup()
        resolve()
      }
    }
    const onStderr = (chunk: Buffer): void => {
      stderr += chunk.toString('utf8')
    }
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => fail(`exited (${code ?? signal}) before READY`)
    const onError = (err: Error): void => fail(`failed to start: ${err.message}`)
    const timer = setTimeout(() => fail(`not READY within ${READY_DEADLINE_MS} ms`), READY_DEADLINE_MS)
    function cleanup(): void {
      clearTimeout(timer)
      proc.stdout.off('data', onStdout)
      proc.stderr.off('data', onStderr)
      proc.off('exit', onExit)
      proc.off('error', onError)
      // Keep draining the pipes so a chatty child never blocks on a full buffer.
      proc.stdout.resume()
      proc.stderr.resume()
    }
    proc.stdout.on('data', onStdout)
    proc.stderr.on('data', onStderr)
    proc.once('exit', onExit)
    proc.once('error', onError)
  })
}

/**
 * command sends one command line to a child started with CLOCK_T0 (see
 * child-peer.ts) and resolves with the first stdout line that starts with
 * `reply`, within a deadline.
 */
export function command(child: ChildPeer, line: string, reply: string): Promise<string> {
  const answered = waitForLine(child, reply)
  child.process.stdin.write(`${line}\n`)
  return answered
}

/** waitForLine resolves with the first stdout line (from now) that starts with `prefix`, within a deadline. */
export function waitForLine(child: ChildPeer, prefix: string): Promise<string> {
  const proc = child.process
  return new Promise((resolve, reject) => {
    let buffered = ''
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString('utf8')
      const found = buffered.split('\n').find((l) => l.startsWith(prefix))
      if (found === undefined) return
      cleanup()
      resolve(found)
    }
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`${child.tag} printed no line starting ${JSON.stringify(prefix)} within ${READY_DEADLINE_MS} ms`))
    }, READY_DEADLINE_MS)
    function cleanup(): void {
      clearTimeout(timer)
      proc.stdout.off('data', onData)
    }
    proc.stdout.on('data', onData)
  })
}

/** stopCluster closes the in-test parent member (its Peercache, then its server) and stops every child. */
export async function stopCluster(parent: { close(): Promise<void> } | undefined, server: Server | undefined, children: readonly ChildPeer[]): Promise<void> {
  await parent?.close()
  if (server !== undefined) await closeServer(server)
  await Promise.all(children.map((child) => stopChild(child)))
}

/** hasExited tells whether the child process has exited. */
export function hasExited(child: ChildPeer): boolean {
  return child.process.exitCode !== null || child.process.signalCode !== null
}

/** exited resolves true once the child has exited (now or within ms), false when the deadline passes first. */
function exited(child: ChildPeer, ms: number): Promise<boolean> {
  const proc = child.process
  if (hasExited(child)) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      proc.off('exit', onExit)
      resolve(false)
    }, ms)
    const onExit = (): void => {
      clearTimeout(timer)
      resolve(true)
    }
    proc.once('exit', onExit)
  })
}

/**
 * stopChild signals the child by its own PID (SIGTERM by default, SIGKILL
 * for a hard kill) and resolves once it has exited; a child still alive
 * after the deadline gets SIGKILL. Idempotent.
 */
export async function stopChild(child: ChildPeer, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const pid = child.process.pid
  if (pid === undefined || hasExited(child)) return
  const done = exited(child, EXIT_DEADLINE_MS)
  signalPid(pid, signal)
  if (await done) return
  const killed = exited(child, EXIT_DEADLINE_MS)
  signalPid(pid, 'SIGKILL')
  await killed
}

/** signalPid signals one PID, ignoring a process that is already gone (ESRCH). */
function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err
  }
}
