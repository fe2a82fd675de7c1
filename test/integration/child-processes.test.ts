/**
 * A cluster of real processes, as golang/groupcache's http_test.go runs it:
 * four child peers (test/helpers/child-peer.ts, configured through
 * PEERCACHE_SELF / PEERCACHE_PEERS) whose loaders tag values with their own
 * name, and this process as a fifth member that asks them. Each value must
 * carry the tag of the child the ring names as the key's owner.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import type { Server } from 'node:http'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { HashRing, Peercache, serverUrl } from '../../src/index.js'
import { closeServer, listenLocal } from '../helpers/cluster.js'

const CHILDREN = 4
const READY_DEADLINE_MS = 20_000
const EXIT_DEADLINE_MS = 5_000
const SCRIPT = fileURLToPath(new URL('../helpers/child-peer.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))

interface Child {
  process: ChildProcessWithoutNullStreams
  url: string
  tag: string
}

let children: Child[] = []
let parent: Peercache | undefined
let parentServer: Server | undefined
let parentUrl: string
let peers: string[]
let parentLoads: string[]

beforeEach(async () => {
  // The parent's own server comes first (its URL is in everyone's list, and
  // holding its port keeps the probes below off it).
  parentServer = await listenLocal()
  parentUrl = serverUrl(parentServer)
  // The children's ports: hold CHILDREN listeners on port 0 at once (so the
  // ports are distinct), note them, close them. Racy in theory, acceptable
  // here: the children must know every URL before they start.
  const probes = await Promise.all(Array.from({ length: CHILDREN }, () => listenLocal()))
  const ports = probes.map((probe) => Number(new URL(serverUrl(probe)).port))
  await Promise.all(probes.map((probe) => closeServer(probe)))
  const childUrls = ports.map((port) => `http://127.0.0.1:${port}`)
  peers = [...childUrls, parentUrl]

  children = childUrls.map((url, i) => {
    const tag = `child-${i}`
    const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT], {
      cwd: ROOT,
      env: { ...inheritedEnv(), PEERCACHE_SELF: url, PEERCACHE_PEERS: peers.join(','), TAG: tag },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    return { process: child, url, tag }
  })
  await Promise.all(children.map((child) => waitForReady(child)))

  parentLoads = []
  parent = new Peercache({ env: {}, self: parentUrl, peers, hotCacheProbability: 0 })
  parent.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => (parentLoads.push(key), `parent:${key}`) })
  parentServer.on('request', parent.handler())
})

afterEach(async () => {
  await parent?.close()
  parent = undefined
  if (parentServer !== undefined) await closeServer(parentServer)
  parentServer = undefined
  await Promise.all(children.map((child) => stopChild(child.process)))
  children = []
})

/** inheritedEnv is this process's environment less any PEERCACHE_* variable (the child gets only ours). */
function inheritedEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('PEERCACHE_')))
}

/** waitForReady resolves when the child prints READY; rejects if it exits first or the deadline passes. */
function waitForReady(child: Child): Promise<void> {
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

/** exited resolves true when proc has exited (now or within ms), false when the deadline passes first. */
function exited(proc: ChildProcessWithoutNullStreams, ms: number): Promise<boolean> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(true)
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

/** stopChild sends SIGTERM to the child's PID, then SIGKILL if it has not exited within the deadline. */
async function stopChild(proc: ChildProcessWithoutNullStreams, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const pid = proc.pid
  if (pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return
  const done = exited(proc, EXIT_DEADLINE_MS)
  process.kill(pid, signal)
  if (await done) return
  const killed = exited(proc, EXIT_DEADLINE_MS)
  process.kill(pid, 'SIGKILL')
  await killed
}

/** childKeys returns n keys the ring gives to a child (keys the parent owns are skipped). */
function childKeys(n: number): string[] {
  const ring = new HashRing(peers)
  const keys: string[] = []
  for (let i = 0; keys.length < n; i++) {
    const key = `key-${i}`
    if (ring.pick(key) !== parentUrl) keys.push(key)
  }
  return keys
}

describe('a cluster of child processes', () => {
  it('answers every key from the child the ring names', async () => {
    const group = parent!.getGroup('kv')!
    const ring = new HashRing(peers)
    const tagOf = new Map(children.map((child) => [child.url, child.tag]))
    const keys = childKeys(100)

    const values = await Promise.all(keys.map((key) => group.getString(key)))
    const askedOf = new Set<string>()
    keys.forEach((key, i) => {
      const owner = ring.pick(key)!
      askedOf.add(owner)
      expect(values[i]).toBe(`${tagOf.get(owner)}:${key}`)
    })
    // All four children answered some of the keys, and the parent loaded none.
    expect(askedOf).toEqual(new Set(children.map((child) => child.url)))
    expect(parentLoads).toEqual([])
    const stats = group.stats()
    expect(stats.peerLoads).toBe(keys.length)
    expect(stats.peerErrors).toBe(0)
    expect(stats.localLoads).toBe(0)
  })

  it('keeps answering when a child is killed: its keys fail over, the others are untouched', async () => {
    const group = parent!.getGroup('kv')!
    const ring = new HashRing(peers)
    const tagOf = new Map<string, string>([...children.map((child) => [child.url, child.tag] as [string, string]), [parentUrl, 'parent']])
    const victim = children[0]!
    const keys = childKeys(200)
    const victimKeys = keys.filter((key) => ring.pick(key) === victim.url)
    const otherKeys = keys.filter((key) => ring.pick(key) !== victim.url)
    expect(victimKeys.length).toBeGreaterThan(3)

    const downs: string[] = []
    parent!.events.on('peer-down', ({ peer }) => downs.push(peer))

    // Kill it hard (no graceful close) and wait until it is gone.
    await stopChild(victim.process, 'SIGKILL')
    expect(victim.process.signalCode).toBe('SIGKILL')

    // Asked one at a time: the first failureThreshold (3) gets fail, count a peer
    // error each, and load locally; then the child is marked down and its keys
    // go to the next live member on the ring.
    for (const [i, key] of victimKeys.entries()) {
      const value = await group.getString(key)
      const expected = i < 3 ? parentUrl : ring.pickWhere(key, (peer) => peer !== victim.url)!
      expect(value, key).toBe(`${tagOf.get(expected)}:${key}`)
    }
    expect(downs).toEqual([victim.url])
    expect(group.stats().peerErrors).toBe(3)

    // Keys of the live children still come from their owners.
    const values = await Promise.all(otherKeys.map((key) => group.getString(key)))
    otherKeys.forEach((key, i) => expect(values[i]).toBe(`${tagOf.get(ring.pick(key)!)}:${key}`))
    expect(group.stats().peerErrors).toBe(3)
  })
})
