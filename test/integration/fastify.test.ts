/**
 * peercache/fastify (issue 11): the peer endpoint served by a real fastify
 * server through fastify's own routing — GET/HEAD/PUT/DELETE per key and the
 * batch path, a protobuf body parser scoped to peer routes, the app's hooks
 * and logger applied, authentication, the cache closed in onClose — and a
 * peercache peer talking to the fastify-mounted one in both directions.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { Client } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { Opened } from '../helpers/opened.js'
import { peercachePlugin } from '../../src/fastify.js'
import { ClosedError, HashRing, InvalidArgumentError, Peercache, serverUrl, type PeercacheOptions } from '../../src/index.js'
import { decodeGetResponse, encodeSetRequest } from '../../src/proto/codec.js'
import { listenLocal, reference } from '../helpers/cluster.js'

const opened = new Opened()

afterEach(() => opened.closeAll())

interface LogLine {
  level: number
  msg: string
  req?: { method: string; url: string }
  res?: { statusCode: number }
}

interface Mounted {
  app: FastifyInstance
  origin: string
  cache: Peercache
  /** Keys the group's loader was asked for. */
  seen: string[]
  /** Every line fastify's logger wrote. */
  logs: LogLine[]
  /** Paths the app's own onRequest hook saw. */
  hooked: string[]
}

/**
 * mountInFastify starts a fastify app on a server already listening on
 * 127.0.0.1 (so the Peercache knows its URL up front), with an app route,
 * an app-wide onRequest and onSend hook and a capturing logger, and
 * registers the plugin for a Peercache with group `kv`.
 */
async function mountInFastify(options: (self: string) => PeercacheOptions = () => ({ env: {} }), prefix?: string): Promise<Mounted> {
  const server = await listenLocal()
  opened.track(server)
  const origin = serverUrl(server)
  const logs: LogLine[] = []
  const hooked: string[] = []
  const app = Fastify({
    logger: { level: 'info', stream: { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) } },
    serverFactory: (handler) => server.on('request', handler),
  })
  opened.track(app)
  const cache = new Peercache(options(origin + (prefix ?? '').replace(/\/+$/, '')))
  opened.track(cache)
  const seen: string[] = []
  cache.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => (seen.push(key), reference(key)) })
  app.addHook('onRequest', async (request) => void hooked.push(request.url))
  app.addHook('onSend', async (_request, reply) => void reply.header('x-app-hook', 'seen'))
  app.get('/hello', async () => 'world')
  app.post('/echo', async (request) => request.body)
  await app.register(peercachePlugin, prefix === undefined ? { cache } : { cache, prefix })
  await app.ready()
  return { app, origin, cache, seen, logs, hooked }
}

interface RawResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

/** send sends one request with the path verbatim and reads the whole body. */
async function send(origin: string, method: string, path: string, init: { body?: Uint8Array | string; headers?: Record<string, string> } = {}): Promise<RawResponse> {
  const client = new Client(origin)
  opened.track(client)
  const response = await client.request({ method: method as 'GET', path, body: init.body ?? null, headers: init.headers ?? {} })
  return { status: response.statusCode, headers: response.headers, body: Buffer.from(await response.body.arrayBuffer()) }
}

function valueOf(response: RawResponse): string {
  return Buffer.from(decodeGetResponse(response.body).value).toString('utf8')
}

/** keyOwnedBy returns a key the ring over peers gives to owner. */
function keyOwnedBy(peers: readonly string[], owner: string, prefix: string, skip = 0): string {
  const ring = new HashRing(peers)
  for (let i = 0, found = 0; ; i++) {
    const key = `${prefix}/${i}`
    if (ring.pick(key) === owner && found++ === skip) return key
  }
}

