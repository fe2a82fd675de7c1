/**
 * status: `cache.status()` (one process's view), the signed status path
 * peers answer (GET /_peercache/status), and `cache.statusHandler()`'s
 * gathering: bounded per peer (timeout, body size), down peers and Go
 * peers told apart, no key ever shown, everything escaped in the page.
 * Real servers on 127.0.0.1; the page in a browser: status-page.test.ts.
 */
import { createServer, type Server } from 'node:http'
import Fastify from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { InvalidArgumentError, Peercache, serverUrl, type ClusterStatus, type Group } from '../src/index.js'
import { peercachePlugin } from '../src/fastify.js'
import { HISTORY_MINUTES } from '../src/status/history.js'
import { closeServer, kvGroup, listenLocal, startCluster, type Cluster } from './helpers/cluster.js'
import { KEYS, START, startGoLikePeer, startStatusCluster, type StatusCluster } from './helpers/status-cluster.js'

const cleanup: Array<() => Promise<void>> = []
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!()
})

async function cluster3(options: Parameters<typeof startCluster>[2] = {}): Promise<Cluster> {
  const cluster = await startCluster(3, kvGroup(), options)
  cleanup.push(() => cluster.close())
  return cluster
}

async function served(server: Server): Promise<Server> {
  cleanup.push(() => closeServer(server))
  return server
}

/** get fetches url with the given Accept header and resolves to status, headers and body text. */
async function get(url: string, accept = 'application/json'): Promise<{ status: number; type: string; body: string }> {
  const response = await fetch(url, { headers: { accept }, signal: AbortSignal.timeout(10_000) })
  return { status: response.status, type: response.headers.get('content-type') ?? '', body: await response.text() }
}

async function clusterJson(url: string): Promise<ClusterStatus> {
  const answer = await get(url)
  expect(answer.status).toBe(200)
  expect(answer.type).toBe('application/json; charset=utf-8')
  return JSON.parse(answer.body) as ClusterStatus
}

async function statusServer(cache: Peercache, options: Parameters<Peercache['statusHandler']>[0] = {}): Promise<string> {
  const server = await served(await listenLocal())
  server.on('request', cache.statusHandler(options))
  return `${serverUrl(server)}/status`
}

