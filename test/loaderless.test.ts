/**
 * A group without a loader (issue "Meet Node users where they are"): its
 * values come only from `set`. A key nobody stored is NotFoundError — its
 * owner answers the peer's get 404 with the not-found marker and runs no
 * origin — counted as a miss, never as a load error, never remembered in
 * the not-found memory; the previous-owner peek still applies, so a ring
 * change does not lose what was stored. Real clusters on 127.0.0.1.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { HashRing, InvalidArgumentError, NotFoundError, Peercache, type PeercacheEvents } from '../src/index.js'
import { ERROR_HEADER, errorHeaderValue, peerPath } from '../src/proto/paths.js'
import { DEFAULTS } from '../src/options.js'
import { startCluster, type Cluster, type GroupFactory } from './helpers/cluster.js'
import { waitForPeers } from './helpers/dns-cluster.js'

let cluster: Cluster | undefined
const caches: Peercache[] = []

afterEach(async () => {
  await cluster?.close()
  cluster = undefined
  await Promise.all(caches.splice(0).map((cache) => cache.close()))
})

/** storeGroup makes group `kv` without a loader on each member. */
const storeGroup: GroupFactory = ({ cache }) => {
  cache.group({ name: 'kv', cacheBytes: 1 << 20 })
}

/** keyOwnedBy finds a key the ring over urls gives to urls[index]. */
function keyOwnedBy(urls: readonly string[], index: number, prefix = 'k'): string {
  const ring = new HashRing(urls)
  for (let i = 0; i < 10_000; i++) if (ring.pick(`${prefix}-${i}`) === urls[index]) return `${prefix}-${i}`
  throw new Error(`no key for member ${index}`)
}

/** loadErrors counts every cache's load-error events. */
function loadErrors(list: readonly Peercache[]): Array<PeercacheEvents['load-error']> {
  const seen: Array<PeercacheEvents['load-error']> = []
  for (const cache of list) cache.events.on('load-error', (event) => seen.push(event))
  return seen
}

describe('group options without load', () => {
  it('accepts a group without load, and refuses what only a loader gives a use to', () => {
    const cache = new Peercache({ env: {} })
    caches.push(cache)
    expect(cache.group({ name: 'plain', cacheBytes: 1024 }).name).toBe('plain')
    expect(cache.group({ name: 'zeroes', cacheBytes: 1024, notFoundTtl: 0, staleIfError: 0 }).name).toBe('zeroes')
    expect(() => cache.group({ name: 'bad', cacheBytes: 1024, load: 42 as never })).toThrow(/load must be a function/)
    for (const option of ['notFoundTtl', 'staleWhileRevalidate', 'staleIfError'] as const) {
      const attempt = (): unknown => cache.group({ name: `x-${option}`, cacheBytes: 1024, ttl: 1000, [option]: 500 })
      expect(attempt).toThrow(InvalidArgumentError)
      expect(attempt).toThrow(new RegExp(`${option} needs load`))
    }
  })

  it('a lone process: a key nobody set is not found (a miss, not a load error); a set key is found', async () => {
    const cache = new Peercache({ env: {} })
    caches.push(cache)
    const errors = loadErrors([cache])
    const group = cache.group({ name: 'solo', cacheBytes: 1024 })
    await expect(group.get('absent')).rejects.toThrow(NotFoundError)
    await expect(group.get('absent')).rejects.toThrow(/not stored in group solo/)
    expect(group.stats()).toMatchObject({ gets: 2, loads: 2, loadsDeduped: 2, localLoads: 0, localLoadErrs: 0, notFoundHits: 0 })
    await group.set('absent', 'now here')
    expect(await group.getString('absent')).toBe('now here')
    expect(errors).toEqual([])
  })
})

describe('a loaderless group across two peers', () => {
  it('the owner answers a peer’s get 404 with the not-found marker, loads nothing, and the asker counts a miss', async () => {
    const c = (cluster = await startCluster(2, storeGroup))
    const errors = loadErrors(c.caches)
    const key = keyOwnedBy(c.urls, 1)
    await expect(c.group(0).get(key)).rejects.toThrow(NotFoundError)
    expect(c.group(0).stats()).toMatchObject({ gets: 1, loads: 1, peerLoads: 0, peerErrors: 0, localLoads: 0, localLoadErrs: 0 })
    expect(c.group(1).stats()).toMatchObject({ serverRequests: 1, localLoads: 0, localLoadErrs: 0, notFoundHits: 0 })

    // The owner's answer on the wire, as any peer sees it.
    const response = await fetch(c.urls[1] + peerPath(DEFAULTS.basePath, 'kv', key), { signal: AbortSignal.timeout(5_000) })
    expect(response.status).toBe(404)
    expect(response.headers.get(ERROR_HEADER)).toBe(errorHeaderValue.notFound)
    await response.arrayBuffer()
    expect(errors).toEqual([])
  })

  it('values come from set: stored at the owner, read from either peer; delete and clear make them not found again', async () => {
    const c = (cluster = await startCluster(2, storeGroup))
    const keys = [keyOwnedBy(c.urls, 0), keyOwnedBy(c.urls, 1)]
    for (const key of keys) await c.group(0).set(key, `value of ${key}`)
    expect(c.group(0).peek(keys[0]!)).toBeDefined()
    expect(c.group(1).peek(keys[1]!)).toBeDefined()
    for (const member of [0, 1]) {
      for (const key of keys) expect(await c.group(member).getString(key)).toBe(`value of ${key}`)
    }
    // Nothing set is ever remembered as not found: a key missed, then set, is found at once.
    const later = keyOwnedBy(c.urls, 1, 'later')
    await expect(c.group(0).get(later)).rejects.toThrow(NotFoundError)
    await c.group(1).set(later, 'arrived')
    expect(await c.group(0).getString(later)).toBe('arrived')

    await c.group(1).delete(keys[0]!)
    for (const member of [0, 1]) await expect(c.group(member).get(keys[0]!)).rejects.toThrow(NotFoundError)
    await c.group(0).clear()
    for (const member of [0, 1]) await expect(c.group(member).get(keys[1]!)).rejects.toThrow(NotFoundError)
    expect(c.group(0).stats().localLoadErrs + c.group(1).stats().localLoadErrs).toBe(0)
  })

  it('the previous-owner peek still applies: keys set before a ring change are found at their new owner', async () => {
    const answer = { peers: [] as string[] }
    const discovery = { lookup: (): string[] => answer.peers, intervalMs: 10 }
    const c = (cluster = await startCluster(3, storeGroup, { options: { hotCacheProbability: 0, discovery } }))
    answer.peers = c.urls.slice(0, 2)
    await Promise.all(c.caches.map((cache) => waitForPeers(cache, answer.peers)))
    const keys = Array.from({ length: 60 }, (_, i) => `moving-${i}`)
    await Promise.all(keys.map((key) => c.group(0).set(key, `v:${key}`)))

    answer.peers = [...c.urls]
    await Promise.all(c.caches.map((cache) => waitForPeers(cache, answer.peers)))
    const moved = keys.filter((key) => new HashRing(c.urls).pick(key) === c.urls[2])
    expect(moved.length).toBeGreaterThan(0)
    // Asked at the new owner, which never saw a set of them: it peeks the previous owner (nothing is loaded anywhere).
    const values = await Promise.all(moved.map((key) => c.group(2).getString(key)))
    expect(values).toEqual(moved.map((key) => `v:${key}`))
    // It keeps what it peeked, so it answers from its own cache from now on.
    expect(moved.every((key) => c.group(2).peek(key) !== undefined)).toBe(true)
  })
})
