/**
 * Keys that are hard to carry in a URL path must round-trip exactly between
 * two real peers: the owner's loader sees the very key asked, the value comes
 * back right, and it really came from the owner (peerLoads), not from a
 * local fallback after a peer error.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Server } from 'node:http'
import { HashRing, Peercache, serverUrl } from '../../src/index.js'
import { closeServer, kvGroup, listenLocal, reference, startCluster, type Cluster } from '../helpers/cluster.js'

/** A 64 KiB key: 65 536 bytes of UTF-8 exactly, mostly 2-byte characters (each percent-encoded to 6 bytes). */
const BIG_KEY = `${'ü'.repeat(32_766)}a/b%`
const KEYS = [
  'a',
  'spaced key',
  'a+b',
  '100%',
  'foo/bar',
  '/lead',
  'a//b',
  'a/../b',
  '.',
  'ümlaut',
  '日本語',
  'emoji 🎉',
  'q?x=1#frag',
  '',
  BIG_KEY,
]

let cluster: Cluster | undefined
let caches: Peercache[] = []
let servers: Server[] = []

afterEach(async () => {
  await cluster?.close()
  cluster = undefined
  await Promise.all(caches.map((cache) => cache.close()))
  await Promise.all(servers.map((server) => closeServer(server)))
  caches = []
  servers = []
})

describe('key escaping between two peers', () => {
  it('the 64 KiB key is 65536 UTF-8 bytes exactly', () => {
    expect(Buffer.byteLength(BIG_KEY, 'utf8')).toBe(65_536)
  })

  it('every key round-trips exactly when asked of the peer that does not own it', async () => {
    // Servers built by the helper: their header limit is raised for the 64 KiB key
    // (percent-encoded it is ~196 KiB of request line), as listen() does.
    const c = await startCluster(2, kvGroup(), {
      serverOptions: { maxHeaderSize: 256 * 1024 },
      options: { hotCacheProbability: 0 },
    })
    cluster = c
    const ring = new HashRing(c.urls)

    for (const key of KEYS) {
      const label = key === BIG_KEY ? '<64 KiB key>' : JSON.stringify(key)
      const owner = c.urls.indexOf(ring.pick(key)!)
      const asker = 1 - owner
      // The asker agrees with the ring: it sends the key to the owner.
      expect(c.caches[asker]!.ownerOf(key), label).toBe(c.urls[owner])
      expect(c.caches[owner]!.ownerOf(key), label).toBe(c.urls[owner])

      const before = c.group(asker).stats()
      const value = await c.group(asker).getString(key)
      const after = c.group(asker).stats()

      expect(value === reference(key), label).toBe(true)
      // The owner's loader saw exactly this key, once; the asker's loader never ran.
      expect(c.loads[owner]!.get(key), label).toBe(1)
      expect(c.loads[asker]!.has(key), label).toBe(false)
      expect(after.peerLoads - before.peerLoads, label).toBe(1)
      expect(after.peerErrors, label).toBe(0)
      expect(after.localLoads - before.localLoads, label).toBe(0)
    }

    // Every key reached its owner as a distinct string: no two keys collapsed into one.
    const loaded = [...c.loads[0]!.keys(), ...c.loads[1]!.keys()]
    expect(new Set(loaded)).toEqual(new Set(KEYS))
    expect(c.totalLoads()).toBe(KEYS.length)
    const served = c.group(0).stats().serverRequests + c.group(1).stats().serverRequests
    expect(served).toBe(KEYS.length)
  })

  it('a key owned by the asker itself is loaded locally with the same key', async () => {
    const c = await startCluster(2, kvGroup(), { serverOptions: { maxHeaderSize: 256 * 1024 } })
    cluster = c
    for (const key of KEYS) {
      const owner = c.ownerOf(key)
      expect(await c.group(owner).getString(key)).toBe(reference(key))
      expect(c.loads[owner]!.get(key)).toBe(1)
    }
    expect(c.group(0).stats().peerLoads + c.group(1).stats().peerLoads).toBe(0)
  })

  it("listen()'s own server takes a 64 KiB key from a peer (raised maxHeaderSize)", async () => {
    // The owner serves through listen() (its header limit, not ours). It only
    // answers, never asks, so it needs no peer list of its own.
    const seen: string[] = []
    const owner = new Peercache({ env: {} })
    caches.push(owner)
    owner.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => (seen.push(key), reference(key)) })
    const ownerUrl = serverUrl(await owner.listen(0, '127.0.0.1'))

    const askerServer = await listenLocal()
    servers.push(askerServer)
    const askerUrl = serverUrl(askerServer)
    const asker = new Peercache({ env: {}, self: askerUrl, peers: [ownerUrl, askerUrl], hotCacheProbability: 0 })
    caches.push(asker)
    askerServer.on('request', asker.handler())
    const group = asker.group({ name: 'kv', cacheBytes: 1 << 20, load: () => 'asker loaded it' })

    // A 65536-byte key the ring gives to the owner: vary its last two (ASCII) bytes.
    const ring = new HashRing([ownerUrl, askerUrl])
    const base = 'ü'.repeat(32_767)
    let key: string | undefined
    for (let i = 0; i < 36 * 36 && key === undefined; i++) {
      const candidate = base + i.toString(36).padStart(2, '0')
      if (ring.pick(candidate) === ownerUrl) key = candidate
    }
    expect(key).toBeDefined()
    expect(Buffer.byteLength(key!, 'utf8')).toBe(65_536)

    expect((await group.getString(key!)) === reference(key!)).toBe(true)
    expect(seen.length).toBe(1)
    expect(seen[0] === key).toBe(true)
    expect(group.stats().peerLoads).toBe(1)
    expect(group.stats().peerErrors).toBe(0)
    expect(group.stats().localLoads).toBe(0)
  })
})