describe('cache.status()', () => {
  it('reports a process without peers: no self, no ring, its groups', () => {
    const cache = new Peercache({ env: {} })
    cache.group({ name: 'solo', cacheBytes: 1 << 20, load: (key) => key })
    const status = cache.status()
    expect(status).toMatchObject({ version: 1, self: null, ring: { kind: null, samples: 0, arcs: [] }, peers: [] })
    expect(status.groups.map((g) => g.name)).toEqual(['solo'])
    expect(status.groups[0]).toMatchObject({ gets: 0, hitRatio: null, hotShare: null, main: { hitRatio: null } })
  })

  it('gives every peer its health and its share of the ring; the shares sum to 1 and the arcs cover the circle', async () => {
    const cluster = await cluster3()
    const status = cluster.caches[0]!.status()
    expect(status.self).toBe(cluster.urls[0])
    expect(status.ring.kind).toBe('balanced')
    expect(status.peers.map((p) => p.url)).toEqual([...cluster.urls].sort())
    expect(status.peers.find((p) => p.url === cluster.urls[0])!.health).toBe('self')
    expect(status.peers.filter((p) => p.health === 'up')).toHaveLength(2)
    const total = status.peers.reduce((sum, p) => sum + p.ringShare, 0)
    expect(total).toBeCloseTo(1, 9)
    // The balanced ring splits the keys evenly: a third each, give or take the sample's error.
    for (const peer of status.peers) expect(peer.ringShare).toBeGreaterThan(0.28)
    const arcs = status.ring.arcs
    expect(arcs[0]!.start).toBe(0)
    expect(arcs[arcs.length - 1]!.end).toBe(1)
    for (let i = 1; i < arcs.length; i++) expect(arcs[i]!.start).toBe(arcs[i - 1]!.end)
    expect(new Set(arcs.map((a) => a.peer))).toEqual(new Set(cluster.urls))
  })

  it('counts a group as its stats do: hit ratios, hot share of remote-owned gets, loads, peer fetches, sizes', async () => {
    const cluster = await cluster3({ options: { hotCacheProbability: 1 } })
    const group = cluster.group(0)
    const remote = KEYS.filter((key) => cluster.ownerOf(key) !== 0)
    expect(remote.length).toBeGreaterThan(0)
    for (let round = 0; round < 3; round++) for (const key of KEYS) await group.get(key)
    const stats = group.stats()
    const status = cluster.caches[0]!.status().groups[0]!
    expect(status).toMatchObject({
      name: 'kv',
      gets: 3 * KEYS.length,
      hitRatio: stats.cacheHits / stats.gets,
      loads: stats.loads,
      localLoads: stats.localLoads,
      peerFetches: remote.length,
      peerErrors: 0,
      bytes: stats.main.bytes + stats.hot.bytes,
      items: KEYS.length,
    })
    expect(status.main.hitRatio).toBe(stats.main.hits / stats.main.gets)
    // Every remote key was fetched once, then mirrored (probability 1) and answered by hot twice.
    expect(status.hotShare).toBeCloseTo((2 * remote.length) / (3 * remote.length), 9)
  })

  it('keeps a per-minute hit ratio history, bounded to the last minutes', async () => {
    let now = START + 30_000
    const cache = new Peercache({ env: {}, clock: () => now })
    const group: Group = cache.group({ name: 'g', cacheBytes: 1 << 20, load: (key) => key })
    cache.status()
    await group.get('a')
    await group.get('a')
    await group.get('b')
    await group.get('a')
    now += 60_000
    const history = cache.status().groups[0]!.history
    expect(history).toEqual([
      { start: START, minutes: 1, gets: 4, hits: 2, hitRatio: 0.5 },
      { start: START + 60_000, minutes: 1, gets: 0, hits: 0, hitRatio: null },
    ])
    now += 3 * 60_000
    // Minutes without a status call merge into one period; this call samples the new minute.
    cache.status()
    await group.get('b')
    expect(cache.status().groups[0]!.history.slice(1)).toEqual([
      { start: START + 60_000, minutes: 3, gets: 0, hits: 0, hitRatio: null },
      { start: START + 4 * 60_000, minutes: 1, gets: 1, hits: 1, hitRatio: 1 },
    ])
    for (let minute = 0; minute < 2 * HISTORY_MINUTES; minute++) {
      now += 60_000
      cache.status()
    }
    expect(cache.status().groups[0]!.history).toHaveLength(HISTORY_MINUTES)
  })
})

