/**
 * Batch gets across real peers on loopback (issue 6): getMany asks each owner
 * once, in one POST to /_peercache/batch/{group}; single gets of one tick to
 * one owner are coalesced into one such request (unless `coalesce: false`);
 * a peer that answers the batch path a bare 404 (a Go peer) is detected once
 * and asked key by key from then on. HTTP requests are counted at each
 * server, where they arrive (serverRequests counts keys, not requests).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { LoadError, NotFoundError, Peercache, serverUrl, type Group } from '../../src/index.js'
import { decodeBatchRequest, encodeGetResponse } from '../../src/proto/codec.js'
import { closeServer, listenLocal, startCluster, type Cluster, type MemberOptions } from '../helpers/cluster.js'
import { deferred, type Deferred } from '../helpers/core-helpers.js'
import {
  BATCH_PREFIX,
  KEY_PREFIX,
  keysOwnedBy,
  keysOwnedIn,
  readRequestBody,
  recordRequests,
  startFakePeer,
  textOf,
  type FakePeer,
  type RequestLog,
} from '../helpers/features-cluster.js'

let cluster: Cluster | undefined
/** Keys whose next load waits for the test (see hold). */
let holds = new Map<string, { started: Deferred<void>; release: Deferred<void> }>()

afterEach(async () => {
  await cluster?.close()
  cluster = undefined
  holds = new Map()
})

/**
 * The loader of every member: `missing-*` keys are not found, `fail-*` keys
 * fail, held keys wait for the test, anything else is `v(key)`.
 */
async function load(key: string): Promise<string> {
  if (key.startsWith('missing')) throw new NotFoundError(`no row for ${key}`)
  if (key.startsWith('fail')) throw new Error('database is down')
  const held = holds.get(key)
  if (held !== undefined) {
    holds.delete(key)
    held.started.resolve()
    await held.release.promise
  }
  return `v(${key})`
}

interface Started {
  c: Cluster
  logs: RequestLog[]
}

/** start runs 3 members with group `kv` (tracked `load`), logging the requests of every server. */
async function start(options: MemberOptions = {}, group: { coalesce?: boolean } = {}): Promise<Started> {
  const c = await startCluster(
    3,
    ({ cache, track }) => {
      cache.group({ name: 'kv', cacheBytes: 1 << 20, ...group, load: track(load) })
    },
    { options: { hotCacheProbability: 0, ...options } },
  )
  cluster = c
  return { c, logs: c.servers.map((server) => recordRequests(server)) }
}

const text = textOf

