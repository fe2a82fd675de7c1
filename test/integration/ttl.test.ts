/**
 * TTL across real peers on loopback (issue 6). Every member gets the same
 * injected clock (`now`, moved by the test), so expiry is checked without
 * sleeping: the owner stamps an absolute expiry, it travels in GetResponse
 * field 3 as Unix nanoseconds, the asker's hot copy dies with it, and a
 * value that arrives already expired is a miss.
 */
import { request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { InvalidArgumentError, LoadError, codecs, type Group, type LoadResult } from '../../src/index.js'
import { decodeGetResponse } from '../../src/proto/codec.js'
import { startCluster, type Cluster, type MemberOptions } from '../helpers/cluster.js'
import { KEY_PREFIX, NS_PER_MS, keysOwnedBy, readInt64Field, textOf } from '../helpers/features-cluster.js'

/** T0 is a 2030 timestamp: its nanoseconds exceed 2^53, so the wire conversion must be exact. */
const T0 = Date.UTC(2030, 0, 1, 12, 0, 0, 123)
const ASKER = 0
const OWNER = 1

let cluster: Cluster | undefined
/** now is the clock every member reads (unless a test gives one member an offset). */
let now = T0

afterEach(async () => {
  await cluster?.close()
  cluster = undefined
  now = T0
})

interface TtlSetup {
  ttl: number
  ttlJitter?: number
  /** Per-member clock offset in ms, added to `now`. */
  offset?: (index: number) => number
  options?: MemberOptions
  /** What the loader returns for key, given the member's clock reading; default `${key}@${clock}`. */
  result?: (key: string, clock: number) => LoadResult
}

/** startTtlCluster starts 2 members with group `kv` (ttl from setup) and hot mirroring always on. */
async function startTtlCluster(setup: TtlSetup): Promise<Cluster> {
  const offsets: number[] = []
  const c = await startCluster(
    2,
    ({ cache, track, index }) => {
      const clock = (): number => now + (offsets[index] ?? 0)
      cache.group({
        name: 'kv',
        cacheBytes: 1 << 20,
        ttl: setup.ttl,
        ...(setup.ttlJitter === undefined ? {} : { ttlJitter: setup.ttlJitter }),
        load: track((key) => (setup.result ?? ((k, t) => `${k}@${t}`))(key, clock())),
      })
    },
    {
      options: (index) => {
        offsets[index] = setup.offset?.(index) ?? 0
        return { hotCacheProbability: 1, ...setup.options, clock: () => now + (offsets[index] ?? 0) }
      },
    },
  )
  cluster = c
  return c
}

/** rawGet asks member `index` for key over the wire (as a peer would) and returns the GetResponse bytes. */
async function rawGet(c: Cluster, index: number, key: string): Promise<Uint8Array> {
  const res = await request(`${c.urls[index]}${KEY_PREFIX}kv/${encodeURIComponent(key)}`)
  const body = new Uint8Array(await res.body.arrayBuffer())
  expect(res.statusCode).toBe(200)
  expect(res.headers['content-type']).toBe('application/x-protobuf')
  return body
}

/** expectWireExpiry checks that the owner's answer for key carries expiry `ms` in field 3, in exact nanoseconds. */
async function expectWireExpiry(c: Cluster, key: string, ms: number): Promise<void> {
  const bytes = await rawGet(c, OWNER, key)
  expect(decodeGetResponse(bytes).expiresAt).toBe(ms)
  expect(readInt64Field(bytes, 3)).toBe(BigInt(ms) * NS_PER_MS)
}

describe('group ttl across peers', () => {
  it('stamps the expiry at the owner, sends it in field 3, and expires the hot copy with it', async () => {
    const c = await startTtlCluster({ ttl: 1000 })
    const [key] = keysOwnedBy(c, OWNER, 1, 'ttl') as [string]
    const asker = c.group(ASKER)
    const owner = c.group(OWNER)

    expect(await asker.getString(key)).toBe(`${key}@${T0}`)
    expect(c.loads[OWNER]!.get(key)).toBe(1)
    expect(c.loads[ASKER]!.get(key)).toBeUndefined()
    expect(asker.stats().hot.items).toBe(1)

    // The owner's answer on the wire: field 3 = now + ttl, as int64 Unix nanoseconds.
    await expectWireExpiry(c, key, T0 + 1000)
    const served = owner.stats().serverRequests

    // One ms before the expiry the asker answers from its hot copy: no request.
    now = T0 + 999
    const hotHits = asker.stats().hot.hits
    expect(await asker.getString(key)).toBe(`${key}@${T0}`)
    expect(owner.stats().serverRequests).toBe(served)
    expect(asker.stats().hot.hits).toBe(hotHits + 1)
    expect(c.loads[OWNER]!.get(key)).toBe(1)

    // At the expiry nothing serves it any more: neither the asker's hot copy nor the owner's main entry.
    now = T0 + 1000
    expect(asker.peek(key)).toBeUndefined()
    expect(await asker.getString(key)).toBe(`${key}@${T0 + 1000}`)
    expect(owner.stats().serverRequests).toBe(served + 1)
    expect(c.loads[OWNER]!.get(key)).toBe(2)
    expect(c.loads[ASKER]!.get(key)).toBeUndefined()
    await expectWireExpiry(c, key, T0 + 2000)
  })

  it('expires the owner’s own main entry at the group ttl', async () => {
    const c = await startTtlCluster({ ttl: 1000 })
    const [key] = keysOwnedBy(c, OWNER, 1, 'own') as [string]
    const owner = c.group(OWNER)
    expect(await owner.getString(key)).toBe(`${key}@${T0}`)
    now = T0 + 999
    expect(owner.peek(key)).toBeDefined()
    expect(await owner.getString(key)).toBe(`${key}@${T0}`)
    now = T0 + 1000
    expect(owner.peek(key)).toBeUndefined()
    expect(await owner.getString(key)).toBe(`${key}@${T0 + 1000}`)
    expect(c.loads[OWNER]!.get(key)).toBe(2)
  })

  it('carries the expiry in batch answers too (getMany)', async () => {
    const c = await startTtlCluster({ ttl: 1000 })
    const keys = keysOwnedBy(c, OWNER, 3, 'batch')
    const asker = c.group(ASKER)
    const found = await asker.getMany(keys)
    expect(found.size).toBe(3)
    expect(asker.stats().hot.items).toBe(3)
    now = T0 + 999
    for (const key of keys) expect(asker.peek(key)).toBeDefined()
    now = T0 + 1000
    for (const key of keys) expect(asker.peek(key)).toBeUndefined()
  })
})

describe('per-value expiry from the loader', () => {
  const result = (key: string, clock: number): LoadResult => {
    if (key.startsWith('short')) return { value: `short@${clock}`, ttl: 50 }
    if (key.startsWith('abs')) return { value: `abs@${clock}`, expiresAt: T0 + 5000 }
    if (key.startsWith('both')) return { value: `both@${clock}`, ttl: 50, expiresAt: T0 + 3000 }
    if (key.startsWith('never')) return { value: `never@${clock}`, ttl: 0 }
    return `plain@${clock}`
  }

  it('{ value, ttl } and { value, expiresAt } override the group ttl, on the wire and in the hot cache', async () => {
    const c = await startTtlCluster({ ttl: 1000, result })
    const [short] = keysOwnedBy(c, OWNER, 1, 'short') as [string]
    const [abs] = keysOwnedBy(c, OWNER, 1, 'abs') as [string]
    const [both] = keysOwnedBy(c, OWNER, 1, 'both') as [string]
    const [plain] = keysOwnedBy(c, OWNER, 1, 'plain') as [string]
    const [never] = keysOwnedBy(c, OWNER, 1, 'never') as [string]
    const asker = c.group(ASKER)
    for (const key of [short, abs, both, plain, never]) await asker.get(key)
    expect(asker.stats().hot.items).toBe(5)

    await expectWireExpiry(c, short, T0 + 50)
    await expectWireExpiry(c, abs, T0 + 5000)
    await expectWireExpiry(c, both, T0 + 3000) // expiresAt wins over ttl
    await expectWireExpiry(c, plain, T0 + 1000)
    // ttl 0 means never: field 3 is absent, as in Go groupcache's plain answer.
    const neverBytes = await rawGet(c, OWNER, never)
    expect(readInt64Field(neverBytes, 3)).toBeUndefined()
    expect(decodeGetResponse(neverBytes).expiresAt).toBe(0)

    const alive = (t: number): string[] => {
      now = t
      return [short, abs, both, plain, never].filter((key) => asker.peek(key) !== undefined)
    }
    expect(alive(T0 + 49)).toEqual([short, abs, both, plain, never])
    expect(alive(T0 + 50)).toEqual([abs, both, plain, never])
    expect(alive(T0 + 999)).toEqual([abs, both, plain, never])
    expect(alive(T0 + 1000)).toEqual([abs, both, never])
    expect(alive(T0 + 3000)).toEqual([abs, never])
    expect(alive(T0 + 5000)).toEqual([never])

    // The expired short value is reloaded at the owner on the next get.
    now = T0 + 6000
    expect(await asker.getString(short)).toBe(`short@${T0 + 6000}`)
    expect(c.loads[OWNER]!.get(short)).toBe(2)
  })
})

describe('ttl jitter', () => {
  it('takes random × ttlJitter off the ttl (random → 0.5, jitter 100: expiry = now + ttl − 50)', async () => {
    const c = await startTtlCluster({ ttl: 1000, ttlJitter: 100, options: { random: () => 0.5 } })
    const [remote] = keysOwnedBy(c, OWNER, 1, 'jit') as [string]
    const [local] = keysOwnedBy(c, ASKER, 1, 'jit-local') as [string]
    const asker = c.group(ASKER)
    await asker.get(remote)
    await asker.get(local)
    await expectWireExpiry(c, remote, T0 + 950)

    now = T0 + 949
    expect(asker.peek(remote)).toBeDefined() // hot copy
    expect(asker.peek(local)).toBeDefined() // main entry, jittered the same way
    now = T0 + 950
    expect(asker.peek(remote)).toBeUndefined()
    expect(asker.peek(local)).toBeUndefined()
  })
})

describe('a value that arrives already expired', () => {
  it('is a miss: the asker loads locally and does not mirror it in hot', async () => {
    // The owner's clock is 10 s behind the asker's: it stamps now−10 s + 1 s,
    // which is 9 s in the asker's past when the answer arrives.
    const c = await startTtlCluster({ ttl: 1000, offset: (index) => (index === OWNER ? -10_000 : 0) })
    const [key] = keysOwnedBy(c, OWNER, 1, 'late') as [string]
    const asker = c.group(ASKER)

    // What the owner sends: its value, already expired by the asker's clock.
    await expectWireExpiry(c, key, T0 - 9000)
    expect(c.loads[OWNER]!.get(key)).toBe(1)

    expect(await asker.getString(key)).toBe(`${key}@${T0}`)
    expect(c.loads[ASKER]!.get(key)).toBe(1)
    const stats = asker.stats()
    expect(stats.hot.items).toBe(0)
    expect(stats.main.items).toBe(1) // the asker's own load, with its own expiry
    expect(textOf(asker.peek(key))).toBe(`${key}@${T0}`)
    now = T0 + 1000
    expect(asker.peek(key)).toBeUndefined()
  })
})

describe("context.setTtl: the loader's own ttl, for typed groups too", () => {
  /** startSetTtlCluster runs group `kv` (untyped) and `typed` (codecs.json) whose loaders call context.setTtl by key prefix. */
  async function startSetTtlCluster(): Promise<Cluster> {
    const c = await startCluster(
      2,
      ({ cache, track }) => {
        cache.group({
          name: 'kv',
          cacheBytes: 1 << 20,
          ttl: 1000,
          load: track((key, context) => {
            if (key.startsWith('set')) context.setTtl(50)
            if (key.startsWith('never')) context.setTtl(0)
            if (key.startsWith('bad')) context.setTtl(-1)
            if (key.startsWith('wins')) {
              context.setTtl(50)
              return { value: key, ttl: 300 }
            }
            return key
          }),
        })
        cache.group({
          name: 'typed',
          cacheBytes: 1 << 20,
          ttl: 1000,
          codec: codecs.json<{ id: string }>(),
          load: async (key, context) => {
            context.setTtl(70)
            return { id: key }
          },
        })
      },
      { options: () => ({ hotCacheProbability: 1, clock: () => now }) },
    )
    cluster = c
    return c
  }

  it('gives the returned value its expiry, at the owner, on the wire and in the asker’s hot copy; a returned ttl wins', async () => {
    const c = await startSetTtlCluster()
    const [set] = keysOwnedBy(c, OWNER, 1, 'set') as [string]
    const [never] = keysOwnedBy(c, OWNER, 1, 'never') as [string]
    const [wins] = keysOwnedBy(c, OWNER, 1, 'wins') as [string]
    const [plain] = keysOwnedBy(c, OWNER, 1, 'plain') as [string]
    const asker = c.group(ASKER)
    for (const key of [set, never, wins, plain]) expect(await asker.getString(key)).toBe(key)
    await expectWireExpiry(c, set, T0 + 50)
    await expectWireExpiry(c, wins, T0 + 300)
    await expectWireExpiry(c, plain, T0 + 1000)
    expect(readInt64Field(await rawGet(c, OWNER, never), 3)).toBeUndefined() // setTtl(0): never expires

    const alive = (t: number): string[] => {
      now = t
      return [set, never, wins, plain].filter((key) => asker.peek(key) !== undefined)
    }
    expect(alive(T0 + 49)).toEqual([set, never, wins, plain])
    expect(alive(T0 + 50)).toEqual([never, wins, plain])
    expect(alive(T0 + 300)).toEqual([never, plain])
    expect(alive(T0 + 1000)).toEqual([never])
  })

  it('works in a typed group, whose loader returns the value alone', async () => {
    const c = await startSetTtlCluster()
    const [key] = keysOwnedBy(c, OWNER, 1, 'typed') as [string]
    const typed = c.group(ASKER, 'typed') as unknown as Group<{ id: string }>
    expect(await typed.get(key)).toEqual({ id: key })
    now = T0 + 69
    expect(typed.peek(key)).toBeDefined()
    expect(c.group(OWNER, 'typed').peek(key)).toBeDefined()
    now = T0 + 70
    expect(typed.peek(key)).toBeUndefined()
    expect(c.group(OWNER, 'typed').peek(key)).toBeUndefined()
  })

  it('refuses a ttl it cannot keep: the load fails with LoadError, its cause the InvalidArgumentError', async () => {
    const c = await startSetTtlCluster()
    const [bad] = keysOwnedBy(c, OWNER, 1, 'bad') as [string]
    const error = await c.group(OWNER).get(bad).then(
      () => undefined,
      (err: unknown) => err,
    )
    expect(error).toBeInstanceOf(LoadError)
    expect((error as LoadError).cause).toBeInstanceOf(InvalidArgumentError)
    expect(c.group(OWNER).peek(bad)).toBeUndefined()
  })
})