describe('peercachePlugin', () => {
  it('serves GET/HEAD per key through fastify’s router, with the app’s hooks and logger applied', async () => {
    const { origin, seen, logs, hooked } = await mountInFastify()
    const key = 'a b/ü%+//..'
    const path = `/_groupcache/kv/${encodeURIComponent(key)}`

    const value = await send(origin, 'GET', path)
    expect(value.status).toBe(200)
    expect(value.headers['content-type']).toBe('application/x-protobuf')
    expect(valueOf(value)).toBe(reference(key))
    expect(value.headers['x-app-hook']).toBe('seen') // the app's onSend hook ran on the peer reply

    const head = await send(origin, 'HEAD', path)
    expect(head.status).toBe(200)
    expect(Number(head.headers['content-length'])).toBe(value.body.byteLength)
    expect(head.body.byteLength).toBe(0)
    expect(seen).toEqual([key]) // loaded once, then served from the cache

    expect(hooked).toEqual([path, path])
    const served = logs.filter((l) => l.msg === 'request completed' && l.res?.statusCode === 200)
    expect(served.length).toBeGreaterThanOrEqual(2)
    const incoming = logs.filter((l) => l.msg === 'incoming request').map((l) => l.req?.url)
    expect(incoming).toEqual([path, path])
  })

  it('serves long keys: the wildcard route is not bound by fastify’s maxParamLength', async () => {
    const { origin, seen } = await mountInFastify()
    const key = 'long/'.repeat(1000)
    const value = await send(origin, 'GET', `/_groupcache/kv/${encodeURIComponent(key)}`)
    expect(value.status).toBe(200)
    expect(valueOf(value)).toBe(reference(key))
    expect(seen).toEqual([key])
  })

  it('answers errors as Go groupcache does (text/plain, nosniff, marker), and 405 with Allow', async () => {
    const { origin } = await mountInFastify()
    const noGroup = await send(origin, 'GET', '/_groupcache/nosuch/k')
    expect(noGroup.status).toBe(404)
    expect(noGroup.body.toString('utf8')).toBe('no such group: nosuch\n')
    expect(noGroup.headers['content-type']).toBe('text/plain; charset=utf-8')
    expect(noGroup.headers['x-content-type-options']).toBe('nosniff')
    expect(noGroup.headers['x-peercache-error']).toBe('no-such-group')

    const bad = await send(origin, 'GET', '/_groupcache/kv')
    expect(bad.status).toBe(400) // under basePath but no key: as handler() answers
    expect(bad.body.toString('utf8')).toBe('bad request\n')
    const badEscape = await send(origin, 'GET', '/_groupcache/kv/%E0%A4%A')
    expect(badEscape.status).toBe(400)

    const post = await send(origin, 'POST', '/_groupcache/kv/a', { body: 'x', headers: { 'content-type': 'application/x-protobuf' } })
    expect(post.status).toBe(405)
    expect(post.headers.allow).toBe('GET, HEAD, PUT, DELETE')
    const getBatch = await send(origin, 'GET', '/_peercache/batch/kv')
    expect(getBatch.status).toBe(405)
    expect(getBatch.headers.allow).toBe('POST')
  })

  it('scopes the protobuf parser and the text/plain errors to peer routes: the app’s routes keep fastify’s own', async () => {
    const { origin } = await mountInFastify()
    const hello = await send(origin, 'GET', '/hello')
    expect(hello.body.toString('utf8')).toBe('world')
    const echo = await send(origin, 'POST', '/echo', { body: '{"a":1}', headers: { 'content-type': 'application/json' } })
    expect(echo.status).toBe(200)
    expect(JSON.parse(echo.body.toString('utf8'))).toEqual({ a: 1 })
    const protobufToApp = await send(origin, 'POST', '/echo', { body: 'x', headers: { 'content-type': 'application/x-protobuf' } })
    expect(protobufToApp.status).toBe(415)
    expect(String(protobufToApp.headers['content-type'])).toMatch(/^application\/json/)
  })

  it('PUT and DELETE per key: a SetRequest body through the content-type parser', async () => {
    const { origin, cache, seen } = await mountInFastify()
    const group = cache.getGroup('kv')!
    const body = encodeSetRequest({ group: 'kv', key: 'k/1', value: Buffer.from('stored'), expiresAt: 0 })
    const put = await send(origin, 'PUT', '/_groupcache/kv/k%2F1', { body, headers: { 'content-type': 'application/x-protobuf' } })
    expect(put.status).toBe(200)
    expect(put.headers['content-type']).toBeUndefined()
    expect(group.peek('k/1') && Buffer.from(group.peek('k/1') as Uint8Array).toString('utf8')).toBe('stored')

    const mismatched = encodeSetRequest({ group: 'kv', key: 'other', value: Buffer.from('x'), expiresAt: 0 })
    const refused = await send(origin, 'PUT', '/_groupcache/kv/k%2F1', { body: mismatched, headers: { 'content-type': 'application/x-protobuf' } })
    expect(refused.status).toBe(400)

    const del = await send(origin, 'DELETE', '/_groupcache/kv/k%2F1')
    expect(del.status).toBe(200)
    expect(group.peek('k/1')).toBeUndefined()
    expect(seen).toEqual([])
  })

  it('bounds request bodies by the cache’s maxRequestBytes (413, text/plain)', async () => {
    const { origin } = await mountInFastify(() => ({ env: {}, server: { maxRequestBytes: 1024 } }))
    const body = encodeSetRequest({ group: 'kv', key: 'big', value: Buffer.alloc(4096, 1), expiresAt: 0 })
    const tooLarge = await send(origin, 'PUT', '/_groupcache/kv/big', { body, headers: { 'content-type': 'application/x-protobuf' } })
    expect(tooLarge.status).toBe(413)
    expect(tooLarge.headers['content-type']).toBe('text/plain; charset=utf-8')
  })

  it('closes the cache when the app closes (onClose)', async () => {
    const { app, cache } = await mountInFastify()
    const group = cache.getGroup('kv')!
    expect(await group.getString('a')).toBe(reference('a'))
    await app.close()
    await expect(group.get('b')).rejects.toBeInstanceOf(ClosedError)
  })

  it('looks like a fastify-plugin plugin without depending on it', async () => {
    const marks = peercachePlugin as unknown as Record<symbol, unknown>
    expect(marks[Symbol.for('skip-override')]).toBe(true)
    expect(marks[Symbol.for('fastify.display-name')]).toBe('peercache')
    const { app } = await mountInFastify()
    expect(app.printPlugins()).toContain('peercache')
  })
})