describe('the status path (GET /_peercache/status)', () => {
  it('answers the process status as JSON, to a signed request only when a secret is set', async () => {
    const cluster = await cluster3({ options: { secret: 's' } })
    const unsigned = await get(`${cluster.urls[1]}/_peercache/status`)
    expect(unsigned.status).toBe(401)
    const json = await clusterJson(await statusServer(cluster.caches[0]!))
    expect(json.members.map((m) => [m.url, m.state])).toEqual([...cluster.urls].sort().map((url) => [url, 'ok']))
    expect(json.members.find((m) => m.url === cluster.urls[1])!.status!.self).toBe(cluster.urls[1])
    const post = await fetch(`${cluster.urls[1]}/_peercache/status`, { method: 'POST' })
    expect(post.status).toBe(405)
  })

  it('is routed by the fastify plugin too', async () => {
    const cache = new Peercache({ env: {}, self: 'http://127.0.0.1:1', peers: ['http://127.0.0.1:1'] })
    const app = Fastify()
    await app.register(peercachePlugin, { cache })
    cleanup.push(() => app.close())
    const response = await app.inject({ method: 'GET', url: '/_peercache/status' })
    expect(response.statusCode).toBe(200)
    expect(response.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(response.json()).toMatchObject({ version: 1, self: 'http://127.0.0.1:1', peers: [{ url: 'http://127.0.0.1:1', health: 'self' }] })
  })
})

describe('cache.statusHandler()', () => {
  it('marks a stopped peer unreachable and a Go peer (bare 404) as having no status', async () => {
    const go = await served(await startGoLikePeer())
    const cluster = await cluster3({ options: (_i, urls) => ({ peers: [...urls, serverUrl(go)] }) })
    await cluster.stop(2)
    const json = await clusterJson(await statusServer(cluster.caches[0]!))
    const state = Object.fromEntries(json.members.map((m) => [m.url, m.state]))
    expect(state).toEqual({ [cluster.urls[0]!]: 'ok', [cluster.urls[1]!]: 'ok', [cluster.urls[2]!]: 'unreachable', [serverUrl(go)]: 'no-status' })
    const html = (await get(await statusServer(cluster.caches[0]!), 'text/html')).body
    expect(html).toContain('no status (Go peer?)')
    expect(html).toContain('down (unreachable)')
  })

  it('waits at most timeoutMs for a peer, and a silent peer is not marked down by it', async () => {
    const silent = await served(createServer(() => {}))
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const self = 'http://127.0.0.1:1'
    const cache = new Peercache({ env: {}, self, peers: [self, serverUrl(silent)] })
    cleanup.push(() => cache.close())
    const json = await clusterJson(await statusServer(cache, { timeoutMs: 200 }))
    const member = json.members.find((m) => m.url === serverUrl(silent))!
    expect(member).toMatchObject({ state: 'unreachable', error: 'no answer within 200 ms', status: null })
    expect(cache.status().peers.find((p) => p.url === serverUrl(silent))!.health).toBe('up')
  })

  it('refuses a status answer over maxBodyBytes, and one that is not a status', async () => {
    const big = await served(createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ pad: 'x'.repeat(5000) }))))
    await new Promise<void>((resolve) => big.listen(0, '127.0.0.1', resolve))
    const self = 'http://127.0.0.1:1'
    const cache = new Peercache({ env: {}, self, peers: [self, serverUrl(big)] })
    cleanup.push(() => cache.close())
    const small = await clusterJson(await statusServer(cache, { maxBodyBytes: 1000 }))
    expect(small.members.find((m) => m.url === serverUrl(big))!.error).toMatch(/exceeds 1000/)
    const wrong = await clusterJson(await statusServer(cache))
    expect(wrong.members.find((m) => m.url === serverUrl(big))).toMatchObject({ state: 'error', error: expect.stringMatching(/status\.version must be 1/) })
  })

  it('refuses bad options with InvalidArgumentError', () => {
    const cache = new Peercache({ env: {} })
    expect(() => cache.statusHandler({ timeoutMs: 0 })).toThrow(InvalidArgumentError)
    expect(() => cache.statusHandler({ concurrency: 1.5 })).toThrow(InvalidArgumentError)
    expect(() => cache.statusHandler({ timeout: 5 } as never)).toThrow(/timeout/)
  })

  it('answers 405 to a method other than GET and HEAD', async () => {
    const url = await statusServer(new Peercache({ env: {} }))
    const response = await fetch(url, { method: 'DELETE' })
    expect(response.status).toBe(405)
    expect(response.headers.get('allow')).toBe('GET, HEAD')
  })

  it('escapes every text in the page: a group name is data, never markup', async () => {
    const name = `<img src=x onerror="alert(1)">&'`
    const cache = new Peercache({ env: {} })
    cache.group({ name, cacheBytes: 1024, load: (key) => key })
    const self = await get(await statusServer(cache), 'text/html')
    expect(self.type).toBe('text/html; charset=utf-8')
    expect(self.body).not.toContain('<img')
    expect(self.body).toContain('&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;&#39;')
  })
})

describe('no key is shown', () => {
  let running: StatusCluster | undefined
  afterEach(async () => {
    await running?.close()
    running = undefined
  })

  it('in the JSON nor in the page of a cluster that served known keys', async () => {
    running = await startStatusCluster()
    const json = await get(running.statusUrl)
    const html = await get(running.statusUrl, 'text/html,application/xhtml+xml')
    expect(html.type).toBe('text/html; charset=utf-8')
    // The traffic happened: the groups counted it (so the keys went through every member).
    const parsed = JSON.parse(json.body) as ClusterStatus
    expect(parsed.members.filter((m) => m.state === 'ok').every((m) => m.status!.groups[0]!.gets > 0)).toBe(true)
    for (const key of KEYS) {
      expect(json.body).not.toContain(key)
      expect(html.body).not.toContain(key)
      expect(json.body).not.toContain(encodeURIComponent(key))
      expect(html.body).not.toContain(encodeURIComponent(key))
    }
  })
})
