/**
 * Busy is not dead, for every request kind (get, batch, set, remove, peek,
 * clear), on real servers on 127.0.0.1:
 *
 *  - an HttpPeer against a node:http server whose key handler is slow
 *    (HOLD_MS, well past the transport timeout) and whose base path (the
 *    liveness probe) answers at once: a request queued behind the slow ones,
 *    or one the server is silent on, is never held against the peer; a
 *    write or clear waits for it (up to loadTimeout, then a typed
 *    PeerLoadTimeoutError), a peek gives up;
 *  - against a black hole (accepts TCP, never answers) the liveness probe
 *    fails too, and the peer is marked down;
 *  - two Peercaches: a set to an owner busy with slow loads is stored there,
 *    the owner stays up, and the keys asked next load once, at the owner;
 *    with rings that disagree, a peer asked for keys its ring gives to the
 *    busy other one peeks it first: those peeks give up, and mark nobody down.
 *
 * Nothing here asserts a duration: the tests count marks-down, loads,
 * requests and the errors' classes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { HashRing, PeerLoadTimeoutError, PeerTimeoutError, type CacheEntry, type PeercacheEvents } from '../../src/index.js'
import { HttpPeer, type PeerClientOptions } from '../../src/peers/client.js'
import { encodeBatchResponse, encodeGetResponse } from '../../src/proto/codec.js'
import { startCluster, type Cluster, type MemberOptions } from '../helpers/cluster.js'
import { settle } from '../helpers/core-helpers.js'
import { startBlackHole } from '../helpers/failover-servers.js'
import { keysOwnedBy, startFakePeer, type FakePeer } from '../helpers/features-cluster.js'

const TIMEOUT = 200
/** How long the slow server holds a request it is slow on: far past TIMEOUT. */
const HOLD_MS = 4 * TIMEOUT
/** The pool's connections: CONNECTIONS slow gets fill them all. */
const CONNECTIONS = 2

const closers: Array<() => Promise<void>> = []
let cluster: Cluster | undefined

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
  await cluster?.close()
  cluster = undefined
})

const ENTRY: CacheEntry = { value: new TextEncoder().encode('v'), expiresAt: 0 }

/** A request kind: how to send it through an HttpPeer. */
interface Kind {
  name: string
  send(peer: HttpPeer, key: string): Promise<unknown>
}

const KINDS: Kind[] = [
  { name: 'get', send: (peer, key) => peer.get('kv', key, {}) },
  { name: 'batch', send: (peer, key) => peer.getMany('kv', [key, `${key}-2`], {}) },
  { name: 'set', send: (peer, key) => peer.set('kv', key, ENTRY, {}) },
  { name: 'remove', send: (peer, key) => peer.remove('kv', key, {}) },
  { name: 'clear', send: (peer) => peer.clear('kv', {}) },
]
/** The kinds that had no liveness check before (a silent get or batch: health.test.ts, batch-faults.test.ts). */
const WRITES = KINDS.filter((kind) => kind.name !== 'get' && kind.name !== 'batch')
const PEEK: Kind = { name: 'peek', send: (peer, key) => peer.peek('kv', key, {}) }

/**
 * A slow peer: a node:http server answering the way a peercache peer does,
 * after HOLD_MS for a request `isSlow` picks; the liveness probe (the base
 * path) and everything else at once.
 */
async function startSlowPeer(isSlow: (req: IncomingMessage) => boolean): Promise<FakePeer & { paths: string[] }> {
  const paths: string[] = []
  const peer = await startFakePeer((req, res) => {
    paths.push(`${req.method} ${req.url}`)
    req.resume()
    if (!isSlow(req)) return answer(req, res)
    const timer = setTimeout(() => answer(req, res), HOLD_MS)
    res.on('close', () => clearTimeout(timer))
  })
  closers.push(() => peer.close())
  return { ...peer, paths }
}

/** answer answers req as a peercache peer would (a value for a get, a miss for a peek). */
function answer(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? ''
  if (url.startsWith('/_peercache/peek/')) {
    res.writeHead(404, { 'x-peercache-error': 'not-cached' }).end()
  } else if (url.startsWith('/_peercache/batch/')) {
    res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(encodeBatchResponse([]))
  } else if (req.method === 'GET' && url.startsWith('/_groupcache/kv/')) {
    res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(encodeGetResponse({ value: ENTRY.value }))
  } else {
    res.writeHead(200).end('ok')
  }
}

