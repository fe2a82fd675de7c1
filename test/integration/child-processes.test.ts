/**
 * A cluster of real processes, as golang/groupcache's http_test.go runs it:
 * four child peers (test/helpers/child-peer.ts, configured through
 * PEERCACHE_SELF / PEERCACHE_PEERS) whose loaders tag values with their own
 * name, and this process as a fifth member that asks them. Each value must
 * carry the tag of the child the ring names as the key's owner.
 */
import type { Server } from 'node:http'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { HashRing, Peercache, serverUrl } from '../../src/index.js'
import { reservePorts, startChild, stopChild, stopCluster, waitForLine, type ChildPeer } from '../helpers/child-procs.js'
import { listenLocal } from '../helpers/cluster.js'

const CHILDREN = 4
/** The children get PEERCACHE_RING=groupcache (the env config path): this cluster runs Go's ring, as golang/groupcache's own test does. */
const GO_RING = { ring: 'groupcache' } as const

let children: ChildPeer[] = []
let parent: Peercache | undefined
let parentServer: Server | undefined
let parentUrl: string
let peers: string[]
let parentLoads: string[]

beforeEach(async () => {
  // The parent's own server comes first (its URL is in everyone's list, and
  // holding its port keeps the reserved ports below off it).
  parentServer = await listenLocal()
  parentUrl = serverUrl(parentServer)
  const childUrls = await reservePorts(CHILDREN)
  peers = [...childUrls, parentUrl]
  children = await Promise.all(childUrls.map((url, i) => startChild(`child-${i}`, url, peers, { PEERCACHE_RING: 'groupcache' })))

  parentLoads = []
  parent = new Peercache({ env: {}, self: parentUrl, peers, hotCacheProbability: 0, ring: 'groupcache' })
  parent.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => (parentLoads.push(key), `parent:${key}`) })
  parentServer.on('request', parent.handler())
})

afterEach(async () => {
  await stopCluster(parent, parentServer, children)
  parent = undefined
  parentServer = undefined
  children = []
})

/** childKeys returns n keys the ring gives to a child (keys the parent owns are skipped). */
function childKeys(n: number): string[] {
  const ring = new HashRing(peers, GO_RING)
  const keys: string[] = []
  for (let i = 0; keys.length < n; i++) {
    const key = `key-${i}`
    if (ring.pick(key) !== parentUrl) keys.push(key)
  }
  return keys
}

describe('a cluster of child processes', () => {
  it('answers every key from the child the ring names', async () => {
    const group = parent!.getGroup('kv')!
    const ring = new HashRing(peers, GO_RING)
    const tagOf = new Map(children.map((child) => [child.url, child.tag]))
    const keys = childKeys(100)

    const values = await Promise.all(keys.map((key) => group.getString(key)))
    const askedOf = new Set<string>()
    keys.forEach((key, i) => {
      const owner = ring.pick(key)!
      askedOf.add(owner)
      expect(values[i]).toBe(`${tagOf.get(owner)}:${key}`)
    })
    // All four children answered some of the keys, and the parent loaded none.
    expect(askedOf).toEqual(new Set(children.map((child) => child.url)))
    expect(parentLoads).toEqual([])
    const stats = group.stats()
    expect(stats.peerLoads).toBe(keys.length)
    expect(stats.peerErrors).toBe(0)
    expect(stats.localLoads).toBe(0)
  })

  it('keeps answering when a child is killed: its keys fail over, the others are untouched', async () => {
    const group = parent!.getGroup('kv')!
    const ring = new HashRing(peers, GO_RING)
    const tagOf = new Map<string, string>([...children.map((child) => [child.url, child.tag] as [string, string]), [parentUrl, 'parent']])
    const victim = children[0]!
    const keys = childKeys(200)
    const victimKeys = keys.filter((key) => ring.pick(key) === victim.url)
    const otherKeys = keys.filter((key) => ring.pick(key) !== victim.url)
    expect(victimKeys.length).toBeGreaterThan(3)

    const downs: string[] = []
    parent!.events.on('peer-down', ({ peer }) => downs.push(peer))

    // Kill it hard (no graceful close) and wait until it is gone.
    await stopChild(victim, 'SIGKILL')
    expect(victim.process.signalCode).toBe('SIGKILL')

    // Asked one at a time: the first failureThreshold (3) gets fail, count a peer
    // error each, and load locally; then the child is marked down and its keys
    // go to the next live member on the ring.
    for (const [i, key] of victimKeys.entries()) {
      const value = await group.getString(key)
      const expected = i < 3 ? parentUrl : ring.pickWhere(key, (peer) => peer !== victim.url)!
      expect(value, key).toBe(`${tagOf.get(expected)}:${key}`)
    }
    expect(downs).toEqual([victim.url])
    expect(group.stats().peerErrors).toBe(3)

    // Keys of the live children still come from their owners.
    const values = await Promise.all(otherKeys.map((key) => group.getString(key)))
    otherKeys.forEach((key, i) => expect(values[i]).toBe(`${tagOf.get(ring.pick(key)!)}:${key}`))
    expect(group.stats().peerErrors).toBe(3)
  })

  it('an owner SIGKILLed while it loads a key asked of it: the get still answers, loaded once, here', async () => {
    const group = parent!.getGroup('kv')!
    const ring = new HashRing(peers, GO_RING)
    const victim = children[0]!
    let key = ''
    for (let i = 0; key === ''; i++) if (ring.pick(`hang-${i}`) === victim.url) key = `hang-${i}`
    const loading = waitForLine(victim, `LOADING ${key}`)
    const answer = group.getString(key)
    // The owner's loader started: the parent's request is in flight there when it dies.
    await loading
    await stopChild(victim, 'SIGKILL')
    expect(await answer).toBe(`parent:${key}`)
    expect(parentLoads).toEqual([key])
    expect(group.stats()).toMatchObject({ peerErrors: 1, localLoads: 1, peerLoads: 0 })
  })
})
