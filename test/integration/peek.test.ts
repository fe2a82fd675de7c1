/**
 * Previous-owner peeking (rolling deploys): after a peer-list change, a key's
 * new owner asks the key's previous owner's cache (GET /_peercache/peek/…,
 * never a load there) before loading from the origin. In-process cluster
 * whose members find their peers through a discovery function the test
 * controls (the function form of the `discovery` option).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { HashRing } from '../../src/index.js'
import { startCluster, kvGroup, type Cluster } from '../helpers/cluster.js'
import { waitForPeers } from '../helpers/dns-cluster.js'

let cluster: Cluster | undefined

afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

/** startDiscovered starts n members that all read their peer list from `answer.peers`. */
async function startDiscovered(n: number, answer: { peers: string[] }, extra: object = {}): Promise<Cluster> {
  return startCluster(n, kvGroup(), { options: { hotCacheProbability: 0, discovery: { lookup: () => answer.peers, intervalMs: 10 }, ...extra } })
}

async function converge(c: Cluster, peers: string[]): Promise<void> {
  await Promise.all(c.caches.map((cache) => waitForPeers(cache, peers)))
}

describe('previous-owner peeking', () => {
  it('moves keys to a new owner without origin loads; the old owner is never made to load', async () => {
    const answer = { peers: [] as string[] }
    const c = (cluster = await startDiscovered(3, answer))
    answer.peers = c.urls.slice(0, 2)
    await converge(c, answer.peers)
    const keys = Array.from({ length: 80 }, (_, i) => `k-${i}`)
    await Promise.all(keys.map((key) => c.group(2).getString(key)))
    expect(c.totalLoads()).toBe(keys.length)
    expect(c.loads[2]!.size).toBe(0) // outside the answer, member 2 owned nothing

    answer.peers = [...c.urls]
    await converge(c, answer.peers)
    const ring = new HashRing(c.urls)
    const moved = keys.filter((key) => ring.pick(key) === c.urls[2])
    expect(moved.length).toBeGreaterThan(0)
    // Asked through member 2 (members 0 and 1 still hold the keys they owned before in main).
    const values = await Promise.all(keys.map((key) => c.group(2).getString(key)))
    keys.forEach((key, i) => expect(values[i]).toBe(`v(${key})`))
    expect(c.totalLoads()).toBe(keys.length)
    expect(moved.every((key) => c.group(2).peek(key) !== undefined)).toBe(true)

    // A key nobody holds: the peek misses, the new owner loads it once, the previous owner does not load.
    const fresh = Array.from({ length: 200 }, (_, i) => `f-${i}`).find((key) => ring.pick(key) === c.urls[2])!
    await c.group(1).getString(fresh)
    expect(c.loadsOf(fresh)).toBe(1)
    expect(c.loads[2]!.get(fresh)).toBe(1)
  })

  it('deploy.peekWindowMs: 0 turns peeking off', async () => {
    const answer = { peers: [] as string[] }
    const c = (cluster = await startDiscovered(3, answer, { deploy: { peekWindowMs: 0 } }))
    answer.peers = c.urls.slice(0, 2)
    await converge(c, answer.peers)
    const keys = Array.from({ length: 80 }, (_, i) => `k-${i}`)
    await Promise.all(keys.map((key) => c.group(2).getString(key)))
    answer.peers = [...c.urls]
    await converge(c, answer.peers)
    const moved = keys.filter((key) => new HashRing(c.urls).pick(key) === c.urls[2])
    await Promise.all(keys.map((key) => c.group(2).getString(key)))
    expect(c.totalLoads()).toBe(keys.length + moved.length)
  })
})