const isKeyGet = (req: IncomingMessage): boolean => req.method === 'GET' && (req.url ?? '').startsWith('/_groupcache/kv/')

interface Client {
  peer: HttpPeer
  downs: Error[]
}

/** client makes an HttpPeer to url with small timeouts, recording its marks-down. */
function client(url: string, options: Partial<PeerClientOptions> = {}): Client {
  const downs: Error[] = []
  const listener = { down: (_peer: string, error: Error) => void downs.push(error), up: () => {} }
  const base: PeerClientOptions = { basePath: '/_groupcache/', timeout: TIMEOUT, maxResponseBytes: 1 << 20, connections: CONNECTIONS }
  // No background probe during a test: a mark-down stays visible.
  const peer = new HttpPeer(url, { ...base, ...options, health: { probeMinMs: 60_000, probeMaxMs: 60_000 } }, listener, () => 0.5)
  closers.push(() => peer.close())
  return { peer, downs }
}

/** fill sends CONNECTIONS gets of slow keys: they take every connection of the pool for HOLD_MS. */
function fill(peer: HttpPeer): Promise<{ ok: boolean }> {
  return settle(Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => peer.get('kv', `slow-${i}`, {}))))
}

describe('a request queued behind a busy peer’s slow answers', () => {
  it.each(KINDS)('$name: waits for the peer and gets its answer; the peer is never marked down', async ({ name, send }) => {
    const slow = await startSlowPeer((req) => isKeyGet(req) && (req.url ?? '').includes('slow-'))
    const { peer, downs } = client(slow.url)
    const filling = fill(peer)
    const outcome = await settle(send(peer, `queued-${name}`))
    expect(outcome).toMatchObject({ ok: true })
    expect(await filling).toMatchObject({ ok: true })
    expect(downs).toEqual([])
    expect(peer.health.up).toBe(true)
  })

  it('peek: gives up (it only saves a load), and the peer is not marked down', async () => {
    const slow = await startSlowPeer(isKeyGet)
    const { peer, downs } = client(slow.url)
    const filling = fill(peer)
    const outcome = await settle(PEEK.send(peer, 'queued-peek'))
    expect((outcome as { error: unknown }).error).toBeInstanceOf(PeerLoadTimeoutError)
    expect(await filling).toMatchObject({ ok: true })
    expect(downs).toEqual([])
    expect(slow.paths.filter((path) => path.includes('/_peercache/peek/'))).toEqual([]) // it gave up before it was sent
  })
})

describe('a request the peer is silent on while it answers the liveness probe', () => {
  it.each(WRITES)(
    '$name: past loadTimeout it fails with PeerLoadTimeoutError; the peer is never marked down',
    async ({ send }) => {
      const slow = await startSlowPeer((req) => !isKeyGet(req) && req.url !== '/_groupcache/')
      const { peer, downs } = client(slow.url, { loadTimeout: 2 * TIMEOUT })
      const outcome = await settle(send(peer, 'silent'))
      expect((outcome as { error: unknown }).error).toBeInstanceOf(PeerLoadTimeoutError)
      expect(downs).toEqual([])
      expect(slow.paths).toContain('GET /_groupcache/') // the liveness probe
    },
  )

  it.each(WRITES)('$name: within loadTimeout it gets the answer', async ({ send }) => {
    const slow = await startSlowPeer((req) => !isKeyGet(req) && req.url !== '/_groupcache/')
    const { peer, downs } = client(slow.url)
    expect(await settle(send(peer, 'silent'))).toMatchObject({ ok: true })
    expect(downs).toEqual([])
  })

  it('peek: gives up, and the peer is not marked down', async () => {
    const slow = await startSlowPeer((req) => (req.url ?? '').startsWith('/_peercache/peek/'))
    const { peer, downs } = client(slow.url)
    for (let i = 0; i < 4; i++) {
      const outcome = await settle(PEEK.send(peer, `silent-${i}`))
      expect((outcome as { error: unknown }).error).toBeInstanceOf(PeerLoadTimeoutError)
    }
    expect(downs).toEqual([])
  })
})

