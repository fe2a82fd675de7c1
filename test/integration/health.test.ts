/**
 * Peer health tells "dead" from "busy" and from "refused this one request"
 * (issue 13), on real servers on 127.0.0.1:
 *
 *  - a 431 (a key too long for the owner's header limit, against a plain
 *    `http.createServer(cache.handler())`) or a 413 (a set over the owner's
 *    maxRequestBytes) fails that request only: the owner is never marked
 *    down and keeps serving its other keys;
 *  - a peer that answers but cannot serve (its cache closed while its server
 *    stays up) is routed around without flapping down and up;
 *  - a busy owner is not a dead one: an origin slower than the transport
 *    timeout is waited for (up to loadTimeout), the owner stays up and no
 *    key loads twice; past loadTimeout the asker loads the key itself, still
 *    without holding it against the owner.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { PeerError, PeerLoadTimeoutError, type PeercacheEvents } from '../../src/index.js'
import { startCluster, type Cluster, type MemberOptions } from '../helpers/cluster.js'
import { KEY_PREFIX, keysOwnedBy, recordRequests } from '../helpers/features-cluster.js'

let cluster: Cluster | undefined

afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

interface Watched {
  c: Cluster
  downs: Array<PeercacheEvents['peer-down']>
  ups: Array<PeercacheEvents['peer-up']>
}

/** start runs 2 members with group `kv` (tracked loader answering `v(key)`), watching member 0's health events. */
async function start(options: MemberOptions = {}, slowMs = 0): Promise<Watched> {
  const c = await startCluster(2, ({ cache, track }) => {
    cache.group({ name: 'kv', cacheBytes: 1 << 20, load: track(async (key) => {
      if (slowMs > 0 && key.startsWith('slow')) await new Promise((resolve) => setTimeout(resolve, slowMs))
      return `v(${key.slice(0, 20)})`
    }) })
  }, { options: { hotCacheProbability: 0, coalesce: false, ...options } })
  cluster = c
  const watched: Watched = { c, downs: [], ups: [] }
  c.caches[0]!.events.on('peer-down', (e) => watched.downs.push(e))
  c.caches[0]!.events.on('peer-up', (e) => watched.ups.push(e))
  return watched
}

describe('a refusal of one request is not evidence against the peer', () => {
  it('431: gets of keys too long for the owner’s header limit load locally; the owner stays up and serves its other keys', async () => {
    const { c, downs } = await start()
    // 17 KB keys: valid (maxKeyBytes is 64 KiB) but over node:http's default 16 KiB header limit.
    const long = keysOwnedBy(c, 1, 5, 'x'.repeat(17 * 1024))
    for (const key of long) expect(await c.group(0).getString(key)).toBe(`v(${key.slice(0, 20)})`)
    expect(c.loads[0]!.size).toBe(long.length)
    expect(downs).toEqual([])
    const [short] = keysOwnedBy(c, 1, 1, 'short')
    expect(await c.group(0).getString(short!)).toBe(`v(${short!.slice(0, 20)})`)
    expect(c.loads[1]!.get(short!)).toBe(1)
    expect(c.group(0).stats().peerLoads).toBe(1)
  })

  it('413: sets over the owner’s maxRequestBytes reject with a PeerError; the owner stays up and serves its other keys', async () => {
    const { c, downs } = await start({ server: { maxRequestBytes: 1024 } })
    const keys = keysOwnedBy(c, 1, 5, 'big')
    for (const key of keys) await expect(c.group(0).set(key, 'x'.repeat(64 * 1024))).rejects.toBeInstanceOf(PeerError)
    expect(downs).toEqual([])
    const [other] = keysOwnedBy(c, 1, 1, 'other')
    expect(await c.group(0).getString(other!)).toBe(`v(${other})`)
    expect(c.loads[1]!.get(other!)).toBe(1)
    expect(c.loads[0]!.size).toBe(0)
  })
})

describe('a peer that answers but cannot serve', () => {
  it('its cache closed, its server up: marked down once, probed without flapping up, its keys load locally without asking it', async () => {
    const { c, downs, ups } = await start({ health: { probeMinMs: 20, probeMaxMs: 40 } })
    const log = recordRequests(c.servers[1]!)
    await c.caches[1]!.close() // the server stays up (close() leaves a server it did not create listening)
    const keys = keysOwnedBy(c, 1, 40, 'closed')
    let next = 0
    const getSome = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const key = keys[next++]!
        expect(await c.group(0).getString(key)).toBe(`v(${key})`)
      }
    }
    const wentUp = new Promise<void>((resolve) => c.caches[0]!.events.on('peer-up', () => resolve()))
    const probes = (): number => log.all.filter((r) => r.url === KEY_PREFIX).length
    await getSome(3) // three 503 'closing' answers in a row: down
    expect(downs.map((d) => d.peer)).toEqual([c.urls[1]])
    // A probe is sent only while the peer is down: the 4th probe means the first three kept it down.
    for (let probe = 2; probe <= 4; probe++) {
      await Promise.race([wentUp, log.arrival(() => probes() >= probe)])
      await getSome(3)
    }
    expect(ups).toEqual([])
    expect(downs).toHaveLength(1)
    // Only the three gets that marked it down asked it; everything since was a probe.
    expect(log.all.filter((r) => r.url !== KEY_PREFIX)).toHaveLength(3)
  })
})

describe('a busy owner is not a dead owner', () => {
  it('an origin 3× slower than the transport timeout: the asker waits for the owner, which stays up; nothing loads twice', async () => {
    const { c, downs } = await start({ transport: { timeoutMs: 200 } }, 600)
    const keys = keysOwnedBy(c, 1, 4, 'slow')
    // Alone: nothing else proves the owner alive, so a liveness probe must.
    expect(await c.group(0).getString(keys[0]!)).toBe(`v(${keys[0]})`)
    // Together: each request's wait is covered by the probe or the others' answers.
    expect(await Promise.all(keys.slice(1).map((key) => c.group(0).getString(key)))).toEqual(keys.slice(1).map((key) => `v(${key})`))
    for (const key of keys) expect(c.loads[1]!.get(key), key).toBe(1)
    expect(c.loads[0]!.size).toBe(0)
    expect(downs).toEqual([])
    expect(c.group(0).stats()).toMatchObject({ peerErrors: 0, peerLoads: keys.length })
  })

  it('past loadTimeout the asker loads the key itself, and the owner is not held responsible', async () => {
    const { c, downs } = await start({ transport: { timeoutMs: 100, loadTimeoutMs: 300 } }, 1200)
    const errors: Array<PeercacheEvents['peer-error']> = []
    c.caches[0]!.events.on('peer-error', (e) => errors.push(e))
    const keys = keysOwnedBy(c, 1, 3, 'slow-past')
    for (const key of keys) expect(await c.group(0).getString(key)).toBe(`v(${key})`)
    expect(errors.map((e) => e.error)).toEqual(keys.map(() => expect.any(PeerLoadTimeoutError)))
    for (const key of keys) expect(c.loads[0]!.get(key), key).toBe(1)
    expect(downs).toEqual([])
  })
})
