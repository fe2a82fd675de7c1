/**
 * handshake: a peer configured differently is named, with the fix, once.
 * Real instances on 127.0.0.1 (startCluster) and, for the secret, real
 * child processes whose stderr is the default logger's: a get of a key the
 * other member owns is its first answer, which starts the handshake
 * (GET /_peercache/hello, peers/handshake.ts).
 */
import { createServer } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import Fastify from 'fastify'
import { PeerAuth } from '../../src/auth.js'
import { peercachePlugin } from '../../src/fastify.js'
import { Peercache, serverUrl, type Logger } from '../../src/index.js'
import { peersHash } from '../../src/proto/hello.js'
import { closeServer, kvGroup, listenLocal, startCluster, type Cluster, type MemberOptions } from '../helpers/cluster.js'
import { command, reservePorts, startChild, stopChild, type ChildPeer } from '../helpers/child-procs.js'

/** Recorded is every line a test logger heard: level, message, fields. */
interface Recorded {
  level: keyof Logger
  message: string
  fields: Record<string, unknown>
}

function recorder(): { logger: Logger; lines: Recorded[] } {
  const lines: Recorded[] = []
  const at = (level: keyof Logger) => (fields: Record<string, unknown>, message = '') => void lines.push({ level, message, fields })
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } }
}

/** waitFor polls until check holds (every 25 ms, at most 5 s). */
async function waitFor(check: () => boolean, what: string): Promise<void> {
  for (let waited = 0; waited < 5000; waited += 25) {
    if (check()) return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`timed out waiting for ${what}`)
}

const mismatches = (lines: Recorded[]): string[] => lines.filter((l) => l.level === 'warn' && l.fields.mismatch !== undefined).map((l) => l.message)
const handshakes = (lines: Recorded[]): Recorded[] => lines.filter((l) => l.message === 'handshake done')

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

/**
 * handshakeFrom starts two members (`options(i, urls)` each), has member 0
 * get a key member 1 owns, and resolves with member 0's log once its
 * handshake with member 1 is done (and, for a differing peer list, reported).
 */
async function handshakeFrom(options: (i: number, urls: readonly string[]) => MemberOptions, until = (lines: Recorded[]) => handshakes(lines).length > 0): Promise<Recorded[]> {
  const logs = [recorder(), recorder()]
  cluster = await startCluster(2, kvGroup(), { options: (i, urls) => ({ logger: logs[i]!.logger, ...options(i, urls) }) })
  const c = cluster
  const key = Array.from({ length: 200 }, (_, i) => `key-${i}`).find((k) => c.caches[0]!.ownerOf(k) === c.urls[1])!
  await c.group(0).get(key)
  await waitFor(() => until(logs[0]!.lines), 'the handshake')
  return logs[0]!.lines
}

describe('the handshake', () => {
  it('says nothing when both members are configured alike', async () => {
    const lines = await handshakeFrom(() => ({ secret: 'one-shared-secret-long-enough' }))
    expect(handshakes(lines)[0]!.fields.mismatches).toEqual([])
    expect(lines.filter((l) => l.level === 'warn')).toEqual([])
  })

  it('names a peer on another ring kind, and what to set', async () => {
    const lines = await handshakeFrom((i) => (i === 1 ? { ring: 'groupcache' } : {}))
    expect(mismatches(lines)).toEqual([`peer ${cluster!.urls[1]} uses ring groupcache, this process balanced: set PEERCACHE_RING (the ring option) the same everywhere`])
  })

  it('names a peer with another peer list once it lasted the grace period', async () => {
    const lines = await handshakeFrom(
      (i, urls) => ({ peers: i === 1 ? [...urls, 'http://127.0.0.1:9'] : urls }),
      (l) => mismatches(l).length > 0,
    )
    const [warning, ...more] = mismatches(lines)
    expect(more).toEqual([])
    expect(warning).toMatch(new RegExp(`^peer ${cluster!.urls[1]} has another peer list: [0-9a-f]{12} vs [0-9a-f]{12} here \\(3 peers vs 2\\): check PEERCACHE_PEERS / discovery`))
    // Reported after the grace period: the first handshake saw it and waited.
    expect(handshakes(lines).length).toBe(2)
  })

  it('names a peer serving another base path (whose gets answer a bare 404)', async () => {
    const lines = await handshakeFrom((i) => (i === 1 ? { basePath: '/_other/' } : {}))
    expect(mismatches(lines)).toEqual([`peer ${cluster!.urls[1]} serves base path /_other/, this process /_groupcache/: set basePath the same everywhere`])
  })

  it('names another secret from the 401 to its hello, once however many requests fail and probes hand-shake again', async () => {
    const lines = await handshakeFrom((i) => ({ secret: `secret-number-${i}-long-enough`, health: { probeMinMs: 20, probeMaxMs: 40 } }))
    const c = cluster!
    for (let i = 0; i < 20; i++) await c.group(0).get(`more-${i}`)
    // The 401s mark the peer down; each probe it answers (401 again) starts another handshake.
    await waitFor(() => handshakes(lines).length >= 3, 'three handshakes')
    expect(mismatches(lines)).toEqual([`peer ${c.urls[1]} signs with a different secret: PEERCACHE_SECRET differs (set the same secret everywhere)`])
  })

  it('leaves a Go peer alone: its bare 404 to the hello is no mismatch', async () => {
    const go = createServer((_req, res) => {
      res.statusCode = 404
      res.end('404 page not found\n')
    })
    const own = await listenLocal()
    await new Promise<void>((resolve) => go.listen(0, '127.0.0.1', resolve))
    const { logger, lines } = recorder()
    const cache = new Peercache({ env: {}, self: serverUrl(own), peers: [serverUrl(own), serverUrl(go)], logger })
    try {
      cache.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => key })
      const key = Array.from({ length: 200 }, (_, i) => `key-${i}`).find((k) => cache.ownerOf(k) === serverUrl(go))!
      await cache.getGroup('kv')!.get(key)
      await waitFor(() => handshakes(lines).length > 0, 'the handshake')
      expect(handshakes(lines)[0]!.fields).toMatchObject({ peer: serverUrl(go), status: 404 })
      expect(mismatches(lines)).toEqual([])
    } finally {
      await cache.close()
      await Promise.all([closeServer(go), closeServer(own)])
    }
  })
})

