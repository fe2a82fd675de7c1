/**
 * node:cluster with a taken peer port: a real primary (test/helpers/
 * cluster-app.ts, VIRTUAL_CLOCK=1) forks one worker whose peer port this
 * test holds open, so every worker dies of EADDRINUSE at startup.
 * forkPeerWorkers refills the slot with a capped exponential backoff (read
 * from its virtual clock's `WAIT <ms>` lines: nobody sleeps through it) and
 * logs each exit with the reason the worker sent (EADDRINUSE). Once the
 * port is free, the next worker starts.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { EventEmitter } from 'node:events'
import type { Server } from 'node:http'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { closeServer, listenLocal } from '../helpers/cluster.js'
import { reservePorts } from '../helpers/child-procs.js'

const SCRIPT = fileURLToPath(new URL('../helpers/cluster-app.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const DEADLINE_MS = 60_000
const EXITS = 4

/** Primary is the spawned primary and the lines it wrote so far. */
interface Primary {
  child: ChildProcessWithoutNullStreams
  lines: string[]
  /** linesMatching resolves once n lines match pattern (bounded by DEADLINE_MS). */
  linesMatching(pattern: RegExp, n: number): Promise<RegExpMatchArray[]>
}

let primary: Primary | undefined
let blocker: Server | undefined

afterEach(async () => {
  const child = primary?.child
  if (child !== undefined && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }
  if (blocker !== undefined) await closeServer(blocker)
  primary = blocker = undefined
})

function startPrimary(env: Record<string, string>): Primary {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  const lines: string[] = []
  const seen = new EventEmitter()
  let partial = ''
  child.stdout.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString('utf8')).split('\n')
    partial = parts.pop() ?? ''
    lines.push(...parts)
    seen.emit('line')
  })
  // The workers' own crash reports (stderr) are not read: the primary's log is what is tested.
  child.stderr.resume()
  const linesMatching = (pattern: RegExp, n: number): Promise<RegExpMatchArray[]> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const matches = lines.map((line) => line.match(pattern)).filter((m): m is RegExpMatchArray => m !== null)
        if (matches.length < n) return
        clearTimeout(timer)
        seen.off('line', check)
        resolve(matches.slice(0, n))
      }
      const timer = setTimeout(() => {
        seen.off('line', check)
        reject(new Error(`fewer than ${n} lines matching ${pattern} within ${DEADLINE_MS} ms:\n${lines.join('\n')}`))
      }, DEADLINE_MS)
      seen.on('line', check)
      check()
    })
  return { child, lines, linesMatching }
}

describe('forkPeerWorkers when a worker’s peer port is taken', () => {
  it('restarts it with a capped exponential backoff, logs each exit with EADDRINUSE, and fills the slot once the port is free', { timeout: 150_000 }, async () => {
    blocker = await listenLocal() // holds the peer port of slot 0 (a real listening socket)
    const basePort = (blocker.address() as { port: number }).port
    const appPort = Number(new URL((await reservePorts(1))[0]!).port)
    primary = startPrimary({ WORKERS: '1', BASE_PORT: String(basePort), APP_PORT: String(appPort), VIRTUAL_CLOCK: '1' })

    // minMs 1000, maxMs 4000: each early exit in a row doubles the delay, up to the cap.
    const waits = await primary.linesMatching(/^WAIT (\d+)$/, EXITS)
    expect(waits.map((m) => Number(m[1]))).toEqual([1000, 2000, 4000, 4000])
    const warnings = (await primary.linesMatching(/^WARN (.*)$/, EXITS)).map((m) => JSON.parse(m[1]!) as Record<string, unknown>)
    warnings.forEach((fields, i) => {
      expect(fields).toMatchObject({ slot: 0, code: 1, earlyExitsInARow: i + 1, delayMs: Number(waits[i]![1]) })
      expect(String(fields.reason)).toContain('EADDRINUSE')
    })
    expect(primary.lines.some((line) => line.startsWith('READY'))).toBe(false)

    // The port freed, the next replacement starts and serves.
    await closeServer(blocker)
    blocker = undefined
    const [ready] = await primary.linesMatching(/^READY 0 (\d+)$/, 1)
    expect(Number(ready![1])).toBeGreaterThan(0)
  })
})
