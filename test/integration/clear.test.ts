/**
 * group.clear() across real peers on loopback (issue 15): it drops every
 * entry of the group on every member (main and hot, remembered not-founds
 * too), keeps loads in flight from landing afterwards (the rule of remove),
 * reports unreachable peers, travels signed, and reports a Go-like peer (a
 * bare 404 on the clear path) instead of pretending it was cleared.
 * Interleavings are forced with a held loader, never with sleeps.
 */
import { request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { NotFoundError, PeerResponseError, Peercache } from '../../src/index.js'
import { startCluster, type Cluster, type MemberOptions } from '../helpers/cluster.js'
import { deferred, type Deferred } from '../helpers/core-helpers.js'
import { keysOwnedBy, keysOwnedIn, recordRequests, startFakePeer, textOf, type FakePeer } from '../helpers/features-cluster.js'

let cluster: Cluster | undefined
let fake: FakePeer | undefined
let version = 0
/** When set, the next loader call waits for it (and resolves `started` first). */
let hold: { started: Deferred<void>; release: Deferred<void> } | undefined

afterEach(async () => {
  await cluster?.close()
  await fake?.close()
  cluster = undefined
  fake = undefined
  hold = undefined
})

async function start(options: MemberOptions = {}, members = 3): Promise<Cluster> {
  version = 0
  cluster = await startCluster(
    members,
    ({ cache, track }) => {
      cache.group({
        name: 'kv',
        cacheBytes: 1 << 20,
        notFoundTtl: 60_000,
        load: track(async (key) => {
          const held = hold
          hold = undefined
          if (held !== undefined) {
            held.started.resolve()
            await held.release.promise
          }
          if (key.startsWith('missing')) throw new NotFoundError(key)
          return `${key}@${++version}`
        }),
      })
    },
    { options: { hotCacheProbability: 1, ...options } },
  )
  return cluster
}

/** warm gets keys from every member (owners hold them in main, the others in hot). */
async function warm(c: Cluster, keys: readonly string[]): Promise<void> {
  for (let i = 0; i < c.caches.length; i++) for (const key of keys) await c.group(i).getString(key)
  for (let i = 0; i < c.caches.length; i++) for (const key of keys) expect(c.group(i).peek(key), `member ${i} ${key}`).toBeDefined()
}

function itemsOf(c: Cluster, i: number): number {
  const stats = c.group(i).stats()
  return stats.main.items + stats.hot.items
}

describe('group.clear', () => {
  it('drops every entry of the group on every member, main and hot', async () => {
    const c = await start()
    const keys = [...keysOwnedBy(c, 0, 3, 'a'), ...keysOwnedBy(c, 1, 3, 'b'), ...keysOwnedBy(c, 2, 3, 'c')]
    await warm(c, keys)
    expect(c.totalLoads()).toBe(9)
    const logs = c.servers.map((server) => recordRequests(server))

    expect(await c.group(1).clear()).toEqual({ unreachable: [] })
    for (let i = 0; i < 3; i++) expect(itemsOf(c, i), `member ${i}`).toBe(0)
    // One signed POST to each other member, none to itself.
    expect(logs.map((log) => log.count('POST', '/_peercache/clear/kv'))).toEqual([1, 0, 1])
    // Everything loads again, once, at its owner.
    for (const key of keys) expect(await c.group(0).getString(key)).toMatch(new RegExp(`^${key}@`))
    expect(c.totalLoads()).toBe(18)
  })

  it('forgets remembered not-founds', async () => {
    const c = await start()
    const [key] = keysOwnedBy(c, 2, 1, 'missing') as [string]
    await expect(c.group(0).get(key)).rejects.toBeInstanceOf(NotFoundError)
    await expect(c.group(0).get(key)).rejects.toBeInstanceOf(NotFoundError)
    expect(c.loadsOf(key)).toBe(1)
    await c.group(0).clear()
    await expect(c.group(0).get(key)).rejects.toBeInstanceOf(NotFoundError)
    expect(c.loadsOf(key)).toBe(2)
  })

  it('a load in flight at the owner when the clear arrives does not land anywhere', async () => {
    const c = await start()
    const [key] = keysOwnedBy(c, 1, 1, 'inflight') as [string]
    hold = { started: deferred(), release: deferred() }
    const held = hold
    const get = c.group(0).getString(key)
    await held.started.promise
    await c.group(2).clear()
    held.release.resolve()
    // The waiter that asked before the clear gets its answer; nobody caches it.
    expect(await get).toBe(`${key}@1`)
    for (let i = 0; i < 3; i++) expect(c.group(i).peek(key), `member ${i}`).toBeUndefined()
    expect(await c.group(0).getString(key)).toBe(`${key}@2`)
  })

  it('reports an unreachable member and clears the others', async () => {
    const c = await start()
    const keys = keysOwnedBy(c, 0, 2, 'u')
    await warm(c, keys)
    await c.stop(2)
    const report = await c.group(0).clear()
    expect(report.unreachable.map((u) => u.peer)).toEqual([c.urls[2]])
    expect(itemsOf(c, 0)).toBe(0)
    expect(itemsOf(c, 1)).toBe(0)
  })

  it('a Go-like peer (bare 404 on the clear path) is reported, not counted as down', async () => {
    fake = await startFakePeer((req, res) => {
      res.statusCode = 404
      res.end('404 page not found\n')
    })
    const fakeUrl = fake.url
    const c = await start({}, 2)
    // Member 0 lists the fake peer too (only member 0: the others never route to it).
    await c.caches[0]!.close()
    const member = new Peercache({ env: {}, self: c.urls[0]!, peers: [...c.urls, fakeUrl], hotCacheProbability: 1 })
    try {
      const group = member.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => `m:${key}` })
      const [mine] = keysOwnedIn([...c.urls, fakeUrl], c.urls[0]!, 1, 'go') as [string]
      expect(await group.getString(mine)).toBe(`m:${mine}`)
      const report = await group.clear()
      expect(report.unreachable.map((u) => u.peer)).toEqual([fakeUrl])
      expect(report.unreachable[0]!.error).toBeInstanceOf(PeerResponseError)
      expect(report.unreachable[0]!.error.message).toMatch(/no clear endpoint/)
      expect(group.peek(mine)).toBeUndefined()
      const downs: string[] = []
      member.events.on('peer-down', ({ peer }) => downs.push(peer))
      await group.clear()
      expect(downs).toEqual([])
    } finally {
      await member.close()
    }
  })

  it('travels signed: an unsigned clear is refused (401) and clears nothing', async () => {
    const c = await start({ secret: 'a shared secret of the cluster' })
    const keys = keysOwnedBy(c, 1, 2, 's')
    await warm(c, keys)
    const response = await request(`${c.urls[1]}/_peercache/clear/kv`, { method: 'POST', body: '' })
    await response.body.dump()
    expect(response.statusCode).toBe(401)
    expect(itemsOf(c, 1)).toBe(2)
    expect(await c.group(0).clear()).toEqual({ unreachable: [] })
    for (let i = 0; i < 3; i++) expect(itemsOf(c, i)).toBe(0)
    expect(textOf(c.group(1).peek(keys[0]!))).toBeUndefined()
  })
})