describe('when the handshake runs, and who answers it', () => {
  it('runs after a probe: a peer down at first, back with another ring, is named once it answers a probe', async () => {
    const [own, later] = [await listenLocal(), await listenLocal()]
    const laterUrl = serverUrl(later)
    await closeServer(later) // its port now refuses connections: the peer is down
    const { logger, lines } = recorder()
    const urls = [serverUrl(own), laterUrl]
    const cache = new Peercache({ env: {}, self: urls[0]!, peers: urls, logger, health: { probeMinMs: 20, probeMaxMs: 40 } })
    own.on('request', cache.handler())
    const other = new Peercache({ env: {}, self: laterUrl, peers: urls, ring: 'groupcache', logger: false })
    let server: import('node:http').Server | undefined
    try {
      cache.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => key })
      const keys = Array.from({ length: 400 }, (_, i) => `key-${i}`).filter((k) => cache.ownerOf(k) === laterUrl).slice(0, 3)
      for (const key of keys) await cache.getGroup('kv')!.get(key)
      await waitFor(() => lines.some((l) => l.message === 'peer marked down'), 'the peer marked down')
      expect(handshakes(lines)).toEqual([])
      server = await other.listen(Number(new URL(laterUrl).port), '127.0.0.1')
      await waitFor(() => mismatches(lines).length > 0, 'the warning')
      expect(mismatches(lines)).toEqual([`peer ${laterUrl} uses ring groupcache, this process balanced: set PEERCACHE_RING (the ring option) the same everywhere`])
    } finally {
      await Promise.all([cache.close(), other.close()])
      await closeServer(own)
    }
  })

  it('is answered by the fastify plugin too, signed like every request', async () => {
    const cache = new Peercache({ env: {}, self: 'http://127.0.0.1:1', peers: ['http://127.0.0.1:1'], ring: 'groupcache', secret: 'a-secret-long-enough-to-sign' })
    const app = Fastify()
    await app.register(peercachePlugin, { cache })
    try {
      expect((await app.inject({ method: 'GET', url: '/_peercache/hello' })).statusCode).toBe(401)
      const auth = new PeerAuth({ secrets: ['a-secret-long-enough-to-sign'] })
      const answer = await app.inject({ method: 'GET', url: '/_peercache/hello', headers: { authorization: auth.sign('GET', '/_peercache/hello', undefined) } })
      expect(answer.statusCode).toBe(200)
      expect(answer.json()).toEqual({ ring: 'groupcache', peersHash: peersHash(['http://127.0.0.1:1']), peerCount: 1, basePath: '/_groupcache/', signed: true, version: 1 })
    } finally {
      await app.close()
    }
  })
})

describe('the handshake between real processes, secret set on one only', () => {
  const children: ChildPeer[] = []
  afterEach(async () => {
    await Promise.all(children.splice(0).map((child) => stopChild(child)))
  })

  it('each side writes to stderr, once, that PEERCACHE_SECRET differs', async () => {
    const urls = await reservePorts(2)
    const signed = await startChild('signed', urls[0]!, urls, { PEERCACHE_SECRET: 'only-this-one-has-a-secret' })
    children.push(signed)
    const plain = await startChild('plain', urls[1]!, urls)
    children.push(plain)
    const stderr = new Map<ChildPeer, string>(children.map((child) => [child, '']))
    for (const child of children) child.process.stderr.on('data', (chunk: Buffer) => stderr.set(child, stderr.get(child)! + chunk.toString('utf8')))
    await command(plain, 'remote 10', 'REMOTE')
    await command(signed, 'remote 10', 'REMOTE')
    const warnings = (child: ChildPeer): string[] => stderr.get(child)!.split('\n').filter((line) => line.includes('PEERCACHE_SECRET differs'))
    await waitFor(() => warnings(plain).length > 0 && warnings(signed).length > 0, 'both warnings')
    expect(warnings(plain)).toEqual([
      `peercache warn: peer ${urls[0]} requires signed requests and this process has no secret: PEERCACHE_SECRET differs (set the same secret everywhere) peer=${urls[0]} mismatch=secret`,
    ])
    expect(warnings(signed)).toEqual([
      `peercache warn: peer ${urls[1]} has no secret and takes unsigned requests, this process signs: PEERCACHE_SECRET differs (set the same secret everywhere) peer=${urls[1]} mismatch=secret`,
    ])
  }, 40_000)
})
