/**
 * A three-member cluster in one process: each key is loaded once, on the
 * member the ring names; peer traffic adds up; the hot cache absorbs repeat
 * gets of remote keys; a stopped owner costs a peer error and a local load;
 * the owner's final answers (loader failed, not found) are not retried; and
 * two members that disagree about the ring do not bounce a key between them.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { HashRing, LoadError, NotFoundError, type GroupStats } from '../../src/index.js'
import { kvGroup, reference, startCluster, type Cluster } from '../helpers/cluster.js'

const KEYS = Array.from({ length: 200 }, (_, i) => `key-${i}`)

let cluster: Cluster | undefined

afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

/** sum adds up one counter of group `kv` over every member. */
function sum(c: Cluster, counter: keyof Omit<GroupStats, 'main' | 'hot'>): number {
  return c.caches.reduce((total, _, i) => total + c.group(i).stats()[counter], 0)
}

/** getEverywhere asks every member for every key, all at once, and checks each value. */
async function getEverywhere(c: Cluster, keys: readonly string[]): Promise<void> {
  const values = await Promise.all(c.caches.flatMap((_, i) => keys.map(async (key) => [key, await c.group(i).getString(key)] as const)))
  for (const [key, value] of values) expect(value).toBe(reference(key))
}

describe('a three-member cluster', () => {
  it('loads each key once cluster-wide, on the owner the ring names', async () => {
    const c = await startCluster(3, kvGroup(), { options: { hotCacheProbability: 0 } })
    cluster = c
    await getEverywhere(c, KEYS)

    expect(c.totalLoads()).toBe(KEYS.length)
    const ring = new HashRing(c.urls)
    const owned = [0, 0, 0]
    for (const key of KEYS) {
      const owner = c.urls.indexOf(ring.pick(key)!)
      owned[owner]!++
      expect(c.loads[owner]!.get(key), key).toBe(1)
      expect(c.loadsOf(key), key).toBe(1)
    }
    // Every member owns part of the 200 keys, and loaded exactly that part.
    for (let i = 0; i < 3; i++) {
      expect(owned[i]).toBeGreaterThan(0)
      expect(c.loads[i]!.size).toBe(owned[i])
      expect(c.group(i).stats().localLoads).toBe(owned[i])
    }

    // Each member asked the owner for every key it does not own, and nothing failed.
    const remote = 3 * KEYS.length - KEYS.length
    expect(sum(c, 'peerLoads')).toBe(remote)
    expect(sum(c, 'serverRequests')).toBe(sum(c, 'peerLoads'))
    expect(sum(c, 'peerErrors')).toBe(0)
    expect(sum(c, 'gets')).toBe(3 * KEYS.length)
    for (let i = 0; i < 3; i++) {
      expect(c.group(i).stats().peerLoads).toBe(KEYS.length - owned[i]!)
      expect(c.group(i).stats().hot.items).toBe(0)
    }

    // A second round is served from the owners' main caches: no new origin load.
    await getEverywhere(c, KEYS)
    expect(c.totalLoads()).toBe(KEYS.length)
    expect(sum(c, 'serverRequests')).toBe(2 * remote)
  })

  it('mirrors remote keys in the hot cache: a second round sends no peer request', async () => {
    const c = await startCluster(3, kvGroup(), { options: { hotCacheProbability: 1 } })
    cluster = c
    await getEverywhere(c, KEYS)
    expect(c.totalLoads()).toBe(KEYS.length)
    const remote = 2 * KEYS.length
    expect(sum(c, 'serverRequests')).toBe(remote)
    for (let i = 0; i < 3; i++) {
      const stats = c.group(i).stats()
      expect(stats.hot.items).toBe(stats.peerLoads)
      expect(stats.main.items).toBe(c.loads[i]!.size)
    }

    const hitsBefore = sum(c, 'cacheHits')
    await getEverywhere(c, KEYS)
    // Every get of the second round was a cache hit (main for owned keys, hot for the rest)...
    expect(sum(c, 'cacheHits') - hitsBefore).toBe(3 * KEYS.length)
    // ...so no member was asked again, nobody loaded, and peerLoads did not move.
    expect(sum(c, 'serverRequests')).toBe(remote)
    expect(sum(c, 'peerLoads')).toBe(remote)
    expect(c.totalLoads()).toBe(KEYS.length)
  })

  it('a stopped owner: the others still answer its keys by loading locally, counting peer errors', async () => {
    // A high failure threshold keeps the stopped owner "up", so every get tries it
    // (and the failover walk of the pool, tested elsewhere, never starts).
    const c = await startCluster(3, kvGroup(), { options: { hotCacheProbability: 0, health: { failureThreshold: 1_000_000 } } })
    cluster = c
    const victim = 2
    const keys = KEYS.filter((key) => c.ownerOf(key) === victim).slice(0, 20)
    expect(keys.length).toBe(20)

    // Warm the connections to the owner: one key fetched from it by each survivor.
    const [warm] = keys
    for (const i of [0, 1]) expect(await c.group(i).getString(warm!)).toBe(reference(warm!))
    expect(c.loads[victim]!.get(warm!)).toBe(1)

    await c.stop(victim)

    for (const i of [0, 1]) {
      const before = c.group(i).stats()
      const values = await Promise.all(keys.map((key) => c.group(i).getString(key)))
      expect(values).toEqual(keys.map(reference))
      const after = c.group(i).stats()
      expect(after.peerErrors - before.peerErrors).toBe(keys.length)
      expect(after.peerLoads - before.peerLoads).toBe(0)
      expect(after.localLoads - before.localLoads).toBe(keys.length)
      // Each survivor loaded each key itself, once.
      for (const key of keys) expect(c.loads[i]!.get(key), key).toBe(1)
    }
    // The stopped member's loader ran only for the warm-up key.
    expect([...c.loads[victim]!.keys()]).toEqual([warm])
  })

  it("a closing owner's 503 is a peer error (local load), not the owner's final answer", async () => {
    const c = await startCluster(3, kvGroup(), { options: { hotCacheProbability: 0, health: { failureThreshold: 1_000_000 } } })
    cluster = c
    const victim = 1
    const keys = KEYS.filter((key) => c.ownerOf(key) === victim).slice(0, 5)
    // Close only the owner's Peercache: its server stays up and answers 503 "shutting down".
    await c.caches[victim]!.close()
    for (const key of keys) expect(await c.group(0).getString(key)).toBe(reference(key))
    const stats = c.group(0).stats()
    expect(stats.peerErrors).toBe(keys.length)
    expect(stats.localLoads).toBe(keys.length)
    expect(c.loads[victim]!.size).toBe(0)
  })

  it("an owner whose loader fails: the asker gets LoadError and the origin is hit once", async () => {
    const c = await startCluster(3, ({ cache, track }) => {
      cache.group({
        name: 'kv',
        cacheBytes: 1 << 20,
        load: track((key) => {
          throw new Error(`origin refused ${key}`)
        }),
      })
    })
    cluster = c
    const key = 'doomed'
    const owner = c.ownerOf(key)
    const asker = (owner + 1) % 3

    const error = await c.group(asker).get(key).then(
      () => undefined,
      (err: unknown) => err,
    )
    expect(error).toBeInstanceOf(LoadError)
    expect((error as LoadError).code).toBe('ERR_PEERCACHE_LOAD_FAILED')
    expect((error as LoadError).message).toContain('origin refused doomed')
    expect(c.loads[owner]!.get(key)).toBe(1)
    expect(c.loadsOf(key)).toBe(1)
    const stats = c.group(asker).stats()
    expect(stats.peerErrors).toBe(0)
    expect(stats.localLoads + stats.localLoadErrs).toBe(0)
    expect(c.group(owner).stats().serverRequests).toBe(1)
    expect(c.group(owner).stats().localLoadErrs).toBe(1)
  })

  it('an owner whose loader says not found: the asker gets NotFoundError, its loader untouched', async () => {
    const c = await startCluster(3, ({ cache, track }) => {
      cache.group({
        name: 'kv',
        cacheBytes: 1 << 20,
        load: track((key) => {
          throw new NotFoundError(`no such row: ${key}`)
        }),
      })
    })
    cluster = c
    const key = 'ghost'
    const owner = c.ownerOf(key)
    const asker = (owner + 2) % 3

    const error = await c.group(asker).get(key).then(
      () => undefined,
      (err: unknown) => err,
    )
    expect(error).toBeInstanceOf(NotFoundError)
    expect((error as NotFoundError).code).toBe('ERR_PEERCACHE_NOT_FOUND')
    expect((error as NotFoundError).message).toContain('no such row: ghost')
    expect(c.loads[owner]!.get(key)).toBe(1)
    expect(c.loads[asker]!.has(key)).toBe(false)
    expect(c.loadsOf(key)).toBe(1)
    expect(c.group(asker).stats().peerErrors).toBe(0)
  })
})

