/**
 * Stale-while-revalidate and stale-if-error across real peers on loopback
 * (issue 15). Every member reads the same injected clock (`now`), moved by
 * the test; refreshes are awaited through the loader (a deferred the test
 * settles) and the `load` events, never with sleeps.
 */
import { request } from 'undici'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { LoadError, type Peercache, type PeercacheEvents } from '../../src/index.js'
import { decodeGetResponse } from '../../src/proto/codec.js'
import { startCluster, type Cluster } from '../helpers/cluster.js'
import { deferred, flushTasks, type Deferred } from '../helpers/core-helpers.js'
import { KEY_PREFIX, keysOwnedBy, textOf } from '../helpers/features-cluster.js'

const T0 = Date.UTC(2030, 3, 1)
const TTL = 1_000
const SWR = 5_000
const SIE = 60_000

let now = T0
let cluster: Cluster | undefined
/** version[key] counts the origin loads of key; the value is `key#version`. */
let version: Map<string, number>
/** When set, the origin fails every load. */
let originDown: boolean
/** When set, the next origin load of a key waits for it. */
let gate: Deferred<void> | undefined

beforeEach(() => {
  now = T0
  version = new Map()
  originDown = false
  gate = undefined
})

afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

async function start(options: { swr?: number; sie?: number; hot?: number } = {}): Promise<Cluster> {
  cluster = await startCluster(
    3,
    ({ cache, track }) => {
      cache.group({
        name: 'kv',
        cacheBytes: 1 << 20,
        ttl: TTL,
        staleWhileRevalidate: options.swr ?? SWR,
        staleIfError: options.sie ?? SIE,
        load: track(async (key) => {
          const waitFor = gate
          gate = undefined
          if (waitFor !== undefined) await waitFor.promise
          if (originDown) throw new Error('origin down')
          const n = (version.get(key) ?? 0) + 1
          version.set(key, n)
          return `${key}#${n}`
        }),
      })
    },
    { options: { clock: () => now, hotCacheProbability: options.hot ?? 1 } },
  )
  return cluster
}

/** nextLoad resolves with the next `load` event of a member (then lets its caller store the value). */
function nextLoad(cache: Peercache, source: 'local' | 'peer'): Promise<PeercacheEvents['load']> {
  return new Promise((resolve) => {
    const on = (event: PeercacheEvents['load']): void => {
      if (event.source !== source) return
      cache.events.off('load', on)
      void flushTasks().then(() => resolve(event))
    }
    cache.events.on('load', on)
  })
}

const text = (buffer: Buffer): string => buffer.toString('utf8')

