/**
 * Peer authentication end to end (issue 7): with a shared secret every peer
 * request (GET/HEAD, PUT, DELETE, POST batch) must carry
 * `Authorization: Peercache t=<unix s>,s=<hex HMAC-SHA256>` over
 * `METHOD\nRAW-PATH\nt\nsha256hex(body)`; the server answers 401 to a
 * missing, malformed, wrong, replayed-elsewhere or stale signature, and
 * secrets rotate (a list: the first signs, any verifies).
 *
 * Real servers on 127.0.0.1: a two-member cluster (test/helpers/cluster.ts)
 * for the peer-to-peer paths, and one `cache.listen()` server asked with raw
 * undici requests for the server's answers.
 */
import type { Server } from 'node:http'
import { Client } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { PeerAuth } from '../../src/auth.js'
import { Peercache, PeerResponseError, serverUrl, type Group, type PeercacheEvents } from '../../src/index.js'
import { decodeBatchResponse, decodeGetResponse, encodeBatchRequest, encodeSetRequest } from '../../src/proto/codec.js'
import { kvGroup, reference, startCluster, type Cluster } from '../helpers/cluster.js'
import { servedGroup } from '../helpers/served.js'
import { peekText, rawExchange } from '../helpers/security-http.js'

const SECRET = 'a-long-shared-secret'
const KEYS = Array.from({ length: 40 }, (_, i) => `key-${i}`)
const text = new TextDecoder()

let cluster: Cluster | undefined
const caches: Peercache[] = []
const clients: Client[] = []

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await Promise.all(caches.splice(0).map((c) => c.close()))
  await cluster?.close()
  cluster = undefined
})

/** keysOwnedBy returns the keys the ring gives to member `index`. */
function keysOwnedBy(c: Cluster, index: number, keys: readonly string[] = KEYS): string[] {
  return keys.filter((key) => c.ownerOf(key) === index)
}

/** A standalone Peercache (no peers) with group `kv`, served by listen(); returns it, its group and an undici client. */
async function serve(options: ConstructorParameters<typeof Peercache>[0] = {}): Promise<{ cache: Peercache; group: Group; server: Server; client: Client }> {
  const cache = new Peercache({ env: {}, ...options })
  caches.push(cache)
  const group = cache.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => reference(key) })
  const server = await cache.listen(0, '127.0.0.1')
  const client = new Client(serverUrl(server))
  clients.push(client)
  return { cache, group, server, client }
}

interface Sent {
  status: number
  body: Uint8Array
  headers: Record<string, string | string[] | undefined>
}

/** send issues one request exactly as given (path byte for byte) and reads the whole answer. */
async function send(client: Client, method: 'GET' | 'HEAD' | 'PUT' | 'DELETE' | 'POST', path: string, options: { body?: Uint8Array; authorization?: string | string[] } = {}): Promise<Sent> {
  const headers: Record<string, string | string[]> = {}
  if (options.authorization !== undefined) headers.authorization = options.authorization
  const response = await client.request({ method, path, headers, body: options.body ?? null })
  const body = new Uint8Array(await response.body.arrayBuffer())
  return { status: response.statusCode, body, headers: response.headers }
}

/** signed sends a request signed by `auth` over exactly what is sent. */
function signed(client: Client, auth: PeerAuth, method: 'GET' | 'HEAD' | 'PUT' | 'DELETE' | 'POST', path: string, body?: Uint8Array): Promise<Sent> {
  return send(client, method, path, { ...(body === undefined ? {} : { body }), authorization: auth.sign(method, path, body) })
}

const setBody = (key: string, value: string, group = 'kv'): Uint8Array => encodeSetRequest({ group, key, value: new TextEncoder().encode(value), expiresAt: 0 })

const peerErrorsOf = (cache: Peercache): Array<PeercacheEvents['peer-error']> => {
  const seen: Array<PeercacheEvents['peer-error']> = []
  cache.events.on('peer-error', (event) => seen.push(event))
  return seen
}