describe('members that disagree about the ring', () => {
  /**
   * The groupcache ring (it takes a hash), replicas 1 and a hand-made hash: member 0 places itself at 100 and member 1
   * at 200, member 1 the reverse; every key hashes to 150. So member 0 sends
   * every key to member 1 and member 1 sends every key to member 0.
   */
  const crossed = (): Promise<Cluster> =>
    startCluster(2, kvGroup(), {
      options: (index, urls) => {
        const [low, high] = index === 0 ? [urls[0]!, urls[1]!] : [urls[1]!, urls[0]!]
        return {
          ring: 'groupcache',
          replicas: 1,
          hotCacheProbability: 0,
          hash: (data) => (data === `0${low}` ? 100 : data === `0${high}` ? 200 : 150),
        }
      },
    })

  it('a peer request is served where it lands, never forwarded back', async () => {
    const c = await crossed()
    cluster = c
    const key = 'contested'
    expect(await c.group(0).getString(key)).toBe(reference(key))
    // Member 1 thinks member 0 owns the key, yet it loaded it instead of asking member 0.
    expect(c.loads[1]!.get(key)).toBe(1)
    expect(c.loads[0]!.has(key)).toBe(false)
    expect(c.group(1).stats().serverRequests).toBe(1)
    expect(c.group(0).stats().serverRequests).toBe(0)
    expect(c.group(1).stats().peerLoads).toBe(0)
  })

  it('each thinks the other owns k: both gets resolve, no ping-pong', async () => {
    const c = await crossed()
    cluster = c
    const key = 'contested'
    expect(c.caches[0]!.ownerOf(key)).toBe(c.urls[1])
    expect(c.caches[1]!.ownerOf(key)).toBe(c.urls[0])

    const [a, b] = await Promise.all([c.group(0).getString(key), c.group(1).getString(key)])
    expect(a).toBe(reference(key))
    expect(b).toBe(reference(key))

    // Each member asked the other, and each request was served without being forwarded.
    const loads = c.totalLoads()
    expect(loads).toBeGreaterThanOrEqual(1)
    expect(loads).toBeLessThanOrEqual(2)
    expect(sum(c, 'serverRequests')).toBeLessThanOrEqual(2)
    expect(sum(c, 'serverRequests')).toBe(sum(c, 'peerLoads'))
    // Neither request timed out or failed (a loop would surface as a peer error).
    expect(sum(c, 'peerErrors')).toBe(0)
  })
})
