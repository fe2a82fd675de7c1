/**
 * A resolved write is a fence ("Hardening, round 3": wrong values). Once
 * `set`/`delete`/`clear` resolves, no process answers an older value: not
 * from a hot copy, not from a previous owner's peek, not from a load that
 * started before the write and lands after it. Real members on loopback
 * (test/helpers/cluster.ts); interleavings are forced with held loaders and
 * requests observed at the servers, never with sleeps.
 */
import { request } from 'undici'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startCluster, type Cluster, type MemberOptions } from '../helpers/cluster.js'
import { deferred, type Deferred } from '../helpers/core-helpers.js'
import { HashRing } from '../../src/index.js'
import { BATCH_PREFIX, KEY_PREFIX, gateRequests, keysOwnedBy, recordRequests } from '../helpers/features-cluster.js'

const PEEK_PREFIX = '/_peercache/peek/'
/** How long the leaving member drains: long enough for the whole test to run inside it. */
const DRAIN_MS = 4_000

let cluster: Cluster | undefined
/** What the origin answers now: `${key}@${origin}`. */
let origin: string
/** version counts origin loads: the value of a counted load is `${key}@${n}`, n its place. */
let version: number
/** When set, the next loader call waits for it (and resolves `started` first). */
let hold: { started: Deferred<void>; release: Deferred<void> } | undefined

beforeEach(() => {
  origin = 'old'
  version = 0
  hold = undefined
})

afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

async function start(options: (index: number) => MemberOptions, counted = false): Promise<Cluster> {
  cluster = await startCluster(
    3,
    ({ cache, track }) => {
      cache.group({
        name: 'kv',
        cacheBytes: 1 << 20,
        load: track(async (key) => {
          const n = ++version // counted when the load starts: a slow load keeps its place
          const held = hold
          hold = undefined
          if (held !== undefined) {
            held.started.resolve()
            await held.release.promise
          }
          return counted ? `${key}@${n}` : `${key}@${origin}`
        }),
      })
    },
    { options },
  )
  return cluster
}

/**
 * leave makes member 2 (C) leave as a deploy does: it closes and drains
 * (still answering peers), and A and B drop it from their lists. It
 * returns C's close, to await at the end.
 */
function leave(c: Cluster): { closing: Promise<void> } {
  const closing = c.caches[2]!.close()
  for (const i of [0, 1]) c.caches[i]!.setPeers(c.urls.slice(0, 2))
  return { closing }
}

describe('a write reaches the processes that may still be peeked', () => {
  const deployOf = (peekWindowMs?: number) => (index: number): MemberOptions => ({
    hotCacheProbability: 0,
    deploy: { ...(index === 2 ? { drainMs: DRAIN_MS } : {}), ...(peekWindowMs === undefined ? {} : { peekWindowMs }) },
  })

  for (const write of ['delete', 'clear'] as const) {
    it(`${write}: a key C owned is not answered old through the peek of draining C`, { timeout: 20_000 }, async () => {
      const c = await start(deployOf())
      const keys = keysOwnedBy(c, 2, 20, 'moved')
      for (const key of keys) expect(await c.group(0).getString(key)).toBe(`${key}@old`)
      expect(c.loads[2]!.size).toBe(20)
      const peeks = recordRequests(c.servers[2]!)
      const { closing } = leave(c)

      origin = 'new'
      if (write === 'clear') expect(await c.group(0).clear()).toEqual({ unreachable: [] })
      else for (const key of keys) expect(await c.group(0).delete(key)).toEqual({ unreachable: [] })
      const values = await Promise.all(keys.map((key, i) => c.group(i % 2).getString(key)))
      expect(values.filter((value) => value.endsWith('@old'))).toEqual([])
      // The new owners did peek C (it still answers: draining), and found nothing there.
      expect(peeks.count('GET', PEEK_PREFIX)).toBe(keys.length)
      expect(c.loads[0]!.size + c.loads[1]!.size).toBe(keys.length)
      await closing
    })
  }

  it('delete reaches the past owner before the owner: a peek while it travels cannot outlive it', { timeout: 20_000 }, async () => {
    const c = await start(deployOf())
    const [key] = keysOwnedBy(c, 2, 1, 'order') as [string]
    expect(await c.group(0).getString(key)).toBe(`${key}@old`)
    const { closing } = leave(c)
    const owner = c.urls.indexOf(new HashRing(c.urls.slice(0, 2)).pick(key)!)
    origin = 'new'
    const atOwner = recordRequests(c.servers[owner]!)
    const gate = gateRequests(c.servers[2]!, c.caches[2]!.handler(), (req) => req.method === 'DELETE')
    const deleting = c.group(1 - owner).delete(key) // written elsewhere: the writer's own second drop does not hide the order
    await gate.arrived
    // While C's DELETE is held, the new owner's load peeks C: the old value (the delete has not resolved).
    expect(await c.group(owner).getString(key)).toBe(`${key}@old`)
    // ...and the owner has not been sent its DELETE yet: it goes once C has answered.
    expect(atOwner.count('DELETE')).toBe(0)
    gate.open()
    expect(await deleting).toEqual({ unreachable: [] })
    for (const i of [0, 1]) expect(await c.group(i).getString(key), `member ${i}`).toBe(`${key}@new`)
    await closing
  })

  it('with peekWindowMs: 0 nothing is peeked: the new owners load', { timeout: 20_000 }, async () => {
    const c = await start(deployOf(0))
    const keys = keysOwnedBy(c, 2, 20, 'moved')
    for (const key of keys) await c.group(0).getString(key)
    const peeks = recordRequests(c.servers[2]!)
    const { closing } = leave(c)
    origin = 'new'
    for (const key of keys) await c.group(0).delete(key)
    const values = await Promise.all(keys.map((key) => c.group(0).getString(key)))
    expect(values.filter((value) => value.endsWith('@old'))).toEqual([])
    expect(peeks.count('GET', PEEK_PREFIX)).toBe(0)
    await closing
  })
})