describe('getMany', () => {
  it('fetches 100 keys across 3 peers with one batch request per other owner', async () => {
    const { c, logs } = await start()
    const keys = Array.from({ length: 100 }, (_, i) => `item-${i}`)
    const owners = [0, 1, 2].map((i) => keys.filter((key) => c.ownerOf(key) === i).length)
    expect(owners.every((n) => n > 1)).toBe(true) // every member owns a share

    const found = await c.group(0).getMany(keys)
    expect(found.size).toBe(100)
    for (const key of keys) expect(text(found.get(key)), key).toBe(`v(${key})`)

    expect(logs[1]!.count('POST', `${BATCH_PREFIX}kv`)).toBe(1)
    expect(logs[2]!.count('POST', `${BATCH_PREFIX}kv`)).toBe(1)
    for (const log of logs) expect(log.count('GET')).toBe(0)
    expect(logs[0]!.all).toEqual([]) // peer 0's own keys never leave it
    // Each key was loaded once, at its owner.
    for (const key of keys) expect(c.loads[c.ownerOf(key)]!.get(key), key).toBe(1)
    expect(c.totalLoads()).toBe(100)
    expect(c.group(1).stats().serverRequests).toBe(owners[1])
    expect(c.group(2).stats().serverRequests).toBe(owners[2])
    expect(c.group(0).stats().peerLoads).toBe(owners[1]! + owners[2]!)
  })

  it('leaves keys the origin does not have out of the Map', async () => {
    const { c, logs } = await start()
    const present = keysOwnedBy(c, 1, 3, 'here')
    const missingRemote = keysOwnedBy(c, 1, 2, 'missing-r')
    const missingLocal = keysOwnedBy(c, 0, 1, 'missing-l')
    const found = await c.group(0).getMany([...present, ...missingRemote, ...missingLocal])
    expect([...found.keys()].sort()).toEqual([...present].sort())
    expect(logs[1]!.count('POST', BATCH_PREFIX)).toBe(1)
    // Not found is the owner's final answer: nobody loaded it a second time.
    for (const key of missingRemote) expect(c.loadsOf(key)).toBe(1)
  })

  it('rejects with LoadError when an owner’s loader fails for a key', async () => {
    const { c } = await start()
    const ok = keysOwnedBy(c, 1, 3, 'fine')
    const [failing] = keysOwnedBy(c, 2, 1, 'fail') as [string]
    await expect(c.group(0).getMany([...ok, failing])).rejects.toBeInstanceOf(LoadError)
    // The owner's failure is final: the asker did not load it itself.
    expect(c.loads[0]!.get(failing)).toBeUndefined()
    expect(c.loads[2]!.get(failing)).toBe(1)
  })

  it('rejects with LoadError when the asker’s own loader fails for one of its keys', async () => {
    const { c } = await start()
    const [failing] = keysOwnedBy(c, 0, 1, 'fail-own') as [string]
    await expect(c.group(0).getMany([...keysOwnedBy(c, 1, 2, 'fine'), failing])).rejects.toBeInstanceOf(LoadError)
  })

  it('fetches duplicate keys once', async () => {
    const { c, logs } = await start()
    const [a, b] = keysOwnedBy(c, 1, 2, 'dup') as [string, string]
    const found = await c.group(0).getMany([a, a, b, b, a])
    expect([...found.keys()]).toEqual([a, b])
    expect(logs[1]!.count('POST', BATCH_PREFIX)).toBe(1)
    expect(c.group(1).stats().serverRequests).toBe(2)
    expect(c.loadsOf(a)).toBe(1)
    expect(c.loadsOf(b)).toBe(1)
  })

  it('joins keys already in flight for single gets instead of fetching them again', async () => {
    const { c, logs } = await start()
    const [busy, x, y] = keysOwnedBy(c, 1, 3, 'join') as [string, string, string]
    const held = { started: deferred<void>(), release: deferred<void>() }
    holds.set(busy, held)
    const single = c.group(0).getString(busy)
    await held.started.promise // the owner is loading `busy` for the single get

    const many = c.group(0).getMany([busy, x, y])
    // x and y are fetched while busy is still held: one batch of exactly those two.
    await logs[1]!.arrival((r) => r.method === 'POST')
    held.release.resolve()
    expect(text((await many).get(busy))).toBe(`v(${busy})`)
    expect(await single).toBe(`v(${busy})`)
    expect(c.loadsOf(busy)).toBe(1)
    expect(c.group(1).stats().serverRequests).toBe(3) // busy once, x, y
    expect(logs[1]!.count('GET', KEY_PREFIX)).toBe(1) // the single get of busy
    expect(logs[1]!.count('POST', BATCH_PREFIX)).toBe(1) // x and y
  })
})

describe('coalescing of single gets', () => {
  it('sends 50 gets of one tick to one owner as one batch request', async () => {
    const { c, logs } = await start()
    const keys = keysOwnedBy(c, 2, 50, 'tick')
    const values = await Promise.all(keys.map((key) => c.group(0).getString(key)))
    expect(values).toEqual(keys.map((key) => `v(${key})`))
    expect(logs[2]!.count('POST', `${BATCH_PREFIX}kv`)).toBe(1)
    expect(logs[2]!.count('GET')).toBe(0)
    expect(c.group(2).stats().serverRequests).toBe(50)
  })

  it('groups one tick’s gets per owner: one batch to each', async () => {
    const { c, logs } = await start()
    const keys = [...keysOwnedBy(c, 1, 10, 'pair'), ...keysOwnedBy(c, 2, 10, 'pair')]
    await Promise.all(keys.map((key) => c.group(0).get(key)))
    expect(logs[1]!.count('POST', BATCH_PREFIX)).toBe(1)
    expect(logs[2]!.count('POST', BATCH_PREFIX)).toBe(1)
    expect(logs[1]!.count('GET') + logs[2]!.count('GET')).toBe(0)
  })

  it('sends a lone get as a plain GET (what any groupcache peer understands)', async () => {
    const { c, logs } = await start()
    const [key] = keysOwnedBy(c, 1, 1, 'lone') as [string]
    expect(await c.group(0).getString(key)).toBe(`v(${key})`)
    expect(logs[1]!.count('GET', KEY_PREFIX)).toBe(1)
    expect(logs[1]!.count('POST')).toBe(0)
  })

  it('with coalesce: false on the Peercache sends 50 GETs', async () => {
    const { c, logs } = await start({ coalesce: false })
    const keys = keysOwnedBy(c, 2, 50, 'nocoal')
    await Promise.all(keys.map((key) => c.group(0).get(key)))
    expect(logs[2]!.count('GET', KEY_PREFIX)).toBe(50)
    expect(logs[2]!.count('POST')).toBe(0)
  })

  it('with coalesce: false on the group sends 50 GETs', async () => {
    const { c, logs } = await start({}, { coalesce: false })
    const keys = keysOwnedBy(c, 2, 50, 'nocoal-g')
    await Promise.all(keys.map((key) => c.group(0).get(key)))
    expect(logs[2]!.count('GET', KEY_PREFIX)).toBe(50)
    expect(logs[2]!.count('POST')).toBe(0)
  })

  it('settles each coalesced get with its own key’s answer (value, not found, load error)', async () => {
    const { c } = await start()
    const [good] = keysOwnedBy(c, 1, 1, 'mix') as [string]
    const [missing] = keysOwnedBy(c, 1, 1, 'missing-mix') as [string]
    const [failing] = keysOwnedBy(c, 1, 1, 'fail-mix') as [string]
    const group = c.group(0)
    const [a, b, f] = await Promise.allSettled([group.getString(good), group.getString(missing), group.getString(failing)])
    expect(a).toEqual({ status: 'fulfilled', value: `v(${good})` })
    expect(b.status === 'rejected' && b.reason instanceof NotFoundError).toBe(true)
    expect(f.status === 'rejected' && f.reason instanceof LoadError).toBe(true)
    expect(c.loads[0]!.size).toBe(0) // final answers: no local fallback
  })
})

