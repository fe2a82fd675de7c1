/**
 * Metrics and diagnostics (issue 6): `cache.metrics()` is Prometheus text
 * exposition that a real parser (parse-prometheus-text-format) reads back
 * with the right families, types, labels and values; it is served at an
 * opt-in `metricsPath`; events reach `node:diagnostics_channel` subscribers,
 * and nothing is built for them while nobody listens.
 */
import diagnostics from 'node:diagnostics_channel'
import { request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { ENTRY_OVERHEAD_BYTES, NotFoundError, OFF_HEAP_OVERHEAD_BYTES, Peercache, serverUrl, type GroupStats, type PeercacheEvents } from '../src/index.js'
import { Notifier, createEmitter } from '../src/events.js'
import { LOAD_BUCKETS_SECONDS } from '../src/stats.js'
import { noopLogger } from '../src/logger.js'
import { closeServer, listenLocal, startCluster, type Cluster } from './helpers/cluster.js'
import { closedPortUrl, keysOwnedBy, keysOwnedIn } from './helpers/features-cluster.js'
import { parsePrometheus, parseSamples, type FlatSample, type ParsedFamily } from './helpers/features-prometheus.js'

/**
 * REQUIRED lists the families issues 6 and 11 ask for, with their type and
 * labels (every one but `peercache_peer_up` also has `group`).
 */
const REQUIRED: ReadonlyArray<[name: string, type: ParsedFamily['type'], labels: string[]]> = [
  ['peercache_gets_total', 'COUNTER', []],
  ['peercache_cache_hits_total', 'COUNTER', ['cache']],
  ['peercache_loads_total', 'COUNTER', []],
  ['peercache_loads_deduped_total', 'COUNTER', []],
  ['peercache_local_loads_total', 'COUNTER', []],
  ['peercache_peer_loads_total', 'COUNTER', []],
  ['peercache_peer_errors_total', 'COUNTER', ['peer']],
  ['peercache_server_requests_total', 'COUNTER', []],
  ['peercache_cache_bytes', 'GAUGE', ['cache']],
  ['peercache_cache_items', 'GAUGE', ['cache']],
  ['peercache_cache_evictions_total', 'COUNTER', ['cache']],
  ['peercache_load_duration_seconds', 'HISTOGRAM', ['source']],
  ['peercache_peer_up', 'GAUGE', ['peer']],
]

/** Counters that mirror one field of group.stats(). */
const COUNTER_FIELDS: ReadonlyArray<[name: string, field: keyof Omit<GroupStats, 'main' | 'hot'>]> = [
  ['peercache_gets_total', 'gets'],
  ['peercache_loads_total', 'loads'],
  ['peercache_loads_deduped_total', 'loadsDeduped'],
  ['peercache_local_loads_total', 'localLoads'],
  ['peercache_peer_loads_total', 'peerLoads'],
  ['peercache_server_requests_total', 'serverRequests'],
]

/** Per-cache series and the CacheStats field each mirrors. */
const CACHE_FIELDS: ReadonlyArray<[name: string, field: 'hits' | 'bytes' | 'items' | 'evictions']> = [
  ['peercache_cache_hits_total', 'hits'],
  ['peercache_cache_bytes', 'bytes'],
  ['peercache_cache_items', 'items'],
  ['peercache_cache_evictions_total', 'evictions'],
]

let cluster: Cluster | undefined
const closers: Array<() => Promise<void>> = []

afterEach(async () => {
  await cluster?.close()
  cluster = undefined
  for (const close of closers.splice(0).reverse()) await close()
})

/** standalone makes a Peercache without peers, closed after the test. */
function standalone(options: ConstructorParameters<typeof Peercache>[0] = {}): Peercache {
  const cache = new Peercache({ env: {}, ...options })
  closers.push(() => cache.close())
  return cache
}

/** one returns the single sample of `name` whose labels include `labels`; fails unless exactly one matches. */
function one(samples: readonly FlatSample[], name: string, labels: Record<string, string>): number {
  const matches = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  expect(matches, `${name} ${JSON.stringify(labels)}`).toHaveLength(1)
  return matches[0]!.value
}

/** family finds a parsed family by name, failing when absent or duplicated (families must be contiguous). */
function family(families: readonly ParsedFamily[], name: string): ParsedFamily {
  const found = families.filter((f) => f.name === name)
  expect(found, name).toHaveLength(1)
  return found[0]!
}

/** A loader that knows two missing keys and makes 100-byte values (so a small cache evicts). */
function loader(key: string): string {
  if (key.startsWith('missing')) throw new NotFoundError(`no ${key}`)
  return `${key}:`.padEnd(100, '.')
}

/** startBusyCluster runs 2 members with groups `kv` and `small` and some traffic on both. */
async function startBusyCluster(): Promise<Cluster> {
  const dead = await closedPortUrl()
  const c = await startCluster(
    2,
    ({ cache }) => {
      cache.group({ name: 'kv', cacheBytes: 1 << 20, load: loader })
      cache.group({ name: 'small', cacheBytes: 6 * (110 + ENTRY_OVERHEAD_BYTES + OFF_HEAP_OVERHEAD_BYTES), load: loader }) // about 6 entries
    },
    // A third peer that never answers: its keys cost a peer error, then fail over.
    { options: (_i, urls) => ({ peers: [...urls, dead], hotCacheProbability: 1, health: { failureThreshold: 1 } }) },
  )
  cluster = c
  const keys = Array.from({ length: 30 }, (_, i) => `k-${i}`)
  // Each member's first request goes to the dead peer, for a key it owns: a peer error every run, whatever
  // else (a batch, a peek) would have found it dead first and routed around it without a kv fetch.
  for (const member of [0, 1]) {
    const deadKey = keys.find((key) => c.caches[member]!.ownerOf(key) === dead)
    if (deadKey === undefined) throw new Error('no key of the 30 is owned by the dead peer')
    await c.group(member, 'kv').get(deadKey)
  }
  for (const name of ['kv', 'small']) {
    for (const member of [0, 1]) {
      const group = c.group(member, name)
      await group.getMany(keys)
      for (const key of keys.slice(0, 10)) await group.get(key)
      await Promise.allSettled([group.get('missing-1'), group.get('missing-1'), group.get('missing-2')])
    }
  }
  return c
}

describe('cache.metrics()', () => {
  it('parses with a Prometheus text parser: every required family, its type and its labels', async () => {
    const c = await startBusyCluster()
    const text = c.caches[0]!.metrics()
    const families = parsePrometheus(text)
    const samples = parseSamples(text)

    for (const [name, type, labels] of REQUIRED) {
      const f = family(families, name)
      expect(f.type, name).toBe(type)
      expect(f.help.length, name).toBeGreaterThan(0)
      const series = samples.filter((s) => s.name === name || s.name.startsWith(`${name}_`))
      expect(series.length, name).toBeGreaterThan(0)
      for (const s of series) {
        if (name === 'peercache_peer_up') expect(Object.keys(s.labels), s.name).not.toContain('group')
        else expect(Object.keys(s.labels), s.name).toContain('group')
        for (const label of labels) expect(Object.keys(s.labels), s.name).toContain(label)
        expect(Number.isNaN(s.value), s.name).toBe(false)
      }
      // Each series appears once per group (and cache / peer / le).
      const ids = series.map((s) => `${s.name}${JSON.stringify(s.labels)}`)
      expect(new Set(ids).size, name).toBe(ids.length)
    }
    for (const s of samples.filter((x) => x.name.startsWith('peercache_cache_'))) expect(['main', 'hot']).toContain(s.labels.cache)
    for (const s of samples.filter((x) => x.name === 'peercache_load_duration_seconds_bucket')) expect(s.labels.le).toBeDefined()
    // Every family name is unique: no family is split in two.
    expect(new Set(families.map((f) => f.name)).size).toBe(families.length)
  })

  it('reports the same numbers as cache.stats(), for every group', async () => {
    const c = await startBusyCluster()
    for (const member of [0, 1]) {
      const cache = c.caches[member]!
      const samples = parseSamples(cache.metrics())
      const stats = cache.stats()
      expect(Object.keys(stats).sort()).toEqual(['kv', 'small'])
      for (const [group, s] of Object.entries(stats)) {
        for (const [name, field] of COUNTER_FIELDS) expect(one(samples, name, { group }), `${member} ${group} ${name}`).toBe(s[field])
        // Peer errors are split by peer; they add up to the group's count.
        const byPeer = samples.filter((x) => x.name === 'peercache_peer_errors_total' && x.labels.group === group)
        expect(byPeer.map((x) => x.labels.peer).sort(), `${member} ${group}`).toEqual(cache.peers.filter((p) => p !== cache.self).sort())
        expect(byPeer.reduce((sum, x) => sum + x.value, 0), `${member} ${group}`).toBe(s.peerErrors)
        for (const cacheName of ['main', 'hot'] as const) {
          for (const [name, field] of CACHE_FIELDS) {
            expect(one(samples, name, { group, cache: cacheName }), `${member} ${group} ${name} ${cacheName}`).toBe(s[cacheName][field])
          }
        }
      }
      // The traffic really moved the numbers that matter.
      const kv = stats.kv!
      expect(kv.peerLoads).toBeGreaterThan(0)
      expect(kv.peerErrors).toBeGreaterThan(0)
      expect(kv.serverRequests).toBeGreaterThan(0)
      expect(kv.main.hits + kv.hot.hits).toBeGreaterThan(0)
      expect(stats.small!.main.evictions + stats.small!.hot.evictions).toBeGreaterThan(0)
    }
  })

  it('histogram: per source, cumulative buckets in le order, +Inf = _count = loads observed', async () => {
    const c = await startBusyCluster()
    for (const member of [0, 1]) {
      const cache = c.caches[member]!
      const text = cache.metrics()
      const samples = parseSamples(text)
      for (const [group, s] of Object.entries(cache.stats())) {
        // One observation per successful load: the local loader's (source="local") and each value fetched from an owner ("peer").
        for (const [source, loads] of [['local', s.localLoads], ['peer', s.peerLoads]] as const) {
          const labels = { group, source }
          const buckets = samples.filter((x) => x.name === 'peercache_load_duration_seconds_bucket' && x.labels.group === group && x.labels.source === source)
          expect(buckets.map((b) => b.labels.le)).toEqual([...LOAD_BUCKETS_SECONDS.map(String), '+Inf'])
          const counts = buckets.map((b) => b.value)
          for (let i = 1; i < counts.length; i++) expect(counts[i]!).toBeGreaterThanOrEqual(counts[i - 1]!)
          const count = one(samples, 'peercache_load_duration_seconds_count', labels)
          expect(counts.at(-1)).toBe(count)
          expect(count, `${member} ${group} ${source}`).toBe(loads)
          expect(count).toBeGreaterThan(0)
          expect(one(samples, 'peercache_load_duration_seconds_sum', labels)).toBeGreaterThanOrEqual(0)
        }
      }
      // The library's own histogram view agrees on the buckets of the last group.
      const histogram = family(parsePrometheus(text), 'peercache_load_duration_seconds')
      expect(Object.keys(histogram.metrics[0]!.buckets ?? {})).toContain('+Inf')
    }
  })

  it('counts a standalone group’s loads exactly in _count', async () => {
    const cache = standalone()
    const group = cache.group({ name: 'solo', cacheBytes: 1 << 20, load: (key) => `v(${key})` })
    for (let i = 0; i < 7; i++) await group.get(`k${i}`)
    for (let i = 0; i < 7; i++) await group.get(`k${i}`) // hits: no new observation
    const samples = parseSamples(cache.metrics())
    expect(one(samples, 'peercache_load_duration_seconds_count', { group: 'solo', source: 'local' })).toBe(7)
    expect(one(samples, 'peercache_load_duration_seconds_bucket', { group: 'solo', source: 'local', le: '+Inf' })).toBe(7)
    expect(one(samples, 'peercache_load_duration_seconds_count', { group: 'solo', source: 'peer' })).toBe(0)
    expect(one(samples, 'peercache_gets_total', { group: 'solo' })).toBe(14)
    expect(one(samples, 'peercache_cache_hits_total', { group: 'solo', cache: 'main' })).toBe(cache.stats().solo!.main.hits)
  })

  it('escapes label values: a group named with " \\ and a newline parses back to the same name', async () => {
    const name = 'we"ird\\grp\nline two'
    const cache = standalone()
    const group = cache.group({ name, cacheBytes: 1 << 20, load: (key) => key })
    await group.get('a')
    const text = cache.metrics()
    parsePrometheus(text) // the whole exposition still parses
    const samples = parseSamples(text)
    expect(one(samples, 'peercache_gets_total', { group: name })).toBe(1)
    expect(one(samples, 'peercache_cache_items', { group: name, cache: 'main' })).toBe(1)
    expect(new Set(samples.map((s) => s.labels.group))).toEqual(new Set([name]))
  })

  it('peercache_peer_up flips to 0 once a peer is marked down', async () => {
    const server = await listenLocal()
    closers.push(() => closeServer(server))
    const self = serverUrl(server)
    const dead = await closedPortUrl()
    const cache = standalone({ self, peers: [self, dead], health: { failureThreshold: 1 } })
    server.on('request', cache.handler())
    const group = cache.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => `v(${key})` })
    const up = (): number => one(parseSamples(cache.metrics()), 'peercache_peer_up', { peer: dead })

    expect(up()).toBe(1)
    const downs: Array<PeercacheEvents['peer-down']> = []
    cache.events.on('peer-down', (e) => downs.push(e))
    const [key] = keysOwnedIn([self, dead], dead, 1, 'dead') as [string]
    expect(await group.getString(key)).toBe(`v(${key})`) // loaded locally after the peer error
    expect(downs.map((d) => d.peer)).toEqual([dead])
    expect(up()).toBe(0)
    expect(one(parseSamples(cache.metrics()), 'peercache_peer_errors_total', { group: 'kv', peer: dead })).toBe(1)
    // Only other peers are listed: not self.
    expect(parseSamples(cache.metrics()).filter((s) => s.name === 'peercache_peer_up').map((s) => s.labels.peer)).toEqual([dead])
  })
})

