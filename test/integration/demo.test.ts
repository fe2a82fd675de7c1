/**
 * The demo (`npm run demo`) run for real with short settings: real app
 * processes, a real SIGKILL and restart, real load. Checks its exit code, its
 * summary, and that no process it spawned survives it, also when it is
 * interrupted with Ctrl-C (SIGINT) in the middle of a restart.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const SHORT = ['--procs', '3', '--duration', '4', '--concurrency', '16', '--keys', '2000']

/** DemoRun is a running demo: its output so far and its exit. */
interface DemoRun {
  output: () => string
  waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<void>
  signal: (name: NodeJS.Signals) => void
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** The summary's machine-readable line (see demo/report.ts). */
interface SummaryRecord {
  ok: boolean
  reasons: string[]
  requests: number
  errors: number
  originQueries: number
  distinctKeys: number
  allowance: number
  killed: { app: number; url: string; ownedKeys: number } | null
  pids: number[]
  leftRunning: number[]
}

const spawned = new Set<number>()

/** startDemo runs demo/cluster.ts the way `npm run demo` does (tsx), without npm in between. */
function startDemo(args: string[]): DemoRun {
  const child = spawn(process.execPath, ['--import', 'tsx', 'demo/cluster.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let text = ''
  const waiters = new Set<() => void>()
  const onData = (chunk: Buffer): void => {
    text += chunk.toString('utf8')
    for (const pid of pidsIn(text)) spawned.add(pid)
    for (const wake of waiters) wake()
  }
  child.stdout.on('data', onData)
  child.stderr.on('data', onData)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }))
  })
  return {
    output: () => text,
    signal: (name) => child.kill(name),
    exited,
    waitFor: (pattern, timeoutMs = 30_000) =>
      new Promise<void>((resolve, reject) => {
        const done = (): void => {
          clearTimeout(timer)
          waiters.delete(check)
        }
        const check = (): void => {
          if (pattern.test(text)) {
            done()
            resolve()
          }
        }
        const timer = setTimeout(() => {
          done()
          reject(new Error(`no ${String(pattern)} within ${timeoutMs} ms; output:\n${text}`))
        }, timeoutMs)
        waiters.add(check)
        void exited.then(() => {
          check()
          if (waiters.has(check)) {
            done()
            reject(new Error(`demo exited before ${String(pattern)}; output:\n${text}`))
          }
        })
        check()
      }),
  }
}

/** pidsIn lists every app pid the demo announced ("started app 1 (pid 123)", "is back (pid 456)"). */
function pidsIn(text: string): number[] {
  return [...text.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1]))
}

function summaryOf(text: string): SummaryRecord {
  const line = text.split('\n').find((l) => l.startsWith('SUMMARY '))
  if (line === undefined) throw new Error(`no SUMMARY line in the output:\n${text}`)
  return JSON.parse(line.slice('SUMMARY '.length)) as SummaryRecord
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH'
  }
}

/** eventually retries check until it passes or timeoutMs runs out (for processes exiting on their own). */
async function eventually(check: () => void, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      check()
      return
    } catch (err) {
      if (Date.now() > deadline) throw err
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
}

afterEach(() => {
  // A failed test must not leak processes into the next one.
  for (const pid of spawned) if (isAlive(pid)) process.kill(pid, 'SIGKILL')
  spawned.clear()
})