describe('a dead peer (a black hole: the liveness probe gets no answer either)', () => {
  it.each([...KINDS, PEEK])('$name: fails with PeerTimeoutError, and the peer is marked down', async ({ send }) => {
    const hole = await startBlackHole()
    closers.push(() => hole.close())
    const { peer, downs } = client(hole.url)
    const outcome = await settle(send(peer, 'dead'))
    const error = (outcome as { error: unknown }).error
    if (outcome.ok) expect((outcome.value as Map<string, unknown>).get('dead')).toBeInstanceOf(PeerTimeoutError) // a batch: each key's outcome
    else expect(error).toBeInstanceOf(PeerTimeoutError)
    expect(error).not.toBeInstanceOf(PeerLoadTimeoutError)
    expect(downs).toHaveLength(1)
    expect(hole.accepted()).toBeGreaterThan(1) // the request's connection and the probe's
  })
})

/** startSlowCluster runs two Peercaches with group `kv`, whose (tracked) loader takes HOLD_MS for keys starting `slow`. */
async function startSlowCluster(options: (index: number) => MemberOptions): Promise<Cluster> {
  const c = await startCluster(2, ({ cache, track }) => {
    cache.group({
      name: 'kv',
      cacheBytes: 1 << 20,
      load: track(async (key) => {
        if (key.startsWith('slow')) await new Promise((resolve) => setTimeout(resolve, HOLD_MS))
        return `v(${key})`
      }),
    })
  }, { options })
  cluster = c
  return c
}

describe('two Peercaches: a write to an owner busy with slow loads', () => {
  it('is stored there; the owner stays up and the keys asked next load once, at the owner', async () => {
    const c = await startSlowCluster(() => ({ transport: { timeoutMs: TIMEOUT, connections: 4 }, coalesce: false, hotCacheProbability: 0 }))
    const downs: Array<PeercacheEvents['peer-down']> = []
    c.caches[0]!.events.on('peer-down', (e) => downs.push(e))
    const slow = keysOwnedBy(c, 1, 8, 'slow')
    const [written] = keysOwnedBy(c, 1, 1, 'written')
    const loading = Promise.all(slow.map((key) => c.group(0).getString(key)))
    await c.group(0).set(written!, 'w')
    expect(await loading).toEqual(slow.map((key) => `v(${key})`))
    expect(c.group(1).peek(written!)).toBeDefined()
    const next = keysOwnedBy(c, 1, 10, 'next')
    for (const key of next) expect(await c.group(0).getString(key)).toBe(`v(${key})`)
    for (const key of [...slow, ...next]) expect(c.loadsOf(key), key).toBe(1)
    expect(c.loads[0]!.size).toBe(0)
    expect(downs).toEqual([])
  })
})

describe('two Peercaches whose rings disagree: peeks of an owner busy with slow loads', () => {
  it('give up without marking the owner down; every key is still answered', async () => {
    // Member 0 and member 1 place keys with different rings: a key member 0
    // sends to member 1 may be one member 1's ring gives to member 0, and
    // member 1 then peeks member 0 before loading it.
    const rings = [{ replicas: 1024 }, { replicas: 700 }]
    const c = await startSlowCluster((i) => ({ transport: { timeoutMs: TIMEOUT, connections: CONNECTIONS }, coalesce: false, hotCacheProbability: 0, ...rings[i] }))
    const [ring0, ring1] = rings.map((ring) => new HashRing(c.urls, ring)) as [HashRing, HashRing]
    const keys = (prefix: string, n: number, match: (key: string) => boolean): string[] => {
      const found: string[] = []
      for (let i = 0; found.length < n; i++) if (match(`${prefix}-${i}`)) found.push(`${prefix}-${i}`)
      return found
    }
    const downs: Array<PeercacheEvents['peer-down']> = []
    for (const cache of c.caches) cache.events.on('peer-down', (e) => downs.push(e))
    // Slow keys both rings give to member 0: member 1's gets of them take all its connections to member 0.
    const slow = keys('slow', CONNECTIONS, (key) => ring0.pick(key) === c.urls[0] && ring1.pick(key) === c.urls[0])
    // Keys member 0 sends to member 1, whose ring gives them back to member 0: member 1 peeks member 0.
    const disputed = keys('disputed', 4, (key) => ring0.pick(key) === c.urls[1] && ring1.pick(key) === c.urls[0])
    const loading = Promise.all(slow.map((key) => c.group(1).getString(key)))
    for (const key of disputed) expect(await c.group(0).getString(key)).toBe(`v(${key})`)
    expect(await loading).toEqual(slow.map((key) => `v(${key})`))
    expect(downs).toEqual([])
    for (const key of slow) expect(c.loadsOf(key), key).toBe(1)
  })
})