describe('staleWhileRevalidate', () => {
  it('at the owner: answers stale at once, refreshes once, then answers fresh', async () => {
    const c = await start()
    const [key] = keysOwnedBy(c, 0, 1, 'own') as [string]
    const owner = c.group(0)
    expect(await owner.getString(key)).toBe(`${key}#1`)
    const staleEvents: Array<PeercacheEvents['stale']> = []
    c.caches[0]!.events.on('stale', (e) => staleEvents.push(e))

    now = T0 + TTL + 10
    gate = deferred()
    const held = gate
    const refreshed = nextLoad(c.caches[0]!, 'local')
    // Three gets while the refresh is held: all stale, at once; one refresh.
    const answers = await Promise.all([owner.getString(key), owner.getString(key), owner.getString(key)])
    expect(answers).toEqual([`${key}#1`, `${key}#1`, `${key}#1`])
    expect(c.loadsOf(key)).toBe(2)
    expect(owner.stats().staleHits).toBe(3)
    expect(staleEvents).toEqual([0, 1, 2].map(() => ({ group: 'kv', key, expiredAt: T0 + TTL })))
    expect(owner.peek(key)).toBeUndefined() // peek never serves past expiry
    held.resolve()
    await refreshed
    expect(await owner.getString(key)).toBe(`${key}#2`)
    expect(owner.stats().staleHits).toBe(3)
    expect(c.loadsOf(key)).toBe(2)
  })

  it('across peers: every member answers stale at once, one origin load in the cluster, the refresh goes through the owner', async () => {
    const c = await start()
    const [key] = keysOwnedBy(c, 1, 1, 'peers') as [string]
    for (let i = 0; i < 3; i++) expect(await c.group(i).getString(key)).toBe(`${key}#1`)
    expect(c.loadsOf(key)).toBe(1)

    now = T0 + TTL + 100
    gate = deferred()
    const held = gate
    const askersRefreshed = [nextLoad(c.caches[0]!, 'peer'), nextLoad(c.caches[2]!, 'peer')]
    const answers = await Promise.all([0, 1, 2, 0, 2].map((i) => c.group(i).getString(key)))
    expect(answers.every((a) => a === `${key}#1`)).toBe(true)
    expect(c.group(0).stats().staleHits).toBe(2)
    const ownerRefreshed = nextLoad(c.caches[1]!, 'local')
    held.resolve()
    await ownerRefreshed
    // The askers' refreshes reached the owner while its own refresh was held: they waited for it (a
    // revalidation is answered fresh), so their hot copies hold the fresh value at once.
    await Promise.all(askersRefreshed)
    for (const i of [0, 1, 2]) expect(await c.group(i).getString(key)).toBe(`${key}#2`)
    expect(c.group(0).stats().staleHits).toBe(2)
    // Only the owner ever loaded, twice in all.
    expect(c.loads[1]!.get(key)).toBe(2)
    expect(c.loadsOf(key)).toBe(2)
  })

  it('a non-owner\'s refresh brings the fresh value: it waits for the owner\'s own refresh, not one round behind', async () => {
    const c = await start()
    const [key] = keysOwnedBy(c, 1, 1, 'behind') as [string]
    expect(await c.group(0).getString(key)).toBe(`${key}#1`)
    expect(textOf(c.group(0).peek(key))).toBe(`${key}#1`) // mirrored in hot
    now = T0 + TTL + 100 // both copies expired, within staleWhileRevalidate
    const refreshed = nextLoad(c.caches[0]!, 'peer')
    expect(await c.group(0).getString(key)).toBe(`${key}#1`) // stale at once, one refresh behind it
    const arrived = await refreshed
    expect(await c.group(0).getString(key)).toBe(`${key}#2`)
    expect(c.group(0).stats().staleHits).toBe(1)
    expect(arrived.peer).toBe(c.urls[1])
    expect(c.loadsOf(key)).toBe(2)
  })

  it('a peer answering with a stale value says so (GetResponse field 16); the asker does not cache it', async () => {
    const c = await start({ hot: 0 })
    const [key] = keysOwnedBy(c, 1, 1, 'flag') as [string]
    expect(await c.group(1).getString(key)).toBe(`${key}#1`)
    now = T0 + TTL + 1
    gate = deferred() // hold the owner's refresh: its answers stay stale
    const held = gate
    const response = await request(`${c.urls[1]}${KEY_PREFIX}kv/${encodeURIComponent(key)}`)
    const body = new Uint8Array(await response.body.arrayBuffer())
    expect(response.statusCode).toBe(200)
    const answer = decodeGetResponse(body)
    expect(answer).toMatchObject({ value: new TextEncoder().encode(`${key}#1`), expiresAt: T0 + TTL, stale: true })
    expect(answer.minuteQps).toBeGreaterThan(0) // the owner's request rate for the key, as in every answer

    expect(text(await c.group(0).get(key))).toBe(`${key}#1`)
    expect(c.group(0).stats().staleHits).toBe(1)
    expect(c.group(0).peek(key)).toBeUndefined()
    expect(c.group(0).stats().hot.items + c.group(0).stats().main.items).toBe(0)
    held.resolve()
    expect(c.loadsOf(key)).toBe(2)
  })
})

describe('staleIfError', () => {
  it('past staleWhileRevalidate: a failing origin at the owner makes every member answer stale', async () => {
    const c = await start()
    const [key] = keysOwnedBy(c, 2, 1, 'sie') as [string]
    for (let i = 0; i < 3; i++) expect(await c.group(i).getString(key)).toBe(`${key}#1`)
    now = T0 + TTL + SWR + 1
    originDown = true
    for (let i = 0; i < 3; i++) expect(await c.group(i).getString(key), `member ${i}`).toBe(`${key}#1`)
    expect(c.group(0).stats().staleHits).toBe(1)
    expect(c.group(2).stats().staleHits).toBe(1)
    // Never past the windows: at expiry + staleIfError the error shows.
    now = T0 + TTL + SIE
    for (let i = 0; i < 3; i++) await expect(c.group(i).get(key)).rejects.toBeInstanceOf(LoadError)
    // When the origin is back, the value is loaded fresh.
    originDown = false
    expect(await c.group(0).getString(key)).toBe(`${key}#2`)
  })

  it('owner unreachable and the local load failing: the asker answers its own stale copy', async () => {
    const c = await start()
    const [key] = keysOwnedBy(c, 1, 1, 'down') as [string]
    expect(await c.group(0).getString(key)).toBe(`${key}#1`)
    expect(textOf(c.group(0).peek(key))).toBe(`${key}#1`) // mirrored in hot
    await c.stop(1)
    originDown = true
    now = T0 + TTL + SWR + 500
    expect(await c.group(0).getString(key)).toBe(`${key}#1`)
    expect(c.group(0).stats().staleHits).toBe(1)
    expect(c.group(0).stats().peerErrors).toBe(1)
  })

  it('without stale options an expired value is never answered', async () => {
    const c = await start({ swr: 0, sie: 0 })
    const [key] = keysOwnedBy(c, 0, 1, 'none') as [string]
    expect(await c.group(0).getString(key)).toBe(`${key}#1`)
    now = T0 + TTL
    originDown = true
    await expect(c.group(0).get(key)).rejects.toBeInstanceOf(LoadError)
    expect(c.group(0).stats().staleHits).toBe(0)
  })
})