describe('a two-member cluster sharing a secret', () => {
  it('serves gets across peers, every request signed and accepted', async () => {
    const c = await startCluster(2, kvGroup(), { options: { secret: SECRET, hotCacheProbability: 0, coalesce: false } })
    cluster = c
    for (let i = 0; i < 2; i++) {
      for (const key of KEYS) expect(await c.group(i).getString(key)).toBe(reference(key))
    }
    // Each key is remote for exactly one of the two members: one peer load per key, no error.
    const stats = [c.group(0).stats(), c.group(1).stats()]
    expect(stats[0]!.peerLoads).toBe(keysOwnedBy(c, 1).length)
    expect(stats[1]!.peerLoads).toBe(keysOwnedBy(c, 0).length)
    expect(stats[0]!.peerLoads).toBeGreaterThan(0)
    expect(stats[1]!.peerLoads).toBeGreaterThan(0)
    expect(stats[0]!.peerErrors + stats[1]!.peerErrors).toBe(0)
    expect(c.totalLoads()).toBe(KEYS.length)
  })

  it('signs the batch (POST), PUT and DELETE: getMany, set and remove work across peers', async () => {
    const c = await startCluster(2, kvGroup(), { options: { secret: SECRET, hotCacheProbability: 0 } })
    cluster = c
    const many = Array.from({ length: 30 }, (_, i) => `many-${i}`)
    const remote = keysOwnedBy(c, 1, many)
    expect(remote.length).toBeGreaterThan(0)

    // getMany: the remote keys travel in one signed batch request to member 1.
    const found = await c.group(0).getMany(many)
    expect([...found.keys()].sort()).toEqual([...many].sort())
    for (const key of many) expect(text.decode(found.get(key))).toBe(reference(key))
    expect(c.group(0).stats().peerLoads).toBe(remote.length)
    expect(c.group(1).stats().serverRequests).toBe(remote.length)

    // set: a signed PUT stores the value at the owner.
    const key = remote[0]!
    expect((await c.group(0).set(key, 'written by 0')).unreachable).toEqual([])
    expect(peekText(c.group(1), key)).toBe('written by 0')
    expect(await c.group(0).getString(key)).toBe('written by 0')

    // remove: a signed DELETE drops it at the owner.
    expect((await c.group(0).remove(key)).unreachable).toEqual([])
    expect(c.group(1).peek(key)).toBeUndefined()

    expect(c.group(0).stats().peerErrors + c.group(1).stats().peerErrors).toBe(0)
  })
})

