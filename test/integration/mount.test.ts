/**
 * The handler mounted in someone else's server: as express middleware
 * (peer requests answered, everything else passed on with next()), under an
 * express path prefix (a peer URL with a path), and as a plain node:http
 * listener called without next (404 for a foreign path).
 */
import { createServer, type RequestListener, type Server } from 'node:http'
import express from 'express'
import { Client } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { Opened } from '../helpers/opened.js'
import { HashRing, Peercache, serverUrl } from '../../src/index.js'
import { decodeGetResponse } from '../../src/proto/codec.js'
import { listenLocal, reference } from '../helpers/cluster.js'

const opened = new Opened()

afterEach(() => opened.closeAll())

/** track makes a server, Peercache or client closed in afterEach. */
function track<T extends Server | Peercache | Client>(thing: T): T {
  return opened.track(thing)
}

/** listenWith serves a request listener on 127.0.0.1, port 0. */
async function listenWith(listener: RequestListener): Promise<Server> {
  const server = track(createServer(listener))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  return server
}

interface RawResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

/** get sends GET path verbatim to origin and reads the whole body. */
async function get(origin: string, path: string): Promise<RawResponse> {
  const client = track(new Client(origin))
  const response = await client.request({ method: 'GET', path })
  return { status: response.statusCode, headers: response.headers, body: Buffer.from(await response.body.arrayBuffer()) }
}

/** kv creates group kv on cache; its loader records keys in `seen` and answers reference(key). */
function kv(cache: Peercache, seen: string[]): void {
  cache.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => (seen.push(key), reference(key)) })
}

/** keyOwnedBy returns a key the ring over peers gives to owner. */
function keyOwnedBy(peers: readonly string[], owner: string, prefix: string): string {
  const ring = new HashRing(peers)
  for (let i = 0; ; i++) {
    const key = `${prefix}/${i}`
    if (ring.pick(key) === owner) return key
  }
}

describe('mounted in express', () => {
  it('answers peer requests and passes every other route to express', async () => {
    const seen: string[] = []
    const cache = track(new Peercache({ env: {} }))
    kv(cache, seen)
    const app = express()
    app.use(cache.handler())
    app.get('/hello', (_req, res) => {
      res.type('text/plain').send('world')
    })
    const origin = serverUrl(await listenWith(app))

    const value = await get(origin, '/_groupcache/kv/some%2Fkey')
    expect(value.status).toBe(200)
    expect(value.headers['content-type']).toBe('application/x-protobuf')
    expect(Buffer.from(decodeGetResponse(value.body).value).toString('utf8')).toBe('v(some/key)')
    expect(seen).toEqual(['some/key'])

    // next() reached express: its route answers, and its own 404 handles unknown paths.
    const hello = await get(origin, '/hello')
    expect(hello.status).toBe(200)
    expect(hello.body.toString('utf8')).toBe('world')
    const unknown = await get(origin, '/nope')
    expect(unknown.status).toBe(404)
    expect(unknown.body.toString('utf8')).toContain('Cannot GET /nope')
    expect(String(unknown.headers['content-type'])).toMatch(/^text\/html/)

    // Under basePath the handler answers itself, even for errors: express never sees them.
    const noGroup = await get(origin, '/_groupcache/nosuch/k')
    expect(noGroup.status).toBe(404)
    expect(noGroup.body.toString('utf8')).toBe('no such group: nosuch\n')
    expect(noGroup.headers['x-peercache-error']).toBe('no-such-group')
    expect(seen).toEqual(['some/key'])
  })

  it('serves a real peer: a key owned by the express-mounted member is fetched from it', async () => {
    // Member A is mounted in express; member B is a plain node:http server.
    const aServer = track(await listenLocal())
    const bServer = track(await listenLocal())
    const a = serverUrl(aServer)
    const b = serverUrl(bServer)
    const peers = [a, b]
    const seenA: string[] = []
    const seenB: string[] = []
    const cacheA = track(new Peercache({ env: {}, self: a, peers, hotCacheProbability: 0 }))
    const cacheB = track(new Peercache({ env: {}, self: b, peers, hotCacheProbability: 0 }))
    kv(cacheA, seenA)
    kv(cacheB, seenB)
    const app = express()
    app.use(cacheA.handler())
    app.get('/hello', (_req, res) => {
      res.send('world')
    })
    aServer.on('request', app)
    bServer.on('request', cacheB.handler())

    const key = keyOwnedBy(peers, a, 'spaced key/ü')
    const group = cacheB.getGroup('kv')!
    expect(await group.getString(key)).toBe(reference(key))
    expect(seenA).toEqual([key])
    expect(seenB).toEqual([])
    expect(group.stats().peerLoads).toBe(1)
    expect(group.stats().peerErrors).toBe(0)
    expect(cacheA.getGroup('kv')!.stats().serverRequests).toBe(1)

    // The other direction: A (behind express) asks B.
    const keyOfB = keyOwnedBy(peers, b, 'other')
    expect(await cacheA.getGroup('kv')!.getString(keyOfB)).toBe(reference(keyOfB))
    expect(seenB).toEqual([keyOfB])
    expect(cacheA.getGroup('kv')!.stats().peerLoads).toBe(1)

    expect((await get(a, '/hello')).body.toString('utf8')).toBe('world')
  })

  it('works under an express path prefix when the peer URL carries that path', async () => {
    const aServer = track(await listenLocal())
    const bServer = track(await listenLocal())
    const a = `${serverUrl(aServer)}/cache`
    const b = serverUrl(bServer)
    const peers = [a, b]
    const seenA: string[] = []
    const cacheA = track(new Peercache({ env: {}, self: a, peers, hotCacheProbability: 0 }))
    const cacheB = track(new Peercache({ env: {}, self: b, peers, hotCacheProbability: 0 }))
    kv(cacheA, seenA)
    kv(cacheB, [])
    const app = express()
    app.use('/cache', cacheA.handler())
    aServer.on('request', app)
    bServer.on('request', cacheB.handler())

    const key = keyOwnedBy(peers, a, 'prefixed')
    const group = cacheB.getGroup('kv')!
    expect(await group.getString(key)).toBe(reference(key))
    expect(seenA).toEqual([key])
    expect(group.stats().peerLoads).toBe(1)
    expect(group.stats().peerErrors).toBe(0)
    // Without the prefix the path is not the peer endpoint: express answers 404.
    expect((await get(serverUrl(aServer), `/_groupcache/kv/${encodeURIComponent(key)}`)).status).toBe(404)
    expect(seenA).toEqual([key])
  })
})

