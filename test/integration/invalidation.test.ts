/**
 * set and remove across real peers on loopback (issue 6): a remove reaches
 * the owner's main cache and every peer's hot cache and reports the peers it
 * could not reach; a set replaces the value at the owner and drops every
 * other copy; both speak mailgun's wire (PUT with a SetRequest body, DELETE
 * without a body); and neither lets a load that was in flight store its
 * stale value afterwards. Interleavings are forced with deferreds the test
 * settles (loaders that wait, requests held at a server), never with sleeps.
 */
import type { IncomingMessage, Server } from 'node:http'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Peercache, PeerError, serverUrl, type Group } from '../../src/index.js'
import { decodeSetRequest } from '../../src/proto/codec.js'
import { closeServer, listenLocal, startCluster, type Cluster } from '../helpers/cluster.js'
import { deferred, type Deferred } from '../helpers/core-helpers.js'
import {
  KEY_PREFIX,
  NS_PER_MS,
  gateRequests,
  keysOwnedBy,
  keysOwnedIn,
  readInt64Field,
  readRequestBody,
  recordRequests,
  startFakePeer,
  textOf,
  type FakePeer,
} from '../helpers/features-cluster.js'

const T0 = Date.UTC(2030, 5, 1, 8, 30, 0, 7)
const text = new TextEncoder()

let cluster: Cluster | undefined
let now = T0

/** Held loads: the next loader call for a key waits for the test to release it. */
interface Hold {
  /** Resolves when the loader has been called (the load is in flight). */
  started: Promise<void>
  /** Makes the held load return `value`. */
  release(value: string): void
}
let holds: Map<string, { started: Deferred<void>; value: Deferred<string> }>

beforeEach(() => {
  holds = new Map()
  now = T0
})

afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

/** hold makes the next loader call for key (on whichever member runs it) wait until released. */
function hold(key: string): Hold {
  const entry = { started: deferred<void>(), value: deferred<string>() }
  holds.set(key, entry)
  return { started: entry.started.promise, release: (value) => entry.value.resolve(value) }
}

/** startKv starts 3 members with group `kv`: tracked loader `v(key)` (or a held value), hot mirroring always on, clock `now`. */
async function startKv(): Promise<Cluster> {
  const c = await startCluster(
    3,
    ({ cache, track }) => {
      cache.group({
        name: 'kv',
        cacheBytes: 1 << 20,
        load: track(async (key) => {
          const held = holds.get(key)
          if (held === undefined) return `v(${key})`
          holds.delete(key)
          held.started.resolve()
          return held.value.promise
        }),
      })
    },
    { options: { hotCacheProbability: 1, clock: () => now } },
  )
  cluster = c
  return c
}

/** peekText returns member i's cached value of key as text, or undefined. */
function peekText(c: Cluster, i: number, key: string): string | undefined {
  return textOf(c.group(i).peek(key))
}

/** warmEverywhere gets key from every member: the owner holds it in main, the others in hot. */
async function warmEverywhere(c: Cluster, key: string): Promise<void> {
  for (let i = 0; i < c.caches.length; i++) expect(await c.group(i).getString(key)).toBe(`v(${key})`)
  for (let i = 0; i < c.caches.length; i++) expect(peekText(c, i, key)).toBe(`v(${key})`)
  const owner = c.ownerOf(key)
  expect(c.loads[owner]!.get(key)).toBe(1)
  expect(c.loadsOf(key)).toBe(1)
}