describe('the server of a Peercache with a secret', () => {
  const auth = new PeerAuth({ secrets: [SECRET] })
  const path = '/_groupcache/kv/k1'
  const batch = '/_peercache/batch/kv'

  it('answers 401 to every verb sent without Authorization, and changes nothing', async () => {
    const { group, client } = await serve({ secret: SECRET })
    await group.get('present')
    const answers = await Promise.all([
      send(client, 'GET', path),
      send(client, 'HEAD', path),
      send(client, 'PUT', path, { body: setBody('k1', 'evil') }),
      send(client, 'DELETE', '/_groupcache/kv/present'),
      send(client, 'POST', batch, { body: encodeBatchRequest(['k1', 'present']) }),
    ])
    expect(answers.map((a) => a.status)).toEqual([401, 401, 401, 401, 401])
    for (const answer of [answers[0]!, ...answers.slice(2)]) expect(text.decode(answer.body)).toBe('peer authentication failed: missing\n')
    // Nothing was loaded, stored or removed on an unsigned request.
    expect(group.peek('k1')).toBeUndefined()
    expect(peekText(group, 'present')).toBe(reference('present'))
    expect(group.stats().serverRequests).toBe(0)
    // No oracle for group names either: an unknown group is a 401 too, not a 404.
    expect((await send(client, 'GET', '/_groupcache/no-such-group/k')).status).toBe(401)
    expect((await send(client, 'POST', '/_peercache/batch/no-such-group', { body: encodeBatchRequest(['k']) })).status).toBe(401)
  })

  it('refuses an unsigned PUT or batch before reading its body: 401 and the connection closed, with the body never sent', async () => {
    const { server } = await serve({ secret: SECRET })
    const port = (server.address() as { port: number }).port
    for (const [method, target] of [['PUT', path], ['POST', batch]] as const) {
      // Announce 10 MB and send none of it: a server that read the body first would wait for it until its requestTimeout.
      const head = `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\nContent-Length: 10000000\r\n\r\n`
      const result = await rawExchange(port, head, { timeoutMs: 5000 })
      expect(result.timedOut).toBe(false)
      expect(result.closed).toBe(true)
      const answer = result.bytes.toString('latin1')
      expect(answer).toMatch(/^HTTP\/1\.1 401 /)
      expect(answer.toLowerCase()).toContain('connection: close')
      expect(answer).toContain('peer authentication failed: missing')
    }
  })

  it('does not authenticate the opt-in metrics path (documented: expose it only where the port is private)', async () => {
    const { client } = await serve({ secret: SECRET, metricsPath: '/metrics' })
    const answer = await send(client, 'GET', '/metrics')
    expect(answer.status).toBe(200)
    expect(text.decode(answer.body)).toContain('kv')
  })

  it('answers 401 to a signature made with another secret', async () => {
    const { client } = await serve({ secret: SECRET })
    const wrong = new PeerAuth({ secrets: ['another-long-secret'] })
    for (const method of ['GET', 'HEAD', 'DELETE'] as const) expect((await signed(client, wrong, method, path)).status).toBe(401)
    expect((await signed(client, wrong, 'PUT', path, setBody('k1', 'x'))).status).toBe(401)
    const answer = await signed(client, wrong, 'POST', batch, encodeBatchRequest(['k1']))
    expect(answer.status).toBe(401)
    expect(text.decode(answer.body)).toBe('peer authentication failed: bad signature\n')
  })

  it('answers 401 to a malformed header, whatever it holds', async () => {
    const { client } = await serve({ secret: SECRET })
    const good = auth.sign('GET', path)
    const cases = [
      'Bearer abc',
      'Peercache',
      good.toUpperCase(), // uppercase hex and scheme: the signer never emits it
      good.replace('Peercache', 'peercache'),
      good.slice(0, -1),
      `${good}0`,
      good.replace(/t=\d+/, 't=-1'),
      good.replace(/t=\d+/, 't=99999999999999999'),
      `${good} `.repeat(40),
      // Two Authorization headers: node keeps only the first (it discards
      // duplicates of this header), so a garbage first one is what is checked.
      ['Peercache t=1,s=00', good],
    ]
    for (const authorization of cases) {
      const answer = await send(client, 'GET', path, { authorization })
      expect(answer.status, JSON.stringify(authorization)).toBe(401)
    }
    // The genuine header still works.
    expect((await send(client, 'GET', path, { authorization: auth.sign('GET', path) })).status).toBe(200)
  })

  it('accepts a valid signature on every verb', async () => {
    const { group, client } = await serve({ secret: SECRET })
    const got = await signed(client, auth, 'GET', path)
    expect(got.status).toBe(200)
    expect(text.decode(decodeGetResponse(got.body).value)).toBe(reference('k1'))
    expect((await signed(client, auth, 'HEAD', path)).status).toBe(200)

    expect((await signed(client, auth, 'PUT', path, setBody('k1', 'stored'))).status).toBe(200)
    expect(peekText(group, 'k1')).toBe('stored')

    const answer = await signed(client, auth, 'POST', batch, encodeBatchRequest(['k1', 'k2']))
    expect(answer.status).toBe(200)
    expect(decodeBatchResponse(answer.body).map((e) => [e.key, e.status, text.decode(e.value)])).toEqual([
      ['k1', 200, 'stored'],
      ['k2', 200, reference('k2')],
    ])

    expect((await signed(client, auth, 'DELETE', path)).status).toBe(200)
    expect(group.peek('k1')).toBeUndefined()
  })

  it('answers 401 to a valid signature replayed with another method, path, group or body', async () => {
    const { cache, group, client } = await serve({ secret: SECRET })
    servedGroup(cache, 'kv').setLocal('victim', { value: new TextEncoder().encode('kept'), expiresAt: 0 })
    const getHeader = auth.sign('GET', '/_groupcache/kv/victim')
    // Same header, another method.
    expect((await send(client, 'DELETE', '/_groupcache/kv/victim', { authorization: getHeader })).status).toBe(401)
    expect((await send(client, 'HEAD', '/_groupcache/kv/victim', { authorization: getHeader })).status).toBe(401)
    // Same header, another key; another group; the same key spelled differently on the wire.
    expect((await send(client, 'GET', '/_groupcache/kv/other', { authorization: getHeader })).status).toBe(401)
    expect((await send(client, 'GET', '/_groupcache/other/victim', { authorization: getHeader })).status).toBe(401)
    expect((await send(client, 'GET', '/_groupcache/kv/%76ictim', { authorization: getHeader })).status).toBe(401)
    expect((await send(client, 'GET', '/_groupcache/kv/victim?x=1', { authorization: getHeader })).status).toBe(401)
    // A signed PUT cannot carry another body (or become a PUT of another key).
    const putHeader = auth.sign('PUT', '/_groupcache/kv/victim', setBody('victim', 'v1'))
    expect((await send(client, 'PUT', '/_groupcache/kv/victim', { body: setBody('victim', 'evil'), authorization: putHeader })).status).toBe(401)
    expect((await send(client, 'PUT', '/_groupcache/kv/victim', { authorization: putHeader })).status).toBe(401)
    // A signed batch cannot ask for other keys.
    const batchHeader = auth.sign('POST', batch, encodeBatchRequest(['a']))
    expect((await send(client, 'POST', batch, { body: encodeBatchRequest(['victim']), authorization: batchHeader })).status).toBe(401)
    expect(peekText(group, 'victim')).toBe('kept')
    // The original request, replayed as is within the window, is accepted: the window is the replay bound.
    expect((await send(client, 'GET', '/_groupcache/kv/victim', { authorization: getHeader })).status).toBe(200)
  })

  it('answers 401 to a timestamp outside the ±30 s window, 200 inside it', async () => {
    const { client } = await serve({ secret: SECRET })
    const shifted = (ms: number): PeerAuth => new PeerAuth({ secrets: [SECRET], now: () => Date.now() + ms })
    const stale = await signed(client, shifted(-31_000), 'GET', path)
    expect(stale.status).toBe(401)
    expect(text.decode(stale.body)).toBe('peer authentication failed: stale\n')
    expect((await signed(client, shifted(+31_000), 'GET', path)).status).toBe(401)
    expect((await signed(client, shifted(-120_000), 'PUT', path, setBody('k1', 'x'))).status).toBe(401)
    expect((await signed(client, shifted(-29_000), 'GET', path)).status).toBe(200)
    expect((await signed(client, shifted(+29_000), 'GET', path)).status).toBe(200)
  })

  it('honours authWindowMs', async () => {
    const { client } = await serve({ secret: SECRET, auth: { windowMs: 5_000 } })
    const shifted = (ms: number): PeerAuth => new PeerAuth({ secrets: [SECRET], now: () => Date.now() + ms })
    expect((await signed(client, shifted(-10_000), 'GET', path)).status).toBe(401)
    expect((await signed(client, shifted(-3_000), 'GET', path)).status).toBe(200)
  })

  it('turns on from PEERCACHE_SECRET (comma-separated list, any entry verifies)', async () => {
    const { client } = await serve({ env: { PEERCACHE_SECRET: 'x-secret-number-one, y-secret-number-two' } })
    expect((await send(client, 'GET', path)).status).toBe(401)
    expect((await signed(client, new PeerAuth({ secrets: ['x-secret-number-one'] }), 'GET', path)).status).toBe(200)
    expect((await signed(client, new PeerAuth({ secrets: ['y-secret-number-two'] }), 'GET', path)).status).toBe(200)
    expect((await signed(client, new PeerAuth({ secrets: ['z-secret-number-three'] }), 'GET', path)).status).toBe(401)
  })

  it('prefers the secret option over PEERCACHE_SECRET; a blank PEERCACHE_SECRET leaves auth off', async () => {
    const { client } = await serve({ secret: SECRET, env: { PEERCACHE_SECRET: 'from-the-environment' } })
    expect((await signed(client, new PeerAuth({ secrets: ['from-the-environment'] }), 'GET', path)).status).toBe(401)
    expect((await signed(client, auth, 'GET', path)).status).toBe(200)

    const open = await serve({ env: { PEERCACHE_SECRET: ' , ' } })
    expect((await send(open.client, 'GET', path)).status).toBe(200)
  })
})

