/**
 * Every input is stored and served, or rejected up front (issue 13): each
 * value, ttl, expiry and option a caller or a loader can give either works
 * in this process AND over the wire, or fails where it is given with a typed
 * error — never accepted locally and then refused by the owner. Each case
 * runs on a real 2-member in-process cluster, for a key member 0 owns and a
 * key member 1 owns.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { InvalidArgumentError, LoadError, Peercache, type LoadResult, type PeercacheOptions } from '../../src/index.js'
import { MAX_EXPIRE_MS } from '../../src/proto/codec.js'
import { startCluster, type Cluster, type ClusterMember } from '../helpers/cluster.js'

const NOW = 1_800_000_000_000
const clock = (): number => NOW

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

/**
 * start runs two members (fixed clock, no hot-cache mirroring) whose group
 * `kv` loads `v(key)`, or, for keys `result:<name>`, the LoadResult named.
 */
async function start(results: Record<string, LoadResult> = {}): Promise<Cluster> {
  const groups = ({ cache, track }: ClusterMember): void => {
    const load = track((key) => results[key.slice(0, key.lastIndexOf('#'))] ?? `v(${key})`)
    cache.group({ name: 'kv', cacheBytes: 1 << 20, hotCacheProbability: 0, load })
  }
  cluster = await startCluster(2, groups, { options: { clock } })
  return cluster
}

/** keyOf returns a key `${prefix}#<i>` that member `owner` owns. */
function keyOf(c: Cluster, owner: number, prefix: string): string {
  for (let i = 0; ; i++) if (c.ownerOf(`${prefix}#${i}`) === owner) return `${prefix}#${i}`
}

/** requests counts the peer requests every member served so far. */
function requests(c: Cluster): number {
  return c.caches.reduce((sum, cache) => sum + (cache.getGroup('kv')?.stats().serverRequests ?? 0), 0)
}

const OWNERS = [
  ['this process owns the key', 0],
  ['a peer owns the key', 1],
] as const

describe('set(key, value): only strings and Uint8Arrays', () => {
  const notValues: Array<[string, unknown]> = [
    ['5', 5],
    ['1e8', 1e8],
    ['true', true],
    ['{}', {}],
    ['null', null],
    ['undefined', undefined],
    ['[1, 2]', [1, 2]],
    ['an ArrayBuffer', new ArrayBuffer(4)],
    ['a bigint', 5n],
  ]

  it.each(OWNERS)('%s: each is an InvalidArgumentError; nothing is sent or stored', async (_where, owner) => {
    const c = await start()
    const key = keyOf(c, owner, 'value')
    expect(await c.group(0).getString(key)).toBe(`v(${key})`)
    const before = requests(c)
    for (const [label, value] of notValues) {
      await expect(c.group(0).set(key, value as string), label).rejects.toBeInstanceOf(InvalidArgumentError)
    }
    expect(requests(c)).toBe(before)
    expect(await c.group(owner).getString(key)).toBe(`v(${key})`)
    expect(await c.group(0).getString(key)).toBe(`v(${key})`)
  })

  it.each(OWNERS)('%s: a string, a Uint8Array, a Buffer and an empty value are stored and served by both members', async (_where, owner) => {
    const c = await start()
    const cases: Array<[Uint8Array | string, string]> = [
      ['text ü', 'text ü'],
      [Uint8Array.of(104, 105), 'hi'],
      [Buffer.from('buf'), 'buf'],
      ['', ''],
    ]
    for (const [i, [value, expected]] of cases.entries()) {
      const key = keyOf(c, owner, `stored-${i}`)
      await c.group(0).set(key, value)
      expect(await c.group(1).getString(key)).toBe(expected)
      expect(await c.group(0).getString(key)).toBe(expected)
    }
    expect(c.totalLoads()).toBe(0)
  })
})

describe('set options: ttl and expiresAt', () => {
  const refused: Array<[string, object]> = [
    ['ttl -1', { ttl: -1 }],
    ['ttl NaN', { ttl: Number.NaN }],
    ['ttl Infinity', { ttl: Number.POSITIVE_INFINITY }],
    ['ttl "5"', { ttl: '5' }],
    ['ttl past year 2262', { ttl: MAX_EXPIRE_MS - NOW + 1 }],
    ['ttl 1e300', { ttl: 1e300 }],
    ['expiresAt -1', { expiresAt: -1 }],
    ['expiresAt past year 2262', { expiresAt: MAX_EXPIRE_MS + 1 }],
    ['expiresAt 1e16', { expiresAt: 1e16 }],
    ['expiresAt NaN', { expiresAt: Number.NaN }],
    ['options null', null as unknown as object],
    ['signal not an AbortSignal', { signal: 'abort' }],
  ]

  it.each(OWNERS)('%s: out-of-range values are InvalidArgumentErrors, nothing sent or stored', async (_where, owner) => {
    const c = await start()
    const key = keyOf(c, owner, 'expiry')
    const before = requests(c)
    for (const [label, options] of refused) {
      await expect(c.group(0).set(key, 'x', options as never), label).rejects.toBeInstanceOf(InvalidArgumentError)
    }
    expect(requests(c)).toBe(before)
    expect(await c.group(0).getString(key)).toBe(`v(${key})`)
  })

  it.each(OWNERS)('%s: the extremes the wire carries work on both members, with the same expiry', async (_where, owner) => {
    const c = await start()
    const accepted: Array<[string, object]> = [
      ['ttl 0 (never)', { ttl: 0 }],
      ['ttl to the last wire millisecond', { ttl: MAX_EXPIRE_MS - NOW }],
      ['ttl 1.5 ms', { ttl: 1.5 }],
      ['expiresAt the last wire millisecond', { expiresAt: MAX_EXPIRE_MS }],
      ['expiresAt 0 (never)', { expiresAt: 0 }],
    ]
    for (const [i, [label, options]] of accepted.entries()) {
      const key = keyOf(c, owner, `extreme-${i}`)
      const report = await c.group(0).set(key, label, options)
      expect(report.unreachable, label).toEqual([])
      // The fixed clock never reaches any of these expiries: both members serve the value.
      expect(await c.group(1 - owner).getString(key), label).toBe(label)
      expect(await c.group(owner).getString(key), label).toBe(label)
    }
    expect(c.totalLoads()).toBe(0)
  })

  it('an expiry already past is accepted and behaves alike on both: the next get loads again', async () => {
    const c = await start()
    for (const owner of [0, 1]) {
      const key = keyOf(c, owner, 'past')
      await c.group(0).set(key, 'old', { expiresAt: NOW - 1 })
      expect(await c.group(0).getString(key)).toBe(`v(${key})`)
      expect(c.loadsOf(key)).toBe(1)
    }
  })
})

