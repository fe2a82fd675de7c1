/**
 * peercache/prom-client: puts a Peercache's metrics into the prom-client
 * registry an app already serves at `/metrics`, instead of a second
 * endpoint. Each family of src/metrics.ts becomes a prom-client metric whose
 * `collect()` reads the live numbers at scrape time, so nothing is counted
 * twice and nothing runs between scrapes. prom-client is an optional peer
 * dependency: this module loads the app's own copy, and only when imported.
 */
import { Counter, Gauge, register as globalRegistry, type Registry, type RegistryContentType } from 'prom-client'
import { internalsOf } from './peercache.js'
import { METRIC_FAMILIES, type MetricFamily, type MetricsSnapshot, type Sample } from './metrics.js'
import type { Peercache } from './peercache.js'

/** PeercacheMetricsOptions configure registerPeercacheMetrics. */
export interface PeercacheMetricsOptions {
  /** The registry to register into. @default prom-client's global `register` */
  registry?: Registry<RegistryContentType>
}

/**
 * registerPeercacheMetrics registers collectors for every peercache metric
 * family (`peercache_gets_total`, …, the same names and labels as
 * `cache.metrics()`) in the registry, and returns a function that removes
 * them again. One Peercache per registry: a second registration of the same
 * names throws, as prom-client does for any duplicate.
 */
export function registerPeercacheMetrics(cache: Peercache, options: PeercacheMetricsOptions = {}): () => void {
  const registry = options.registry ?? globalRegistry
  const snapshot = (): MetricsSnapshot => internalsOf(cache).metricsSnapshot()
  const registered: string[] = []
  try {
    for (const family of METRIC_FAMILIES) {
      registerFamily(registry, family, snapshot)
      registered.push(family.name)
    }
  } catch (err) {
    for (const name of registered) registry.removeSingleMetric(name)
    throw err
  }
  return () => {
    for (const name of registered) registry.removeSingleMetric(name)
  }
}

function registerFamily(registry: Registry<RegistryContentType>, family: MetricFamily, snapshot: () => MetricsSnapshot): void {
  const config = { name: family.name, help: family.help, labelNames: family.labelNames, registers: [registry] }
  const samples = (): Sample[] => family.samples(snapshot())
  if (family.type === 'counter') {
    new Counter({
      ...config,
      collect() {
        this.reset()
        for (const s of samples()) this.inc(s.labels, s.value)
      },
    })
  } else if (family.type === 'gauge') {
    new Gauge({
      ...config,
      collect() {
        this.reset()
        for (const s of samples()) this.set(s.labels, s.value)
      },
    })
  } else {
    registry.registerMetric(histogramCollector(family, samples) as unknown as Parameters<Registry<RegistryContentType>['registerMetric']>[0])
  }
}

/**
 * histogramCollector is a prom-client metric of type histogram whose buckets
 * are read from peercache's own histograms: a prom-client Histogram can only
 * observe values, not take counts that were observed elsewhere.
 */
function histogramCollector(family: MetricFamily, samples: () => Sample[]): object {
  return {
    name: family.name,
    help: family.help,
    type: 'histogram',
    labelNames: family.labelNames,
    aggregator: 'sum',
    reset(): void {},
    get: async () => ({
      name: family.name,
      help: family.help,
      type: 'histogram',
      aggregator: 'sum',
      values: samples().map((s) => ({ metricName: s.name, labels: s.labels, value: s.value })),
    }),
  }
}