describe('remove', () => {
  it('from a non-owner drops the key from the owner’s main and every peer’s hot cache', async () => {
    const c = await startKv()
    const [key] = keysOwnedBy(c, 0, 1, 'rm') as [string]
    await warmEverywhere(c, key)
    const logs = c.servers.map((server) => recordRequests(server))

    const report = await c.group(1).remove(key)
    expect(report).toEqual({ unreachable: [] })
    for (let i = 0; i < 3; i++) expect(c.group(i).peek(key), `member ${i}`).toBeUndefined()
    // One DELETE to the owner and one to the other peer; none to the remover itself.
    expect(logs.map((log) => log.count('DELETE', KEY_PREFIX))).toEqual([1, 0, 1])

    // The next get reloads at the owner.
    expect(await c.group(2).getString(key)).toBe(`v(${key})`)
    expect(c.loads[0]!.get(key)).toBe(2)
    expect(c.loadsOf(key)).toBe(2)
  })

  it('from the owner drops every peer’s hot copy too', async () => {
    const c = await startKv()
    const [key] = keysOwnedBy(c, 0, 1, 'rm-own') as [string]
    await warmEverywhere(c, key)
    expect(await c.group(0).remove(key)).toEqual({ unreachable: [] })
    for (let i = 0; i < 3; i++) expect(c.group(i).peek(key), `member ${i}`).toBeUndefined()
    expect(await c.group(1).getString(key)).toBe(`v(${key})`)
    expect(c.loads[0]!.get(key)).toBe(2)
  })

  it('names a stopped peer as unreachable and still cleans the others', async () => {
    const c = await startKv()
    const [key] = keysOwnedBy(c, 0, 1, 'rm-down') as [string]
    await warmEverywhere(c, key)
    await c.stop(2)

    const report = await c.group(1).remove(key)
    expect(report.unreachable.map((u) => u.peer)).toEqual([c.urls[2]])
    expect(report.unreachable[0]!.error).toBeInstanceOf(PeerError)
    expect(c.group(0).peek(key)).toBeUndefined()
    expect(c.group(1).peek(key)).toBeUndefined()
    expect(await c.group(1).getString(key)).toBe(`v(${key})`)
    expect(c.loads[0]!.get(key)).toBe(2)
  })

  it('names a stopped owner as unreachable and still cleans every other peer', async () => {
    const c = await startKv()
    const [key] = keysOwnedBy(c, 0, 1, 'rm-owner-down') as [string]
    await warmEverywhere(c, key)
    await c.stop(0)

    const report = await c.group(1).remove(key)
    expect(report.unreachable.map((u) => u.peer)).toEqual([c.urls[0]])
    expect(c.group(1).peek(key)).toBeUndefined()
    expect(c.group(2).peek(key)).toBeUndefined()
  })
})

describe('set', () => {
  it('from a non-owner replaces the value everywhere: no peer serves its old hot copy', async () => {
    const c = await startKv()
    const [key] = keysOwnedBy(c, 0, 1, 'set') as [string]
    await warmEverywhere(c, key)

    expect(await c.group(1).set(key, 'new')).toEqual({ unreachable: [] })
    expect(peekText(c, 0, key)).toBe('new')
    expect(c.group(1).peek(key)).toBeUndefined()
    expect(c.group(2).peek(key)).toBeUndefined()
    for (let i = 0; i < 3; i++) expect(await c.group(i).getString(key), `member ${i}`).toBe('new')
    expect(c.loadsOf(key)).toBe(1) // the owner's loader was not called again
  })

  it('from the owner stores it in main and drops the other peers’ hot copies', async () => {
    const c = await startKv()
    const [key] = keysOwnedBy(c, 0, 1, 'set-own') as [string]
    await warmEverywhere(c, key)
    expect(await c.group(0).set(key, text.encode('new'))).toEqual({ unreachable: [] })
    for (let i = 0; i < 3; i++) expect(await c.group(i).getString(key), `member ${i}`).toBe('new')
    expect(c.loadsOf(key)).toBe(1)
  })

  it('rejects with a PeerError when the owner cannot be reached', async () => {
    const c = await startKv()
    const [key] = keysOwnedBy(c, 0, 1, 'set-down') as [string]
    await c.stop(0)
    await expect(c.group(1).set(key, 'new')).rejects.toBeInstanceOf(PeerError)
  })

  it('with { ttl } expires at every peer (injected clock)', async () => {
    const c = await startKv()
    const [key] = keysOwnedBy(c, 0, 1, 'set-ttl') as [string]
    await c.group(1).set(key, 'new', { ttl: 100 })
    now = T0 + 99
    for (let i = 0; i < 3; i++) expect(await c.group(i).getString(key), `member ${i}`).toBe('new')
    expect(peekText(c, 2, key)).toBe('new') // mirrored with the expiry it was set with
    now = T0 + 100
    for (let i = 0; i < 3; i++) expect(c.group(i).peek(key), `member ${i}`).toBeUndefined()
    expect(await c.group(2).getString(key)).toBe(`v(${key})`)
    expect(c.loads[0]!.get(key)).toBe(1)
  })
})