describe('metric labels (issue 11)', () => {
  it('peercache_peer_up appears once per peer, however many groups there are', async () => {
    const c = await startBusyCluster() // 2 groups, 2 other peers per member
    for (const member of [0, 1]) {
      const cache = c.caches[member]!
      const ups = parseSamples(cache.metrics()).filter((s) => s.name === 'peercache_peer_up')
      const others = cache.peers.filter((p) => p !== cache.self)
      expect(ups.map((s) => s.labels.peer).sort()).toEqual([...others].sort())
      for (const s of ups) expect(Object.keys(s.labels)).toEqual(['peer'])
    }
  })

  it('counts peer errors by peer and load durations by source', async () => {
    const c = await startBusyCluster()
    const dead = c.caches[0]!.peers.find((p) => !c.urls.includes(p))!
    const samples = parseSamples(c.caches[0]!.metrics())
    const kv = c.caches[0]!.stats().kv!
    // Only the dead peer failed; the live one has a zero series.
    expect(one(samples, 'peercache_peer_errors_total', { group: 'kv', peer: dead })).toBe(kv.peerErrors)
    expect(one(samples, 'peercache_peer_errors_total', { group: 'kv', peer: c.urls[1]! })).toBe(0)
    expect(one(samples, 'peercache_load_duration_seconds_count', { group: 'kv', source: 'peer' })).toBe(kv.peerLoads)
    expect(one(samples, 'peercache_load_duration_seconds_count', { group: 'kv', source: 'local' })).toBe(kv.localLoads)
  })
})

