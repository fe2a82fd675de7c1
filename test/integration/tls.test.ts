/**
 * TLS between peers (issue 7): peers named by `https://` URLs, a certificate
 * generated at test time (self-signed, IP SAN 127.0.0.1), the server side
 * either the user's own `https.createServer` with `cache.handler()` or
 * `cache.listen()` with `serverTls`, and the client side trusting the
 * cluster's CA through the `tls` option (handed to undici's connector).
 *
 * A member that does not trust the certificate (default trust store, or
 * another CA) must refuse the connection: a PeerError whose cause names the
 * certificate problem, then a local load, never a value from an unverified
 * peer.
 */
import { createServer, Server as HttpsServer } from 'node:https'
import { Client } from 'undici'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { HashRing, Peercache, PeerError, serverUrl, type PeercacheEvents, type PeercacheOptions } from '../../src/index.js'
import { decodeGetResponse } from '../../src/proto/codec.js'
import { reference } from '../helpers/cluster.js'
import { peekText, reservePort, selfSignedCert, type SelfSignedCert } from '../helpers/security-http.js'

let trusted: SelfSignedCert
let stranger: SelfSignedCert

beforeAll(async () => {
  ;[trusted, stranger] = await Promise.all([selfSignedCert(), selfSignedCert()])
})

const caches: Peercache[] = []
const servers: HttpsServer[] = []
const clients: Client[] = []

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await Promise.all(caches.splice(0).map((c) => c.close()))
  await Promise.all(
    servers.splice(0).map(async (server) => {
      if (!server.listening) return
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeAllConnections()
      await closed
    }),
  )
})

const KEYS = Array.from({ length: 30 }, (_, i) => `key-${i}`)
const text = new TextDecoder()

interface TlsCluster {
  urls: string[]
  caches: Peercache[]
  /** The member index the ring names for key. */
  ownerOf(key: string): number
}

/**
 * startTlsCluster starts n https servers (the user's own, built with
 * https.createServer and the trusted certificate) on 127.0.0.1 port 0, then
 * one Peercache per member with `options(i)`, and mounts each handler on
 * its server afterwards: a Peercache needs its own URL before it exists.
 */
async function startTlsCluster(n: number, options: (i: number) => Omit<PeercacheOptions, 'self' | 'peers'>): Promise<TlsCluster> {
  const made: HttpsServer[] = []
  for (let i = 0; i < n; i++) {
    const server = createServer({ key: trusted.key, cert: trusted.cert })
    servers.push(server)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => resolve())
    })
    made.push(server)
  }
  const urls = made.map((server) => serverUrl(server, 'https'))
  const members = made.map((server, i) => {
    const cache = new Peercache({ env: {}, hotCacheProbability: 0, coalesce: false, ...options(i), self: urls[i]!, peers: urls })
    caches.push(cache)
    cache.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => reference(key) })
    server.on('request', cache.handler())
    return cache
  })
  const ring = new HashRing(urls)
  return { urls, caches: members, ownerOf: (key) => urls.indexOf(ring.pick(key)!) }
}

const kv = (cache: Peercache) => cache.getGroup('kv')!

function peerErrorsOf(cache: Peercache): Array<PeercacheEvents['peer-error']> {
  const seen: Array<PeercacheEvents['peer-error']> = []
  cache.events.on('peer-error', (event) => seen.push(event))
  return seen
}

describe('an https cluster whose members trust its CA', () => {
  it('serves gets across peers over TLS', async () => {
    const c = await startTlsCluster(2, () => ({ transport: { tls: { ca: trusted.cert } } }))
    for (const cache of c.caches) {
      for (const key of KEYS) expect(await kv(cache).getString(key)).toBe(reference(key))
    }
    const [a, b] = [kv(c.caches[0]!).stats(), kv(c.caches[1]!).stats()]
    expect(a.peerLoads).toBeGreaterThan(0)
    expect(b.peerLoads).toBeGreaterThan(0)
    expect(a.peerLoads + b.peerLoads).toBe(KEYS.length)
    expect(a.peerErrors + b.peerErrors).toBe(0)
  })

  it('carries signed batch, PUT and DELETE over TLS (secret + TLS, the recommended deployment)', async () => {
    const c = await startTlsCluster(2, () => ({ secret: 'a-long-shared-secret', coalesce: true, transport: { tls: { ca: trusted.cert } } }))
    const [a, b] = c.caches.map(kv) as [ReturnType<typeof kv>, ReturnType<typeof kv>]
    const remote = KEYS.filter((key) => c.ownerOf(key) === 1)
    expect(remote.length).toBeGreaterThan(0)
    const found = await a.getMany(KEYS)
    expect(found.size).toBe(KEYS.length)
    expect(b.stats().serverRequests).toBe(remote.length)
    expect((await a.set(remote[0]!, 'over tls')).unreachable).toEqual([])
    expect(peekText(b, remote[0]!)).toBe('over tls')
    expect((await a.remove(remote[0]!)).unreachable).toEqual([])
    expect(b.peek(remote[0]!)).toBeUndefined()
    expect(a.stats().peerErrors + b.stats().peerErrors).toBe(0)
  })
})

