/**
 * Lifecycle (issue 13): close() leaves no handle whatever it races, and a
 * write whose signal has already aborted changes nothing.
 *
 * The listen/close race runs in a child process: a server left open keeps a
 * process alive, so "the child exits by itself" is the assertion.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { AbortError, type WriteReport } from '../../src/index.js'
import { kvGroup, reference, startCluster, type Cluster } from '../helpers/cluster.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const SCRIPT = fileURLToPath(new URL('../helpers/close-while-listening.ts', import.meta.url))
/** How long the child may take to start (tsx compiles it) and end; past it, it is killed and the test fails. */
const EXIT_DEADLINE_MS = 30_000

/** runToExit runs the script and resolves with its exit code and stdout, or kills it (by its PID) at the deadline. */
function runToExit(script: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; killed: boolean }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  let killed = false
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
  const timer = setTimeout(() => {
    killed = true
    child.kill('SIGKILL')
  }, EXIT_DEADLINE_MS)
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, killed })
    })
  })
}

describe('close() while listen() is binding', () => {
  it('leaves no handle: listen rejects with ClosedError and the process exits by itself', async () => {
    const result = await runToExit(SCRIPT)
    expect(result.stderr).toBe('')
    expect(result.killed).toBe(false)
    expect(result.code).toBe(0)
    expect(result.stdout.trim()).toBe('ERR_PEERCACHE_CLOSED')
  }, EXIT_DEADLINE_MS + 10_000)
})

describe('set()/remove() with an already-aborted signal', () => {
  let cluster: Cluster | undefined
  afterEach(async () => {
    await cluster?.close()
    cluster = undefined
  })

  /** keyOwnedBy returns a key the ring gives to member `owner`. */
  const keyOwnedBy = (c: Cluster, owner: number, prefix: string): string => {
    for (let i = 0; ; i++) if (c.ownerOf(`${prefix}-${i}`) === owner) return `${prefix}-${i}`
  }

  it.each([
    ['this process owns the key', 0],
    ['a peer owns the key', 1],
  ])('%s: both reject with AbortError, and neither the owner nor any copy changes', async (_where, owner) => {
    const c = await startCluster(2, kvGroup({ hotCacheProbability: 1 }))
    cluster = c
    const key = keyOwnedBy(c, owner, 'aborted')
    // Warm the owner and, through hot-cache mirroring, the asker.
    expect(await c.group(0).getString(key)).toBe(reference(key))
    const requestsBefore = c.group(owner).stats().serverRequests
    const signal = AbortSignal.abort(new Error('caller gave up'))

    const setting = c.group(0).set(key, 'new value', { signal })
    await expect(setting).rejects.toBeInstanceOf(AbortError)
    await expect(c.group(0).remove(key, { signal })).rejects.toBeInstanceOf(AbortError)
    // Nothing reached the owner, and every cache still serves the old value without loading again.
    expect(c.group(owner).stats().serverRequests).toBe(requestsBefore)
    const held = c.group(owner).peek(key) as Uint8Array | undefined
    expect(held === undefined ? 'nothing' : Buffer.from(held).toString()).toBe(reference(key))
    expect(await c.group(0).getString(key)).toBe(reference(key))
    expect(await c.group(1).getString(key)).toBe(reference(key))
    expect(c.loadsOf(key)).toBe(1)
  })

  it('the same write with a live signal does change the value (the test can see a change)', async () => {
    const c = await startCluster(2, kvGroup())
    cluster = c
    const key = keyOwnedBy(c, 1, 'live')
    expect(await c.group(0).getString(key)).toBe(reference(key))
    const report: WriteReport = await c.group(0).set(key, 'new value', { signal: new AbortController().signal })
    expect(report.unreachable).toEqual([])
    expect(await c.group(1).getString(key)).toBe('new value')
  })
})