describe('metricsPath', () => {
  it('serves the metrics at the opt-in path from listen()', async () => {
    const cache = standalone({ metricsPath: '/metrics' })
    const group = cache.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => `v(${key})` })
    await group.get('a')
    await group.get('a')
    const server = await cache.listen(0, '127.0.0.1')
    const res = await request(`${serverUrl(server)}/metrics`)
    const body = await res.body.text()
    expect(res.statusCode).toBe(200)
    expect(String(res.headers['content-type'])).toMatch(/^text\/plain/)
    expect(body).toBe(cache.metrics())
    expect(one(parseSamples(body), 'peercache_gets_total', { group: 'kv' })).toBe(2)
    // The peer endpoint still works next to it.
    const peer = await request(`${serverUrl(server)}/_groupcache/kv/a`)
    await peer.body.dump()
    expect(peer.statusCode).toBe(200)
  })

  it('is off by default: handler() answers 404 at /metrics', async () => {
    const cache = standalone()
    cache.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => `v(${key})` })
    const server = await cache.listen(0, '127.0.0.1')
    const res = await request(`${serverUrl(server)}/metrics`)
    await res.body.dump()
    expect(res.statusCode).toBe(404)
  })

  it('mounted as middleware, hands other paths to next', async () => {
    const cache = standalone({ metricsPath: '/metrics' })
    const handler = cache.handler()
    const server = await listenLocal()
    closers.push(() => closeServer(server))
    const passed: string[] = []
    server.on('request', (req, res) =>
      handler(req, res, () => {
        passed.push(req.url ?? '')
        res.statusCode = 418
        res.end()
      }),
    )
    const other = await request(`${serverUrl(server)}/health`)
    await other.body.dump()
    expect(other.statusCode).toBe(418)
    const metrics = await request(`${serverUrl(server)}/metrics`)
    await metrics.body.dump()
    expect(metrics.statusCode).toBe(200)
    expect(passed).toEqual(['/health'])
  })
})