describe('a member that does not trust the peer certificate', () => {
  it('refuses the connection with the default trust store: a PeerError naming the certificate, then a local load', async () => {
    // Member 0 has no `tls` option (Node's default CAs); member 1 trusts the cluster CA.
    const c = await startTlsCluster(2, (i) => (i === 0 ? {} : { transport: { tls: { ca: trusted.cert } } }))
    const errors = peerErrorsOf(c.caches[0]!)
    const remote = KEYS.filter((key) => c.ownerOf(key) === 1)
    for (const key of remote) expect(await kv(c.caches[0]!).getString(key)).toBe(reference(key))
    const stats = kv(c.caches[0]!).stats()
    expect(stats.peerLoads).toBe(0)
    expect(stats.peerErrors).toBeGreaterThan(0)
    expect(stats.localLoads).toBe(remote.length)
    expect(kv(c.caches[1]!).stats().serverRequests).toBe(0) // no request ever reached member 1's handler
    const error = errors[0]!.error
    expect(error).toBeInstanceOf(PeerError)
    expect(error.message).toMatch(/certificate/i)
    expect(String((error.cause as Error | undefined)?.message)).toMatch(/certificate/i)

    // The other direction, with the CA, works.
    const local = KEYS.find((key) => c.ownerOf(key) === 0)!
    expect(await kv(c.caches[1]!).getString(local)).toBe(reference(local))
    expect(kv(c.caches[1]!).stats()).toMatchObject({ peerLoads: 1, peerErrors: 0 })
  })

  it('refuses a peer whose certificate comes from another CA', async () => {
    const c = await startTlsCluster(2, (i) => ({ transport: { tls: { ca: i === 0 ? stranger.cert : trusted.cert } } }))
    const errors = peerErrorsOf(c.caches[0]!)
    const key = KEYS.find((k) => c.ownerOf(k) === 1)!
    expect(await kv(c.caches[0]!).getString(key)).toBe(reference(key))
    expect(kv(c.caches[0]!).stats()).toMatchObject({ peerLoads: 0, peerErrors: 1 })
    expect(errors[0]!.error).toBeInstanceOf(PeerError)
    expect(errors[0]!.error.message).toMatch(/certificate/i)
  })

  it('connects without verification only when rejectUnauthorized is false (an explicit opt-out)', async () => {
    const c = await startTlsCluster(2, () => ({ transport: { tls: { rejectUnauthorized: false } } }))
    const key = KEYS.find((k) => c.ownerOf(k) === 1)!
    expect(await kv(c.caches[0]!).getString(key)).toBe(reference(key))
    expect(kv(c.caches[0]!).stats()).toMatchObject({ peerLoads: 1, peerErrors: 0 })
  })
})

describe('listen() with serverTls', () => {
  it('serves https, and a cluster of listen() servers works over TLS', async () => {
    // self must be known before listen(): reserve two ports first.
    const ports = [await reservePort(), await reservePort()]
    const urls = ports.map((port) => `https://127.0.0.1:${port}`)
    const members = await Promise.all(
      ports.map(async (port, i) => {
        const cache = new Peercache({ env: {}, self: urls[i]!, peers: urls, hotCacheProbability: 0, coalesce: false, server: { tls: { key: trusted.key, cert: trusted.cert } }, transport: { tls: { ca: trusted.cert } } })
        caches.push(cache)
        cache.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => reference(key) })
        const server = await cache.listen(port, '127.0.0.1')
        expect(server).toBeInstanceOf(HttpsServer)
        return cache
      }),
    )
    for (const cache of members) {
      for (const key of KEYS) expect(await kv(cache).getString(key)).toBe(reference(key))
    }
    const [a, b] = members.map((m) => kv(m).stats())
    expect(a!.peerLoads + b!.peerLoads).toBe(KEYS.length)
    expect(a!.peerLoads).toBeGreaterThan(0)
    expect(a!.peerErrors + b!.peerErrors).toBe(0)

    // A client trusting the CA reads the endpoint; one that does not is refused by its own TLS check.
    const ok = new Client(urls[0]!, { connect: { ca: trusted.cert } })
    clients.push(ok)
    const answer = await ok.request({ method: 'GET', path: '/_groupcache/kv/direct' })
    expect(answer.statusCode).toBe(200)
    expect(text.decode(decodeGetResponse(new Uint8Array(await answer.body.arrayBuffer())).value)).toBe(reference('direct'))
    const untrusting = new Client(urls[0]!)
    clients.push(untrusting)
    await expect(untrusting.request({ method: 'GET', path: '/_groupcache/kv/direct' })).rejects.toThrow(/certificate/i)
  })
})