describe('npm run demo', () => {
  it('serves every request through a SIGKILL and a restart, with one origin query per key plus the failover reloads', async () => {
    const demo = startDemo(SHORT)
    const { code } = await demo.exited
    const text = demo.output()
    expect(code, text).toBe(0)
    expect(text).toMatch(/^\s+errors\s+0\b/m)
    expect(text).toMatch(/SIGKILL app 2 \(pid \d+\)/)
    expect(text).toMatch(/app 2 is back \(pid \d+\)/)
    const summary = summaryOf(text)
    expect(summary.ok, summary.reasons.join('; ')).toBe(true)
    expect(summary.errors).toBe(0)
    expect(summary.requests).toBeGreaterThan(0)
    expect(summary.killed?.app).toBe(2)
    const owned = summary.killed?.ownedKeys ?? 0
    expect(owned).toBeGreaterThan(0)
    expect(summary.allowance).toBe(3 * owned)
    expect(summary.originQueries).toBeGreaterThanOrEqual(summary.distinctKeys)
    expect(summary.originQueries).toBeLessThanOrEqual(summary.distinctKeys + summary.allowance)
    // Three apps plus the restarted one, all stopped.
    expect(summary.pids).toHaveLength(4)
    expect(new Set(pidsIn(text))).toEqual(new Set(summary.pids))
    expect(summary.leftRunning).toEqual([])
    expect(summary.pids.filter(isAlive)).toEqual([])
  }, 90_000)

  it('with --no-kill queries the origin exactly once per distinct key', async () => {
    const demo = startDemo([...SHORT, '--no-kill'])
    const { code } = await demo.exited
    const text = demo.output()
    expect(code, text).toBe(0)
    expect(text).not.toMatch(/SIGKILL/)
    const summary = summaryOf(text)
    expect(summary.errors).toBe(0)
    expect(summary.killed).toBeNull()
    expect(summary.allowance).toBe(0)
    expect(summary.originQueries).toBe(summary.distinctKeys)
    expect(summary.pids).toHaveLength(3)
    expect(summary.pids.filter(isAlive)).toEqual([])
  }, 90_000)

  it('--rolling restarts every app one at a time under load: no failed request, no origin storm', async () => {
    const demo = startDemo(['--procs', '3', '--duration', '20', '--concurrency', '16', '--keys', '2000', '--rolling'])
    const { code } = await demo.exited
    const text = demo.output()
    expect(code, text).toBe(0)
    for (const app of [1, 2, 3]) expect(text).toMatch(new RegExp(`app ${app} is back \\(pid \\d+\\) and rejoins the registry`))
    const summary = summaryOf(text) as SummaryRecord & { rolling: boolean }
    expect(summary.ok, summary.reasons.join('; ')).toBe(true)
    expect(summary.rolling).toBe(true)
    expect(summary.errors).toBe(0)
    // Each restart may cost at most the keys of the app that was down at that moment: together, the distinct keys.
    expect(summary.allowance).toBe(summary.distinctKeys)
    expect(summary.originQueries).toBeLessThanOrEqual(summary.distinctKeys + summary.allowance)
    expect(summary.pids).toHaveLength(6)
    expect(summary.pids.filter(isAlive)).toEqual([])
  }, 180_000)

  it('stops every app and exits 130 on Ctrl-C, even in the middle of a restart', async () => {
    const demo = startDemo(SHORT)
    await demo.waitFor(/restarting app 2/)
    demo.signal('SIGINT')
    const { code } = await demo.exited
    const text = demo.output()
    expect(code, text).toBe(130)
    expect(text).toMatch(/interrupted: stopping every app/)
    expect(text).not.toMatch(/^SUMMARY /m)
    // The three apps and the restarted one, announced as it was spawned.
    const pids = [...new Set(pidsIn(text))]
    expect(pids).toHaveLength(4)
    expect(pids.filter(isAlive)).toEqual([])
  }, 90_000)

  it('fails with the reason, and stops the other apps, when an app crashes', async () => {
    const demo = startDemo([...SHORT, '--no-kill'])
    await demo.waitFor(/^\s+1\.\d s {2}proc/m) // the first live table: the load runs
    const app1 = Number(/starting app 1 \(pid (\d+)\)/.exec(demo.output())?.[1])
    process.kill(app1, 'SIGKILL')
    const { code } = await demo.exited
    const text = demo.output()
    expect(code, text).toBe(1)
    expect(text).toMatch(new RegExp(`FAIL: app 1 \\(pid ${app1}\\) exited unexpectedly with SIGKILL`))
    expect(summaryOf(text).errors).toBe(0) // requests it dropped were served by the others
    expect(pidsIn(text).filter(isAlive)).toEqual([])
  }, 90_000)

  it('leaves no orphan even when the demo itself is SIGKILLed (apps exit when their stdin pipe closes)', async () => {
    const demo = startDemo([...SHORT, '--no-kill'])
    await demo.waitFor(/apps healthy/)
    demo.signal('SIGKILL')
    await demo.exited
    const pids = pidsIn(demo.output())
    expect(pids).toHaveLength(3)
    await eventually(() => expect(pids.filter(isAlive)).toEqual([]), 10_000)
  }, 90_000)

  it('lists its flags with --help and rejects an unknown one with exit code 2', async () => {
    const help = startDemo(['--help'])
    expect((await help.exited).code).toBe(0)
    for (const flag of ['--procs', '--duration', '--keys', '--concurrency', '--origin-latency', '--no-kill', '--rolling', '--help']) {
      expect(help.output()).toContain(flag)
    }
    const bad = startDemo(['--bogus'])
    expect((await bad.exited).code).toBe(2)
    const badValue = startDemo(['--duration', 'soon'])
    expect((await badValue.exited).code).toBe(2)
    expect(badValue.output()).toMatch(/--duration must be a number/)
  }, 30_000)
})