describe('secret rotation', () => {
  it('accepts every listed secret and signs with the first: roll out [new, old], then upgrade the rest', async () => {
    // Member 0 (A) already has [new, old]; member 1 (B) still has [old].
    // failureThreshold is raised so that B's 401s do not mark it down: this
    // test is about which signatures are accepted, not about peer health.
    const c = await startCluster(2, kvGroup(), {
      options: (i) => ({ secret: i === 0 ? ['new-secret-0123456789', 'old-secret-0123456789'] : ['old-secret-0123456789'], hotCacheProbability: 0, coalesce: false, health: { failureThreshold: 1000 } }),
    })
    cluster = c
    const ownedByA = keysOwnedBy(c, 0)
    const ownedByB = keysOwnedBy(c, 1)
    const errorsOfA = peerErrorsOf(c.caches[0]!)

    // B signs with 'old': A accepts.
    expect(await c.group(1).getString(ownedByA[0]!)).toBe(reference(ownedByA[0]!))
    expect(c.group(1).stats()).toMatchObject({ peerLoads: 1, peerErrors: 0 })

    // A signs with 'new': B answers 401, a peer error for A, which loads locally.
    expect(await c.group(0).getString(ownedByB[0]!)).toBe(reference(ownedByB[0]!))
    expect(c.group(0).stats()).toMatchObject({ peerLoads: 0, peerErrors: 1 })
    expect(c.loads[0]!.get(ownedByB[0]!)).toBe(1) // A's loader ran for B's key
    expect(c.loads[1]!.get(ownedByB[0]!)).toBeUndefined()
    expect(errorsOfA).toHaveLength(1)
    expect(errorsOfA[0]!.error).toBeInstanceOf(PeerResponseError)
    expect((errorsOfA[0]!.error as PeerResponseError).status).toBe(401)
    // A write from A to B is refused too: set rejects, nothing is stored at B.
    await expect(c.group(0).set(ownedByB[1]!, 'x')).rejects.toBeInstanceOf(PeerResponseError)
    expect(c.group(1).peek(ownedByB[1]!)).toBeUndefined()

    // Upgrade B: a new instance with [new, old] behind the same URL.
    const upgraded = new Peercache({ env: {}, self: c.urls[1]!, peers: c.urls, secret: ['new-secret-0123456789', 'old-secret-0123456789'], hotCacheProbability: 0, coalesce: false })
    caches.push(upgraded)
    const upgradedGroup = upgraded.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => reference(key) })
    const server = c.servers[1]!
    server.removeAllListeners('request')
    server.on('request', upgraded.handler())
    await c.caches[1]!.close()

    // Both directions now work, A signing with 'new' and B signing with 'new'.
    expect(await c.group(0).getString(ownedByB[2]!)).toBe(reference(ownedByB[2]!))
    expect(c.group(0).stats()).toMatchObject({ peerLoads: 1, peerErrors: 1 })
    expect(await upgradedGroup.getString(ownedByA[1]!)).toBe(reference(ownedByA[1]!))
    expect(upgradedGroup.stats()).toMatchObject({ peerLoads: 1, peerErrors: 0 })
    expect((await c.group(0).set(ownedByB[1]!, 'now accepted')).unreachable).toEqual([])
    expect(peekText(upgradedGroup, ownedByB[1]!)).toBe('now accepted')
  })
})

