/**
 * The hot cache across real peers: owners fill minute_qps in their answers
 * (per key and in batches), askers read it, a Go-shaped answer without it
 * still works, and frequency-aware admission keeps groupcache's hot budget
 * rule. Real node:http servers on 127.0.0.1, real undici clients.
 */
import type { Server } from 'node:http'
import { afterEach, describe, expect, it, onTestFinished } from 'vitest'
import { Peercache, serverUrl, type Group, type PeerEntry } from '../../src/index.js'
import { encodeGetResponse } from '../../src/proto/codec.js'
import { closeServer, kvGroup, listenLocal, reference, startCluster, type Cluster } from '../helpers/cluster.js'
import { mulberry32 } from '../helpers/core-helpers.js'
import { peerClient } from '../helpers/peer-client.js'

let cluster: Cluster | undefined
const servers: Server[] = []
const caches: Peercache[] = []

afterEach(async () => {
  await cluster?.close()
  cluster = undefined
  await Promise.all(caches.splice(0).map((cache) => cache.close()))
  await Promise.all(servers.splice(0).map((server) => closeServer(server)))
})

/** keyOwnedElsewhere finds a key member `index` does not own. */
function keyOwnedElsewhere(c: Cluster, index: number, prefix = 'k'): string {
  for (let i = 0; ; i++) if (c.caches[index]!.ownerOf(`${prefix}${i}`) !== c.urls[index]) return `${prefix}${i}`
}

describe('minute_qps between peercache peers', () => {
  it('an owner tells each answer its key\'s request rate, per key and in batches, and it grows with the requests', async () => {
    cluster = await startCluster(2, kvGroup(), { options: { coalesce: false } })
    const key = keyOwnedElsewhere(cluster, 0)
    const owner = peerClient(cluster.caches[0]!.ownerOf(key)!)
    onTestFinished(() => owner.close())
    const first = (await owner.get('kv', key, { coalesce: false })) as PeerEntry
    expect(new TextDecoder().decode(first.value)).toBe(reference(key))
    expect(first.minuteQps).toBeGreaterThan(0)
    let last = first
    for (let i = 0; i < 5; i++) last = (await owner.get('kv', key, { coalesce: false })) as PeerEntry
    expect(last.minuteQps).toBeGreaterThan(first.minuteQps!)

    const batched = await owner.getMany('kv', [key, `${key}-other`], {})
    const entry = batched.get(key) as PeerEntry
    expect(entry.minuteQps).toBeGreaterThan(last.minuteQps!)
    expect((batched.get(`${key}-other`) as PeerEntry).minuteQps).toBeGreaterThan(0)
  })

  it('a get mirrors the owner\'s value in hot while there is room (frequency admission is the default)', async () => {
    cluster = await startCluster(2, kvGroup())
    const key = keyOwnedElsewhere(cluster, 0)
    await expect(cluster.group(0).getString(key)).resolves.toBe(reference(key))
    expect(cluster.group(0).stats().hot.items).toBe(1)
    const served = cluster.group(1).stats().serverRequests
    await expect(cluster.group(0).getString(key)).resolves.toBe(reference(key))
    expect(cluster.group(1).stats().serverRequests).toBe(served) // answered from hot
  })
})

describe('a Go-shaped owner', () => {
  it('an answer without minute_qps (as Go groupcache sends) is a value like any other, and is mirrored', async () => {
    // The owner speaks exactly Go's GetResponse{value}: field 1 only.
    const goPeer = await listenLocal()
    servers.push(goPeer)
    let requests = 0
    goPeer.on('request', (req, res) => {
      requests++
      const body = encodeGetResponse({ value: new TextEncoder().encode('from go') })
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': body.byteLength })
      res.end(body)
    })
    const self = await listenLocal()
    servers.push(self)
    const peers = [serverUrl(self), serverUrl(goPeer)]
    const cache = new Peercache({ env: {}, self: peers[0]!, peers, coalesce: false })
    caches.push(cache)
    self.on('request', cache.handler())
    const group = cache.group({ name: 'kv', cacheBytes: 1 << 20, load: () => 'local' })
    let key = 'k0'
    for (let i = 0; cache.ownerOf(key) === cache.self; i++) key = `k${i}`
    const client = peerClient(cache.ownerOf(key)!)
    const entry = (await client.get('kv', key, {}).finally(() => client.close())) as PeerEntry
    expect(entry.minuteQps).toBeUndefined()
    expect(Object.keys(entry).sort()).toEqual(['expiresAt', 'value'])

    await expect(group.getString(key)).resolves.toBe('from go')
    await expect(group.getString(key)).resolves.toBe('from go')
    expect(requests).toBe(2) // one direct ask above, one get; the second get was a hot hit
    expect(group.stats()).toMatchObject({ peerLoads: 1, peerErrors: 0, hot: { items: 1 } })
  })
})

describe('hot budget rule with frequency admission', () => {
  it('main + hot stay within cacheBytes and hot within about 1/8 of main once full, under Zipf gets from every peer', async () => {
    const cacheBytes = 32 * 1024
    cluster = await startCluster(3, kvGroup({ cacheBytes }))
    const random = mulberry32(0x5eed)
    const keys = 1000
    const groups: Group[] = [0, 1, 2].map((i) => cluster!.group(i))
    for (let step = 0; step < 1500; step++) {
      const rank = Math.floor(keys ** random()) // heavy head, long tail
      const g = groups[step % 3]!
      await g.getString(`item-${rank}`)
      const { main, hot } = g.stats()
      expect(main.bytes + hot.bytes).toBeLessThanOrEqual(cacheBytes)
    }
    for (const g of groups) {
      const { main, hot } = g.stats()
      expect(main.evictions + hot.evictions).toBeGreaterThan(0) // the budget was full
      expect(hot.items).toBeGreaterThan(0)
      // One entry of slack: hot gives way only once it is over its share.
      expect(hot.bytes).toBeLessThanOrEqual(main.bytes / 8 + 600)
    }
  })
})