describe('node:diagnostics_channel', () => {
  it('publishes hit and load on peercache:hit / peercache:load with group and key', async () => {
    const hits: Array<PeercacheEvents['hit']> = []
    const loads: Array<PeercacheEvents['load']> = []
    const onHit = (message: unknown): void => void hits.push(message as PeercacheEvents['hit'])
    const onLoad = (message: unknown): void => void loads.push(message as PeercacheEvents['load'])
    diagnostics.subscribe('peercache:hit', onHit)
    diagnostics.subscribe('peercache:load', onLoad)
    try {
      const cache = standalone()
      const group = cache.group({ name: 'traced', cacheBytes: 1 << 20, load: (key) => `v(${key})` })
      await group.get('a')
      await group.get('a')
      expect(loads.filter((l) => l.group === 'traced')).toEqual([
        { group: 'traced', key: 'a', source: 'local', durationMs: expect.any(Number) as number },
      ])
      expect(hits.filter((h) => h.group === 'traced')).toEqual([{ group: 'traced', key: 'a', cache: 'main' }])
    } finally {
      diagnostics.unsubscribe('peercache:hit', onHit)
      diagnostics.unsubscribe('peercache:load', onLoad)
    }
  })

  it('publishes peer loads with the peer, across a real cluster', async () => {
    const loads: Array<PeercacheEvents['load']> = []
    const onLoad = (message: unknown): void => void loads.push(message as PeercacheEvents['load'])
    diagnostics.subscribe('peercache:load', onLoad)
    try {
      const c = await startCluster(2, ({ cache }) => void cache.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => `v(${key})` }))
      cluster = c
      const [key] = keysOwnedBy(c, 1, 1, 'remote') as [string]
      await c.group(0).get(key)
      const seen = loads.filter((l) => l.key === key).map(({ group, key: k, source, peer }) => ({ group, key: k, source, peer }))
      // The owner's local load (serving the request) and the asker's peer load.
      expect(seen).toContainEqual({ group: 'kv', key, source: 'local', peer: undefined })
      expect(seen).toContainEqual({ group: 'kv', key, source: 'peer', peer: c.urls[1] })
    } finally {
      diagnostics.unsubscribe('peercache:load', onLoad)
    }
  })

  it('Notifier.wants is false with no subscriber and no mitt listener, true with either', () => {
    const notifier = new Notifier(createEmitter(), noopLogger())
    for (const type of ['hit', 'miss', 'load', 'load-error', 'evict', 'peer-error', 'peer-down', 'peer-up'] as const) {
      expect(notifier.wants(type), type).toBe(false)
    }
    const listener = (): void => {}
    notifier.emitter.on('hit', listener)
    expect(notifier.wants('hit')).toBe(true)
    expect(notifier.wants('miss')).toBe(false)
    notifier.emitter.off('hit', listener)
    expect(notifier.wants('hit')).toBe(false)

    notifier.emitter.on('*', listener)
    expect(notifier.wants('evict')).toBe(true)
    notifier.emitter.off('*', listener)
    expect(notifier.wants('evict')).toBe(false)

    const subscriber = (): void => {}
    diagnostics.subscribe('peercache:miss', subscriber)
    try {
      expect(notifier.wants('miss')).toBe(true)
      expect(notifier.wants('hit')).toBe(false)
    } finally {
      diagnostics.unsubscribe('peercache:miss', subscriber)
    }
    expect(notifier.wants('miss')).toBe(false)
  })

  it('does not publish while nobody subscribes', async () => {
    const channel = diagnostics.channel('peercache:hit')
    expect(channel.hasSubscribers).toBe(false)
    const cache = standalone()
    const group = cache.group({ name: 'quiet', cacheBytes: 1 << 20, load: (key) => `v(${key})` })
    const published: unknown[] = []
    const publish = channel.publish.bind(channel)
    channel.publish = (message: unknown) => {
      published.push(message)
      publish(message)
    }
    try {
      await group.get('a')
      await group.get('a')
    } finally {
      channel.publish = publish
    }
    expect(published).toEqual([])
  })
})