describe('the three-step rotation ([old, new] → [new, old] → [new])', () => {
  const OLD = 'old-secret-0123456789'
  const NEW = 'new-secret-0123456789'
  it.each([
    ['step 1 half-done', [OLD], [OLD, NEW]],
    ['step 2 half-done', [OLD, NEW], [NEW, OLD]],
    ['step 3 half-done', [NEW, OLD], [NEW]],
  ])('never rejects a request while %s', async (_, first, second) => {
    const c = await startCluster(2, kvGroup(), { options: (i) => ({ secret: i === 0 ? first : second, hotCacheProbability: 0, coalesce: false }) })
    cluster = c
    for (let i = 0; i < 2; i++) {
      for (const key of KEYS) expect(await c.group(i).getString(key)).toBe(reference(key))
    }
    expect(c.group(0).stats().peerLoads).toBe(keysOwnedBy(c, 1).length)
    expect(c.group(1).stats().peerLoads).toBe(keysOwnedBy(c, 0).length)
    expect(c.group(0).stats().peerErrors + c.group(1).stats().peerErrors).toBe(0)
    await cluster.close()
    cluster = undefined
  })
})

describe('a secret on one side only', () => {
  it('a peer with a secret asking a peer without one: the header is ignored and requests succeed', async () => {
    const c = await startCluster(2, kvGroup(), { options: (i) => ({ ...(i === 0 ? { secret: SECRET } : {}), hotCacheProbability: 0 }) })
    cluster = c
    const key = keysOwnedBy(c, 1)[0]!
    expect(await c.group(0).getString(key)).toBe(reference(key))
    expect(c.group(0).stats()).toMatchObject({ peerLoads: 1, peerErrors: 0 })
    expect((await c.group(0).set(key, 'w')).unreachable).toEqual([])
    expect(peekText(c.group(1), key)).toBe('w')
  })

  it('a peer without a secret asking a peer with one: 401, a peer error and a local load; writes are refused', async () => {
    const c = await startCluster(2, kvGroup(), { options: (i) => ({ ...(i === 1 ? { secret: SECRET } : {}), hotCacheProbability: 0, health: { failureThreshold: 1000 } }) })
    cluster = c
    const errors = peerErrorsOf(c.caches[0]!)
    const [key, other] = keysOwnedBy(c, 1)
    expect(await c.group(0).getString(key!)).toBe(reference(key!))
    expect(c.group(0).stats()).toMatchObject({ peerLoads: 0, peerErrors: 1, localLoads: 1 })
    expect((errors[0]!.error as PeerResponseError).status).toBe(401)
    await expect(c.group(0).set(other!, 'w')).rejects.toThrow(/401/)
    expect(c.group(1).peek(other!)).toBeUndefined()
  })
})