describe('mounted under an express path prefix with a secret (issue 13)', () => {
  it('signs and verifies the path as it travels on the wire: gets, batches, sets and removes all pass', async () => {
    const aServer = track(await listenLocal())
    const bServer = track(await listenLocal())
    const a = `${serverUrl(aServer)}/cache`
    const b = `${serverUrl(bServer)}/cache`
    const peers = [a, b]
    const secret = 'a-secret-of-at-least-16-bytes'
    const seen: string[][] = [[], []]
    const caches = [a, b].map((self) => track(new Peercache({ env: {}, self, peers, secret, hotCacheProbability: 0 })))
    caches.forEach((cache, i) => kv(cache, seen[i]!))
    for (const [server, cache] of [[aServer, caches[0]!], [bServer, caches[1]!]] as const) {
      const app = express()
      app.use('/cache', cache.handler())
      server.on('request', app)
    }
    const groupB = caches[1]!.getGroup('kv')!
    const key = keyOwnedBy(peers, a, 'signed')
    expect(await groupB.getString(key)).toBe(reference(key))
    expect(seen[0]).toEqual([key])
    const batchKeys = [1, 2, 3].map((i) => keyOwnedBy(peers, a, `batch-${i}`))
    const found = await groupB.getMany(batchKeys)
    expect([...found.keys()].sort()).toEqual([...batchKeys].sort())
    expect(await groupB.set(key, 'new')).toEqual({ unreachable: [] })
    expect(await caches[0]!.getGroup('kv')!.getString(key)).toBe('new')
    expect(await groupB.remove(key)).toEqual({ unreachable: [] })
    expect(groupB.stats().peerErrors).toBe(0)
    expect(groupB.stats().localLoads).toBe(0)
    // An unsigned request through the same mount is still refused.
    expect((await get(serverUrl(aServer), `/cache/_groupcache/kv/${encodeURIComponent(key)}`)).status).toBe(401)
  })
})

describe('as a plain node:http listener without next', () => {
  it('answers peer requests and 404s a foreign path itself', async () => {
    const seen: string[] = []
    const cache = track(new Peercache({ env: {} }))
    kv(cache, seen)
    const handler = cache.handler()
    const origin = serverUrl(await listenWith((req, res) => handler(req, res)))

    const value = await get(origin, '/_groupcache/kv/a%20b')
    expect(value.status).toBe(200)
    expect(Buffer.from(decodeGetResponse(value.body).value).toString('utf8')).toBe('v(a b)')

    for (const path of ['/hello', '/', '/favicon.ico', '/_groupcache']) {
      const foreign = await get(origin, path)
      expect(foreign.status, path).toBe(404)
      expect(foreign.headers['content-type'], path).toBe('text/plain; charset=utf-8')
      expect(foreign.headers['x-content-type-options'], path).toBe('nosniff')
      expect(foreign.body.toString('utf8'), path).toMatch(/\n$/)
    }
    expect(seen).toEqual(['a b'])
  })
})