describe('the wire: mailgun’s PUT and DELETE', () => {
  interface Received {
    method: string
    url: string
    contentType: string | undefined
    contentLength: string | undefined
    body: Uint8Array
  }
  let fake: FakePeer | undefined
  let cache: Peercache | undefined
  let server: Server | undefined
  let received: Received[]

  afterEach(async () => {
    await cache?.close()
    if (server !== undefined) await closeServer(server)
    await fake?.close()
    cache = undefined
    server = undefined
    fake = undefined
  })

  /** startSelf starts the real member's server and Peercache, with `peer` as the only other peer. */
  async function startSelf(peer: string): Promise<{ group: Group; self: string }> {
    server = await listenLocal()
    const self = serverUrl(server)
    cache = new Peercache({ env: {}, self, peers: [self, peer], clock: () => now })
    server.on('request', cache.handler())
    const group = cache.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => `v(${key})` })
    return { group, self }
  }

  /** One real Peercache and a plain node:http server playing the other peer, recording what it receives. */
  async function setup(): Promise<{ group: Group; self: string; peer: string }> {
    received = []
    fake = await startFakePeer((req: IncomingMessage, res) => {
      void readRequestBody(req).then((body) => {
        received.push({
          method: req.method ?? '',
          url: req.url ?? '',
          contentType: req.headers['content-type'],
          contentLength: req.headers['content-length'],
          body,
        })
        res.statusCode = 200
        res.setHeader('Content-Length', 0)
        res.end()
      })
    })
    const { group, self } = await startSelf(fake.url)
    return { group, self, peer: fake.url }
  }

  it('set sends PUT {basePath}{group}/{key} with a SetRequest body (group, key, value, expire in ns)', async () => {
    const { group, self, peer } = await setup()
    const [key] = keysOwnedIn([self, peer], peer, 1, 'dir/a b+ü') as [string]

    expect(await group.set(key, 'hello', { ttl: 1500 })).toEqual({ unreachable: [] })
    expect(received).toHaveLength(1)
    const put = received[0]!
    expect(put.method).toBe('PUT')
    expect(put.url).toBe(`${KEY_PREFIX}kv/${encodeURIComponent(key)}`)
    expect(put.contentType).toBe('application/x-protobuf')
    expect(decodeSetRequest(put.body)).toEqual({ group: 'kv', key, value: text.encode('hello'), expiresAt: T0 + 1500 })
    expect(readInt64Field(put.body, 4)).toBe(BigInt(T0 + 1500) * NS_PER_MS)

    // Without a ttl (group ttl 0) the expire field is absent: never expires.
    await group.set(key, text.encode('again'))
    const second = received[1]!
    expect(readInt64Field(second.body, 4)).toBeUndefined()
    expect(decodeSetRequest(second.body)).toEqual({ group: 'kv', key, value: text.encode('again'), expiresAt: 0 })

    // An absolute expiresAt travels as given.
    await group.set(key, 'abs', { expiresAt: T0 + 777 })
    expect(readInt64Field(received[2]!.body, 4)).toBe(BigInt(T0 + 777) * NS_PER_MS)
  })

  it('remove sends DELETE {basePath}{group}/{key} without a body', async () => {
    const { group, self, peer } = await setup()
    const [key] = keysOwnedIn([self, peer], peer, 1, 'gone/ü x') as [string]

    expect(await group.remove(key)).toEqual({ unreachable: [] })
    expect(received).toHaveLength(1)
    const del = received[0]!
    expect(del.method).toBe('DELETE')
    expect(del.url).toBe(`${KEY_PREFIX}kv/${encodeURIComponent(key)}`)
    expect(del.body.byteLength).toBe(0)
    expect(del.contentLength === undefined || del.contentLength === '0').toBe(true)
    expect(del.contentType).toBeUndefined()
  })

  it('set of a key this process owns keeps it in main and DELETEs the other peer’s copy', async () => {
    const { group, self, peer } = await setup()
    const [key] = keysOwnedIn([self, peer], self, 1, 'mine') as [string]
    await group.set(key, 'local')
    expect(received.map((r) => r.method)).toEqual(['DELETE'])
    expect(received[0]!.body.byteLength).toBe(0)
    expect(textOf(group.peek(key))).toBe('local')
  })

  it('a peer answering a non-200 to DELETE is reported unreachable', async () => {
    received = []
    fake = await startFakePeer((_req, res) => {
      res.statusCode = 500
      res.end('boom\n')
    })
    const { group } = await startSelf(fake.url)
    const report = await group.remove('anything')
    expect(report.unreachable.map((u) => u.peer)).toEqual([fake.url])
    expect(report.unreachable[0]!.error).toBeInstanceOf(PeerError)
  })
})