describe("a loader's { ttl, expiresAt }", () => {
  const bad: Record<string, LoadResult> = {
    huge: { value: 'x', ttl: 1e300 },
    late: { value: 'x', expiresAt: MAX_EXPIRE_MS + 1 },
    negative: { value: 'x', ttl: -5 },
    nan: { value: 'x', expiresAt: Number.NaN },
    text: { value: 'x', ttl: '5' as unknown as number },
  }
  const good: Record<string, LoadResult> = {
    last: { value: 'last', expiresAt: MAX_EXPIRE_MS },
    long: { value: 'long', ttl: MAX_EXPIRE_MS - NOW },
  }

  it.each(OWNERS)('%s: a result the wire cannot carry is a LoadError for every asker, loaded once, no peer error', async (_where, owner) => {
    const c = await start(bad)
    for (const name of Object.keys(bad)) {
      const key = keyOf(c, owner, name)
      await expect(c.group(0).get(key), name).rejects.toBeInstanceOf(LoadError)
      await expect(c.group(1).get(key), name).rejects.toBeInstanceOf(LoadError)
      // Each asker's get reaches the owner's loader once, never a second, local load after a 500.
      expect(c.loads[1 - owner]!.get(key) ?? 0, name).toBe(0)
    }
    expect(c.group(0).stats().peerErrors + c.group(1).stats().peerErrors).toBe(0)
  })

  it.each(OWNERS)('%s: the extremes the wire carries are served by both members', async (_where, owner) => {
    const c = await start(good)
    for (const [name, result] of Object.entries(good)) {
      const key = keyOf(c, owner, name)
      const expected = (result as { value: string }).value
      expect(await c.group(1 - owner).getString(key)).toBe(expected)
      expect(await c.group(owner).getString(key)).toBe(expected)
      expect(c.loadsOf(key)).toBe(1)
    }
  })
})

describe('options are checked together at construction', () => {
  let made: Peercache[] = []
  afterEach(async () => {
    await Promise.all(made.map((cache) => cache.close()))
    made = []
  })
  const make = (options: PeercacheOptions): Peercache => {
    const cache = new Peercache({ env: {}, ...options })
    made.push(cache)
    return cache
  }

  it.each<[string, PeercacheOptions]>([
    ['timeout past 2^31 - 1 ms (its timer would fire at once)', { transport: { timeoutMs: 2 ** 31 } }],
    ['closeTimeout past 2^31 - 1 ms', { deploy: { closeTimeoutMs: 3e9 } }],
    ['serverTimeouts.keepAliveTimeout past 2^31 - 1 ms', { server: { keepAliveTimeoutMs: 2 ** 31 } }],
    ['probeMinMs above probeMaxMs', { health: { probeMinMs: 5000, probeMaxMs: 1000 } }],
    ['a relative metricsPath', { metricsPath: 'metrics' }],
    ['a metricsPath under the peer endpoint', { metricsPath: '/_groupcache/metrics' }],
    ['a clock that is not a function', { clock: 5 as unknown as () => number }],
    ['coalesce that is not a boolean', { coalesce: 'yes' as unknown as boolean }],
  ])('refuses %s', (_label, options) => {
    expect(() => make(options)).toThrow(InvalidArgumentError)
  })

  it('refuses a group ttl whose expiry the wire cannot carry, and takes the largest one it can', () => {
    const cache = make({ clock })
    const load = (): string => 'x'
    expect(() => cache.group({ name: 'far', cacheBytes: 1024, load, ttl: MAX_EXPIRE_MS - NOW + 1 })).toThrow(InvalidArgumentError)
    expect(cache.group({ name: 'edge', cacheBytes: 1024, load, ttl: MAX_EXPIRE_MS - NOW }).name).toBe('edge')
  })

  it('takes the largest timers, a probeMinMs alone above the default probeMaxMs, and a metricsPath outside the endpoint', () => {
    const cache = make({ metricsPath: '/metrics', transport: { timeoutMs: 2 ** 31 - 1 }, deploy: { closeTimeoutMs: 2 ** 31 - 1 }, health: { probeMinMs: 60_000 } })
    expect(cache.basePath).toBe('/_groupcache/')
  })
})