describe('clear fences the loads in flight cluster-wide', () => {
  it('a get at a cleared asker does not join the owner\'s pre-clear load', async () => {
    // X (0) clears over one connection per peer, so its clear to O waits behind its own get there.
    const c = await start((index) => ({ hotCacheProbability: 1, ...(index === 0 ? { transport: { connections: 1 } } : {}) }), true)
    const [key, other] = keysOwnedBy(c, 2, 2, 'race') as [string, string]
    // A (1) mirrors another key of O's in hot: it shows when A has applied the clear.
    expect(await c.group(1).getString(other)).toBe(`${other}@1`)
    const atO = recordRequests(c.servers[2]!)
    const atA = recordRequests(c.servers[1]!)

    hold = { started: deferred(), release: deferred() }
    const held = hold
    const before = c.group(0).getString(key) // the load at O starts before the clear, and is slow
    await held.started.promise
    const clearing = c.group(0).clear()
    await atA.arrival((r) => r.method === 'POST' && r.url.startsWith('/_peercache/clear/'))
    await until(() => c.group(1).stats().hot.items === 0, 'A applied the clear')
    expect(atO.count('POST', '/_peercache/clear/')).toBe(0) // O has not heard of it yet

    const after = c.group(1).getString(key) // asked after A was cleared
    // Held until A's request reached O (a get, alone or in a batch): O's load is still the pre-clear one.
    const gets = (): number => atO.all.filter((r) => r.url.startsWith(KEY_PREFIX) || r.url.startsWith(BATCH_PREFIX)).length
    await atO.arrival(() => gets() >= 2)
    held.release.resolve()
    const old = await before // asked before the clear: it may answer the pre-clear value
    expect(old).toBe(`${key}@2`)
    expect(await after).not.toBe(old)
    expect(await clearing).toEqual({ unreachable: [] })
    for (let i = 0; i < 3; i++) expect(await c.group(i).getString(key), `member ${i}`).not.toBe(old)
  })
})

describe('the clear generation on the wire', () => {
  it('a request carrying a newer generation clears the member before it is answered; a malformed one is refused', async () => {
    const c = await start(() => ({ hotCacheProbability: 0 }), true)
    const [key] = keysOwnedBy(c, 1, 1, 'wire') as [string]
    expect(await c.group(1).getString(key)).toBe(`${key}@1`)
    const peek = async (query: string): Promise<number> => {
      const response = await request(`${c.urls[1]}${PEEK_PREFIX}kv/${encodeURIComponent(key)}${query}`)
      await response.body.dump()
      return response.statusCode
    }
    expect(await peek('')).toBe(200)
    expect(await peek('?gen=7')).toBe(404) // member 1 was at 0: it applied clear 7 first
    expect(c.group(1).peek(key)).toBeUndefined()
    expect(await c.group(1).getString(key)).toBe(`${key}@2`)
    expect(await peek('?gen=7')).toBe(200) // not newer: nothing to apply
    expect(await peek('?gen=3&other=x')).toBe(200)
    for (const bad of ['?gen=x', '?gen=-1', '?gen=1e3', `?gen=${2 ** 60}`]) expect(await peek(bad), bad).toBe(400)
    expect(c.group(1).peek(key)).toBeDefined()
    // Member 1 now sends generation 7 with its requests: member 2 clears itself when asked by it.
    const [other] = keysOwnedBy(c, 2, 1, 'other') as [string]
    expect(await c.group(2).getString(other)).toBe(`${other}@3`)
    expect(await c.group(1).getString(other)).toBe(`${other}@4`)
    expect(c.loads[2]!.get(other)).toBe(2)
  })
})

/** until polls cond (bounded: 2 s) while the servers work. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (cond()) return
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  throw new Error(`timed out waiting until ${what}`)
}
