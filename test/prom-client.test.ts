/**
 * peercache/prom-client (issue 11): registerPeercacheMetrics puts every
 * peercache family into a real prom-client Registry, next to the app's own
 * metrics, with live values read at scrape time — the same names, labels
 * and numbers as cache.metrics().
 */
import { Counter, Registry } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import { Peercache } from '../src/index.js'
import { registerPeercacheMetrics } from '../src/prom-client.js'
import { METRIC_FAMILIES } from '../src/metrics.js'
import { startCluster, type Cluster } from './helpers/cluster.js'
import { keysOwnedBy } from './helpers/features-cluster.js'
import { parsePrometheus, parseSamples, type FlatSample } from './helpers/features-prometheus.js'

let cluster: Cluster | undefined
const caches: Peercache[] = []

afterEach(async () => {
  await cluster?.close()
  cluster = undefined
  for (const cache of caches.splice(0)) await cache.close()
})

/** standalone makes a Peercache without peers with group `kv`, closed after the test. */
function standalone(): Peercache {
  const cache = new Peercache({ env: {} })
  caches.push(cache)
  cache.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => `v(${key})` })
  return cache
}

/** sorted renders samples in one order, so two expositions can be compared sample by sample. */
function sorted(samples: readonly FlatSample[]): string[] {
  return samples.map((s) => `${s.name}${JSON.stringify(Object.entries(s.labels).sort())} ${s.value}`).sort()
}

function value(samples: readonly FlatSample[], name: string, labels: Record<string, string>): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
}

describe('registerPeercacheMetrics', () => {
  it('adds every family to an app registry next to the app’s own metrics, with the same samples as cache.metrics()', async () => {
    const c = await startCluster(2, ({ cache }) => void cache.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => `v(${key})` }))
    cluster = c
    const registry = new Registry()
    const appRequests = new Counter({ name: 'app_requests_total', help: 'The app’s own counter.', registers: [registry] })
    appRequests.inc(3)
    registerPeercacheMetrics(c.caches[0]!, { registry })

    const group = c.group(0)
    const [remote] = keysOwnedBy(c, 1, 1, 'remote') as [string]
    const [local] = keysOwnedBy(c, 0, 1, 'local') as [string]
    await group.get(remote)
    await group.get(local)
    await group.get(local)

    const text = await registry.metrics()
    expect(registry.contentType).toMatch(/^text\/plain/)
    const families = parsePrometheus(text)
    const names = families.map((f) => f.name)
    expect(names).toContain('app_requests_total')
    for (const family of METRIC_FAMILIES) {
      const parsed = families.find((f) => f.name === family.name)
      expect(parsed, family.name).toBeDefined()
      expect(parsed!.type, family.name).toBe(family.type.toUpperCase())
      expect(parsed!.help, family.name).toBe(family.help)
    }
    const samples = parseSamples(text)
    expect(value(samples, 'app_requests_total', {})).toBe(3)
    // Exactly the samples cache.metrics() shows, besides the app's own.
    const ours = samples.filter((s) => s.name.startsWith('peercache_'))
    expect(sorted(ours)).toEqual(sorted(parseSamples(c.caches[0]!.metrics())))
    expect(value(samples, 'peercache_gets_total', { group: 'kv' })).toBe(3)
    expect(value(samples, 'peercache_peer_loads_total', { group: 'kv' })).toBe(1)
    expect(value(samples, 'peercache_load_duration_seconds_count', { group: 'kv', source: 'peer' })).toBe(1)
    expect(value(samples, 'peercache_load_duration_seconds_count', { group: 'kv', source: 'local' })).toBe(1)
    expect(value(samples, 'peercache_peer_up', { peer: c.urls[1]! })).toBe(1)
  })

  it('reads live values at every scrape', async () => {
    const cache = standalone()
    const registry = new Registry()
    registerPeercacheMetrics(cache, { registry })
    const gets = async (): Promise<number | undefined> => value(parseSamples(await registry.metrics()), 'peercache_gets_total', { group: 'kv' })
    expect(await gets()).toBe(0)
    await cache.getGroup('kv')!.get('a')
    await cache.getGroup('kv')!.get('a')
    expect(await gets()).toBe(2)
    const json = await registry.getMetricsAsJSON()
    const items = json.find((m) => m.name === 'peercache_cache_items')!
    expect(items.values).toContainEqual(expect.objectContaining({ labels: { group: 'kv', cache: 'main' }, value: 1 }))
    // registry.resetMetrics() cannot lose peercache's numbers: they are read from the cache.
    registry.resetMetrics()
    expect(await gets()).toBe(2)
  })

  it('serves OpenMetrics too', async () => {
    const cache = standalone()
    const registry = new Registry<typeof Registry.OPENMETRICS_CONTENT_TYPE>()
    registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE)
    registerPeercacheMetrics(cache, { registry })
    await cache.getGroup('kv')!.get('a')
    const text = await registry.metrics()
    expect(text).toContain('# TYPE peercache_gets counter')
    expect(text).toContain('peercache_gets_total{group="kv"} 1')
    expect(text).toContain('peercache_load_duration_seconds_count{group="kv",source="local"} 1')
    expect(text.endsWith('# EOF\n')).toBe(true)
  })

  it('returns an unregister function; a second registration in one registry throws and leaves the first intact', async () => {
    const first = standalone()
    const second = standalone()
    const registry = new Registry()
    const unregister = registerPeercacheMetrics(first, { registry })
    expect(() => registerPeercacheMetrics(second, { registry })).toThrow(/already been registered/)
    expect(registry.getMetricsAsArray().map((m) => m.name).sort()).toEqual(METRIC_FAMILIES.map((f) => f.name).sort())
    unregister()
    expect(registry.getMetricsAsArray()).toEqual([])
    registerPeercacheMetrics(second, { registry })
    await second.getGroup('kv')!.get('b')
    expect(value(parseSamples(await registry.metrics()), 'peercache_gets_total', { group: 'kv' })).toBe(1)
  })
})
