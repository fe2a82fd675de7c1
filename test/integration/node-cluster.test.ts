/**
 * node:cluster: a real primary (test/helpers/cluster-app.ts) forks two
 * workers with forkPeerWorkers; each takes its peer port from its slot
 * (clusterPeers). Gets through the shared app port land on both workers,
 * yet each key is loaded once; a SIGKILLed worker is replaced in its slot,
 * on its port, and owns its keys again.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HashRing, clusterPeers } from '../../src/index.js'
import { freeSharedPort } from '../helpers/dns-cluster.js'
import { reservePorts } from '../helpers/child-procs.js'

const SCRIPT = fileURLToPath(new URL('../helpers/cluster-app.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const DEADLINE_MS = 60_000

let primary: ChildProcessWithoutNullStreams
const lines: string[] = []
const seen = new EventEmitter()
let appPort: number
let basePort: number

/** lineMatching resolves with the first line (from index `from`) that matches. */
function lineMatching(pattern: RegExp, from = 0): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      for (let i = from; i < lines.length; i++) {
        const match = lines[i]!.match(pattern)
        if (match !== null) {
          clearTimeout(timer)
          seen.off('line', check)
          resolve(match)
          return true
        }
      }
      return false
    }
    const timer = setTimeout(() => {
      seen.off('line', check)
      reject(new Error(`no line matching ${pattern} within ${DEADLINE_MS} ms:\n${lines.join('\n')}`))
    }, DEADLINE_MS)
    if (!check()) seen.on('line', check)
  })
}

/** consecutivePorts finds two free ports in a row for the workers' peer endpoints. */
async function consecutivePorts(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await freeSharedPort(['127.0.0.1'])
    if (port < 65535 && (await portFree(port + 1))) return port
  }
  throw new Error('no two consecutive free ports')
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

beforeAll(async () => {
  basePort = await consecutivePorts()
  appPort = Number(new URL((await reservePorts(1))[0]!).port)
  primary = spawn(process.execPath, ['--import', 'tsx', SCRIPT], {
    cwd: ROOT,
    env: { ...process.env, WORKERS: '2', BASE_PORT: String(basePort), APP_PORT: String(appPort) },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let pending = ''
  primary.stdout.on('data', (chunk: Buffer) => {
    pending += chunk.toString('utf8')
    const parts = pending.split('\n')
    pending = parts.pop() ?? ''
    lines.push(...parts)
    seen.emit('line')
  })
  primary.stderr.on('data', (chunk: Buffer) => lines.push(`stderr: ${chunk.toString('utf8')}`))
  await Promise.all([lineMatching(/^READY 0 /), lineMatching(/^READY 1 /)])
})

afterAll(async () => {
  if (primary.exitCode === null && primary.signalCode === null) {
    const exited = new Promise((resolve) => primary.once('exit', resolve))
    primary.kill('SIGTERM')
    const timer = setTimeout(() => primary.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }
})

async function get(key: string): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${appPort}/kv/${encodeURIComponent(key)}`)
  const text = await response.text()
  if (response.status !== 200) throw new Error(`GET ${key}: ${response.status} ${text}`)
  return text
}

/** loadsOf lists the LOAD lines of key (one per origin load, from whichever worker). */
function loadsOf(key: string): string[] {
  return lines.filter((line) => line.startsWith('LOAD ') && line.endsWith(` ${key}`))
}

describe('node:cluster workers with clusterPeers / forkPeerWorkers', () => {
  it('loads each key once across workers; a killed worker is replaced in its slot', { timeout: 180_000 }, async () => {
    const config = clusterPeers({ basePort, workers: 2, env: { PEERCACHE_WORKER_INDEX: '0' } })
    const ring = new HashRing(config.peers)
    const slotOf = (key: string): number => config.peers.indexOf(ring.pick(key)!)
    const pids = await Promise.all([lineMatching(/^READY 0 (\d+)/), lineMatching(/^READY 1 (\d+)/)]).then((m) => m.map((x) => x[1]!))

    // Every key asked 4 times through the shared port: both workers answer, each key is loaded once, by its owner.
    const keys = Array.from({ length: 40 }, (_, i) => `a-${i}`)
    for (let round = 0; round < 4; round++) await Promise.all(keys.map((key) => get(key)))
    for (const key of keys) {
      expect(await get(key)).toBe(`w${slotOf(key)}-${pids[slotOf(key)]}:${key}`)
      expect(loadsOf(key)).toEqual([`LOAD ${slotOf(key)} ${key}`])
    }

    // SIGKILL worker 1: the primary forks a replacement in slot 1, on the same peer port.
    const mark = lines.length
    process.kill(Number(pids[1]), 'SIGKILL')
    const [, pid] = await lineMatching(/^READY 1 (\d+)/, mark)
    expect(pid).not.toBe(pids[1])
    const fresh = Array.from({ length: 40 }, (_, i) => `b-${i}`)
    for (let round = 0; round < 3; round++) await Promise.all(fresh.map((key) => get(key)))
    for (const key of fresh) {
      const slot = slotOf(key)
      expect(await get(key)).toBe(`w${slot}-${slot === 1 ? pid : pids[0]}:${key}`)
      expect(loadsOf(key)).toEqual([`LOAD ${slot} ${key}`])
    }
  })
})