describe('a peercache peer talking to a fastify-mounted peer', () => {
  /** pair mounts member A in fastify and runs member B on a plain listen(), both with the given secret. */
  async function pair(secret?: string, prefix?: string): Promise<{ a: Mounted; b: Peercache; bUrl: string; peers: string[]; seenB: string[] }> {
    const bServer = await listenLocal()
    opened.track(bServer)
    const bUrl = serverUrl(bServer)
    let peers: string[] = []
    const auth = secret === undefined ? {} : { secret }
    const a = await mountInFastify((self) => {
      peers = [self, bUrl]
      return { env: {}, self, peers, hotCacheProbability: 0, ...auth }
    }, prefix)
    const b = new Peercache({ env: {}, self: bUrl, peers, hotCacheProbability: 0, ...auth })
    opened.track(b)
    const seenB: string[] = []
    b.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => (seenB.push(key), reference(key)) })
    bServer.on('request', b.handler())
    return { a, b, bUrl, peers, seenB }
  }

  for (const secret of [undefined, 'a shared secret of 32 bytes!!!!']) {
    const mode = secret === undefined ? 'without auth' : 'with a secret'
    it(`${mode}: gets, a batch, set, remove and clear go through fastify; A asks B the same way`, async () => {
      const { a, b, bUrl, peers, seenB } = await pair(secret)
      const groupB = b.getGroup('kv')!
      const groupA = a.cache.getGroup('kv')!

      const key = keyOwnedBy(peers, a.origin, 'spaced key/ü')
      expect(await groupB.getString(key)).toBe(reference(key))
      expect(a.seen).toEqual([key])
      expect(seenB).toEqual([])
      expect(groupB.stats().peerLoads).toBe(1)
      expect(groupB.stats().peerErrors).toBe(0)

      // A batch: several keys A owns, in one tick, travel as one POST to the batch path.
      const batchKeys = [1, 2, 3, 4].map((i) => keyOwnedBy(peers, a.origin, 'batch', i))
      const found = await groupB.getMany(batchKeys)
      expect([...found.keys()].sort()).toEqual([...batchKeys].sort())
      for (const k of batchKeys) expect(found.get(k)?.toString('utf8')).toBe(reference(k))
      expect(a.hooked.filter((p) => p === '/_peercache/batch/kv')).toHaveLength(1)
      expect(groupB.stats().peerErrors).toBe(0)

      // set: a PUT to the owner (A, through fastify); remove: a DELETE there.
      await groupB.set(key, 'new value')
      expect(Buffer.from(groupA.peek(key) as Uint8Array).toString('utf8')).toBe('new value')
      expect(await groupB.getString(key)).toBe('new value')
      const report = await groupB.remove(key)
      expect(report.unreachable).toEqual([])
      expect(groupA.peek(key)).toBeUndefined()
      expect(a.hooked.some((p) => p.startsWith('/_groupcache/kv/'))).toBe(true)

      // clear: a signed POST to the clear path, through fastify.
      const cleared = keyOwnedBy(peers, a.origin, 'cleared')
      expect(await groupB.getString(cleared)).toBe(reference(cleared))
      expect(groupA.peek(cleared)).toBeDefined()
      expect(await groupB.clear()).toEqual({ unreachable: [] })
      expect(groupA.peek(cleared)).toBeUndefined()
      // It carries B's new clear generation (the fence of group/writes.ts), signed with the path.
      expect(a.hooked.filter((p) => /^\/_peercache\/clear\/kv\?gen=\d+$/.test(p))).toHaveLength(1)

      // The other direction: A (behind fastify) asks B.
      const keyOfB = keyOwnedBy(peers, bUrl, 'other')
      expect(await groupA.getString(keyOfB)).toBe(reference(keyOfB))
      expect(seenB).toEqual([keyOfB])
      expect(groupA.stats().peerErrors).toBe(0)
    })
  }

  it('under a prefix: A serves its peer routes at /cache/…, peers list it as origin/cache, signed requests pass both ways', async () => {
    const { a, b, bUrl, peers, seenB } = await pair('a shared secret of 32 bytes!!!!', '/cache/')
    const aSelf = `${a.origin}/cache`
    expect(peers).toEqual([aSelf, bUrl])
    const groupB = b.getGroup('kv')!
    const key = keyOwnedBy(peers, aSelf, 'prefixed key/ü')
    expect(await groupB.getString(key)).toBe(reference(key))
    expect(a.seen).toEqual([key])
    expect(a.hooked.some((p) => p.startsWith('/cache/_groupcache/kv/'))).toBe(true)
    const batchKeys = [1, 2, 3].map((i) => keyOwnedBy(peers, aSelf, 'batch', i))
    expect([...(await groupB.getMany(batchKeys)).keys()].sort()).toEqual([...batchKeys].sort())
    expect(a.hooked.filter((p) => p === '/cache/_peercache/batch/kv')).toHaveLength(1)
    await groupB.set(key, 'under a prefix')
    expect(Buffer.from(a.cache.getGroup('kv')!.peek(key) as Uint8Array).toString('utf8')).toBe('under a prefix')
    expect(groupB.stats().peerErrors).toBe(0)
    // Without the prefix the path is the app's, not the peer endpoint: fastify's own 404.
    const bare = await send(a.origin, 'GET', `/_groupcache/kv/${encodeURIComponent(key)}`)
    expect(bare.status).toBe(404)
    expect(bare.headers['x-peercache-error']).toBeUndefined()
    // A asks B as before.
    const keyOfB = keyOwnedBy(peers, bUrl, 'other')
    expect(await a.cache.getGroup('kv')!.getString(keyOfB)).toBe(reference(keyOfB))
    expect(seenB).toEqual([keyOfB])
  })

  it('refuses a prefix it cannot route (no leading slash, a route pattern) with InvalidArgumentError', async () => {
    for (const prefix of ['cache', '/ca*che', '/:group', '/a b']) {
      const app = Fastify()
      opened.track(app)
      const cache = new Peercache({ env: {} })
      opened.track(cache)
      await expect(app.register(peercachePlugin, { cache, prefix }).ready()).rejects.toBeInstanceOf(InvalidArgumentError)
    }
  })

  it('with a secret, refuses unsigned requests: a write before its body is parsed, a read after', async () => {
    const { a } = await pair('a shared secret of 32 bytes!!!!')
    const body = encodeSetRequest({ group: 'kv', key: 'k', value: Buffer.from('forged'), expiresAt: 0 })
    const put = await send(a.origin, 'PUT', '/_groupcache/kv/k', { body, headers: { 'content-type': 'application/x-protobuf' } })
    expect(put.status).toBe(401)
    expect(put.headers.connection).toBe('close')
    expect(a.cache.getGroup('kv')!.peek('k')).toBeUndefined()
    const get = await send(a.origin, 'GET', '/_groupcache/kv/k')
    expect(get.status).toBe(401)
    expect(get.headers['content-type']).toBe('text/plain; charset=utf-8')
    const batch = await send(a.origin, 'POST', '/_peercache/batch/kv', { body: Buffer.alloc(8), headers: { 'content-type': 'application/x-protobuf' } })
    expect(batch.status).toBe(401)
    expect(a.seen).toEqual([])
  })
})
