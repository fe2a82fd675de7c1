/**
 * Stale-while-revalidate and clear across real processes (issue 15): three
 * child peers (test/helpers/child-peer.ts with CLOCK_T0: an injected clock
 * each moves only when told, group `swr` with ttl 1 s and
 * staleWhileRevalidate 60 s, values `${tag}:${key}#${loads}`) and this
 * process as a fourth member on the same clock. Refreshes are awaited through
 * `load` events and child commands, never with sleeps.
 */
import type { Server } from 'node:http'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Peercache, serverUrl, type GroupStats, type PeercacheEvents } from '../../src/index.js'
import { command, reservePorts, startChild, stopChild, stopCluster, type ChildPeer } from '../helpers/child-procs.js'
import { listenLocal } from '../helpers/cluster.js'
import { flushTasks } from '../helpers/core-helpers.js'

const T0 = Date.UTC(2030, 4, 1)
let now = T0
let children: ChildPeer[] = []
let parent: Peercache | undefined
let parentServer: Server | undefined
let parentLoads: string[]

beforeEach(async () => {
  now = T0
  parentServer = await listenLocal()
  const parentUrl = serverUrl(parentServer)
  const childUrls = await reservePorts(3)
  const peers = [...childUrls, parentUrl]
  children = await Promise.all(childUrls.map((url, i) => startChild(`child-${i}`, url, peers, { CLOCK_T0: String(T0) })))
  parentLoads = []
  parent = new Peercache({ env: {}, self: parentUrl, peers, hotCacheProbability: 1, clock: () => now })
  parent.group({
    name: 'swr',
    cacheBytes: 1 << 20,
    ttl: 1_000,
    staleWhileRevalidate: 60_000,
    load: (key) => (parentLoads.push(key), `parent:${key}`),
  })
  parentServer.on('request', parent.handler())
})

afterEach(async () => {
  await stopCluster(parent, parentServer, children)
  parent = undefined
  parentServer = undefined
  children = []
})

/** childKeys returns n keys a child owns, with that child. */
function childKeys(n: number, prefix: string): Array<{ key: string; owner: ChildPeer }> {
  const found: Array<{ key: string; owner: ChildPeer }> = []
  for (let i = 0; found.length < n; i++) {
    const key = `${prefix}-${i}`
    const owner = children.find((child) => child.url === parent!.ownerOf(key))
    if (owner !== undefined) found.push({ key, owner })
  }
  return found
}

/** advance moves every member's clock by ms. */
async function advance(ms: number): Promise<void> {
  now += ms
  await Promise.all(children.map((child) => command(child, `advance ${ms}`, 'ADVANCED')))
}

async function statsOf(child: ChildPeer): Promise<GroupStats> {
  const line = await command(child, 'stats swr', 'STATS ')
  return JSON.parse(line.slice('STATS '.length)) as GroupStats
}

/** nextPeerLoad resolves on the parent's next value fetched from a peer (stale or fresh), once its flight has ended. */
function nextPeerLoad(): Promise<void> {
  return new Promise((resolve) => {
    const on = (event: PeercacheEvents['load']): void => {
      if (event.source !== 'peer') return
      parent!.events.off('load', on)
      void flushTasks().then(resolve)
    }
    parent!.events.on('load', on)
  })
}

describe('child processes', () => {
  it('stale-while-revalidate: stale at once, one refresh at the owner process, then fresh everywhere', async () => {
    const group = parent!.getGroup('swr')!
    const [{ key, owner }] = childKeys(1, 'swr') as [{ key: string; owner: ChildPeer }]
    expect(await group.getString(key)).toBe(`${owner.tag}:${key}#1`)

    await advance(2_000) // expired 1 s ago: within staleWhileRevalidate
    const seen: string[] = []
    // Each get answers at once (stale until a refresh brought the fresh value); each stale one starts a refresh
    // through the owner. Bounded: the owner's one refresh lands within a few round trips.
    for (let attempt = 0; attempt < 20; attempt++) {
      const refreshed = nextPeerLoad()
      const value = await group.getString(key)
      seen.push(value)
      if (value.endsWith('#2')) break
      await refreshed
    }
    // The refresh asked the owner process for a fresh value (it waited for its own refresh): fresh after one refresh.
    expect(seen).toEqual([`${owner.tag}:${key}#1`, `${owner.tag}:${key}#2`])
    expect(group.stats().staleHits).toBe(1)

    // One origin load for the refresh, at the owner; no other process loaded the key.
    const stats = await Promise.all(children.map((child) => statsOf(child)))
    children.forEach((child, i) => expect(stats[i]!.localLoads, child.tag).toBe(child === owner ? 2 : 0))
    expect(parentLoads).toEqual([])
    // Another child asks: the owner's fresh value.
    const other = children.find((child) => child !== owner)!
    expect(await group.getString(key)).toBe(`${owner.tag}:${key}#2`)
    expect((await statsOf(other)).localLoads).toBe(0)
  })

  it('clear: every child process drops the group; a killed child is reported', async () => {
    const group = parent!.getGroup('swr')!
    const keys = childKeys(12, 'clear')
    for (const { key, owner } of keys) expect(await group.getString(key)).toBe(`${owner.tag}:${key}#1`)
    const held = await Promise.all(children.map(async (child) => (await statsOf(child)).main.items))
    expect(held.reduce((a, b) => a + b, 0)).toBe(12)

    expect(await group.clear()).toEqual({ unreachable: [] })
    for (const child of children) {
      const stats = await statsOf(child)
      expect(stats.main.items + stats.hot.items, child.tag).toBe(0)
    }
    expect(group.stats().hot.items + group.stats().main.items).toBe(0)
    // Everything loads again at its owner.
    for (const { key, owner } of keys) expect(await group.getString(key)).toBe(`${owner.tag}:${key}#2`)

    const victim = children[0]!
    await stopChild(victim, 'SIGKILL')
    const report = await group.clear()
    expect(report.unreachable.map((u) => u.peer)).toEqual([victim.url])
  })
})