describe('a write racing a load in flight', () => {
  it('(a) remove during the owner’s own load: the stale value never lands', async () => {
    const c = await startKv()
    const [key] = keysOwnedBy(c, 0, 1, 'race-a') as [string]
    const held = hold(key)
    const pending = c.group(0).getString(key)
    await held.started

    expect(await c.group(0).remove(key)).toEqual({ unreachable: [] })
    held.release('old')
    // The get asked before the remove: it may see 'old'. Nothing may keep it.
    expect(['old', `v(${key})`]).toContain(await pending)
    for (let i = 0; i < 3; i++) expect(c.group(i).peek(key), `member ${i}`).toBeUndefined()
    expect(await c.group(0).getString(key)).toBe(`v(${key})`)
    expect(c.loads[0]!.get(key)).toBe(2)
  })

  it('(b) set during the owner’s own load: the set value stays', async () => {
    const c = await startKv()
    const [key] = keysOwnedBy(c, 0, 1, 'race-b') as [string]
    const held = hold(key)
    const pending = c.group(0).getString(key)
    await held.started

    await c.group(0).set(key, 'new')
    held.release('old')
    expect(['old', 'new']).toContain(await pending)
    expect(peekText(c, 0, key)).toBe('new')
    for (let i = 0; i < 3; i++) expect(await c.group(i).getString(key), `member ${i}`).toBe('new')
    expect(c.loads[0]!.get(key)).toBe(1)
  })

  it('(c) remove from a third peer while an asker waits on the owner’s load: neither keeps it', async () => {
    const c = await startKv()
    const [key] = keysOwnedBy(c, 1, 1, 'race-c') as [string] // owner B = 1, asker A = 0, remover C = 2
    const held = hold(key)
    const pending = c.group(0).getString(key)
    await held.started

    expect(await c.group(2).remove(key)).toEqual({ unreachable: [] })
    held.release('old')
    expect(['old', `v(${key})`]).toContain(await pending)
    expect(c.group(1).peek(key)).toBeUndefined()
    expect(c.group(0).peek(key)).toBeUndefined()
    expect(c.group(2).peek(key)).toBeUndefined()

    expect(await c.group(0).getString(key)).toBe(`v(${key})`)
    expect(c.loads[1]!.get(key)).toBe(2)
    expect(c.loadsOf(key)).toBe(2)
  })

  it('(d) set from a third peer while an asker waits on the owner’s load: every peer then reads the set value', async () => {
    const c = await startKv()
    const [key] = keysOwnedBy(c, 1, 1, 'race-d') as [string]
    const held = hold(key)
    const pending = c.group(0).getString(key)
    await held.started

    await c.group(2).set(key, 'new')
    held.release('old')
    expect(['old', 'new']).toContain(await pending)
    expect(peekText(c, 1, key)).toBe('new')
    expect(c.group(0).peek(key)).toBeUndefined()
    for (let i = 0; i < 3; i++) expect(await c.group(i).getString(key), `member ${i}`).toBe('new')
    expect(c.loadsOf(key)).toBe(1)
  })

  it('(e) a get on the remover that reaches the owner before the DELETE does not keep the old value', async () => {
    const c = await startKv()
    const [key] = keysOwnedBy(c, 1, 1, 'race-e') as [string] // owner 1, writer 0
    await warmEverywhere(c, key)
    // Hold the DELETE at the owner: the writer's own get overtakes it.
    const gate = gateRequests(c.servers[1]!, c.caches[1]!.handler(), (req) => req.method === 'DELETE')
    const removing = c.group(0).remove(key)
    await gate.arrived
    expect(await c.group(0).getString(key)).toBe(`v(${key})`) // served by the owner, before its DELETE
    gate.open()
    expect(await removing).toEqual({ unreachable: [] })

    for (let i = 0; i < 3; i++) expect(c.group(i).peek(key), `member ${i}`).toBeUndefined()
  })

  it('(f) a get on the setter that reaches the owner before the PUT does not keep the old value', async () => {
    const c = await startKv()
    const [key] = keysOwnedBy(c, 1, 1, 'race-f') as [string]
    await warmEverywhere(c, key)
    const gate = gateRequests(c.servers[1]!, c.caches[1]!.handler(), (req) => req.method === 'PUT')
    const setting = c.group(0).set(key, 'new')
    await gate.arrived
    expect(await c.group(0).getString(key)).toBe(`v(${key})`)
    gate.open()
    expect(await setting).toEqual({ unreachable: [] })

    for (let i = 0; i < 3; i++) expect(await c.group(i).getString(key), `member ${i}`).toBe('new')
  })
})