describe('a peer without the batch endpoint (bare 404)', () => {
  let fake: FakePeer | undefined
  let cache: Peercache | undefined
  let selfServer: Awaited<ReturnType<typeof listenLocal>> | undefined

  afterEach(async () => {
    await cache?.close()
    if (selfServer !== undefined) await closeServer(selfServer)
    await fake?.close()
    cache = undefined
    selfServer = undefined
    fake = undefined
  })

  it('is detected once: first getMany tries one batch then asks per key, the second asks per key only', async () => {
    const batchBodies: string[][] = []
    fake = await startFakePeer((req, res) => {
      const url = req.url ?? ''
      if (req.method === 'GET' && url.startsWith(`${KEY_PREFIX}kv/`)) {
        const key = decodeURIComponent(url.slice(`${KEY_PREFIX}kv/`.length))
        const body = encodeGetResponse({ value: new TextEncoder().encode(`go(${key})`) })
        res.writeHead(200, { 'Content-Type': 'application/x-protobuf', 'Content-Length': body.byteLength })
        res.end(body)
        return
      }
      // Go's mux: anything else is a plain 404, without our marker header.
      void readRequestBody(req).then((body) => {
        if (url.startsWith(BATCH_PREFIX)) batchBodies.push(decodeBatchRequest(body))
        res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' })
        res.end('404 page not found\n')
      })
    })
    const log = recordRequests(fake.server)
    selfServer = await listenLocal()
    const self = serverUrl(selfServer)
    // A cluster with a Go peer runs Go's ring.
    cache = new Peercache({ env: {}, self, peers: [self, fake.url], hotCacheProbability: 0, ring: 'groupcache' })
    selfServer.on('request', cache.handler())
    const group: Group = cache.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => `local(${key})` })
    const keys = keysOwnedIn([self, fake.url], fake.url, 4, 'go', { ring: 'groupcache' })

    const first = await group.getMany(keys)
    expect([...first.entries()].map(([k, v]) => [k, text(v)])).toEqual(keys.map((key) => [key, `go(${key})`]))
    expect(log.count('POST', BATCH_PREFIX)).toBe(1)
    expect(batchBodies).toEqual([keys])
    expect(log.count('GET', KEY_PREFIX)).toBe(4)
    expect(group.stats().peerErrors).toBe(0) // a bare 404 on the batch path is not a failure
    expect(group.stats().localLoads).toBe(0)

    log.clear()
    const second = await group.getMany(keys)
    expect(second.size).toBe(4)
    expect(log.count('POST')).toBe(0)
    expect(log.count('GET', KEY_PREFIX)).toBe(4)

    // Coalesced single gets to that peer go per key too.
    log.clear()
    await Promise.all(keys.map((key) => group.get(key)))
    expect(log.count('POST')).toBe(0)
    expect(log.count('GET', KEY_PREFIX)).toBe(4)
    expect(cache.metrics()).toContain(`peercache_peer_up{peer="${fake.url}"} 1`)
  })
})
