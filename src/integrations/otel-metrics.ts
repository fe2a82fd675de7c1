/**
 * otel-metrics: a Peercache's metric families (metrics.ts) as OpenTelemetry
 * instruments, so a team that ships OTLP needs neither the Prometheus
 * endpoint nor prom-client. The series are the Prometheus output's, with
 * OpenTelemetry's names: `peercache_gets_total` is the observable counter
 * `peercache.gets`, `peercache_cache_bytes` the gauge `peercache.cache_bytes`
 * (unit By); the labels become attributes of the same names.
 *
 * Counters and gauges are observable instruments read from the caches'
 * snapshot at collection time (one snapshot per cache per collection, for
 * every instrument: a batch callback), so nothing is counted twice and
 * nothing runs between collections. The load-duration histogram cannot be
 * observed (OpenTelemetry has no observable histogram): `peercache.load_duration`
 * (unit s) records each load as the `load` event announces it, for every
 * Peercache of the process, while the instrumentation is enabled.
 */
import diagnostics from 'node:diagnostics_channel'
import { ValueType, type Attributes, type BatchObservableResult, type Histogram, type Meter, type Observable } from '@opentelemetry/api'
import { channelName, type PeercacheEvents } from '../events.js'
import { internalsOf } from '../peercache.js'
import { METRIC_FAMILIES, type MetricFamily } from '../metrics.js'
import type { Peercache } from '../peercache.js'
import { LOAD_BUCKETS_SECONDS } from '../stats.js'

/** InstrumentName is a family's OpenTelemetry name and unit. */
export interface InstrumentName {
  name: string
  unit: string | undefined
}

/**
 * instrumentName maps a Prometheus family name to OpenTelemetry's
 * conventions: dots for the namespace, no `_total` on a counter, the unit
 * as a unit (`_seconds` leaves the name; `_bytes` stays, it names what is
 * measured).
 */
export function instrumentName(family: Pick<MetricFamily, 'name' | 'type'>): InstrumentName {
  let rest = family.name.replace(/^peercache_/, '')
  if (family.type === 'counter') rest = rest.replace(/_total$/, '')
  let unit: string | undefined
  if (rest.endsWith('_seconds')) {
    rest = rest.slice(0, -'_seconds'.length)
    unit = 's'
  } else if (rest.endsWith('_bytes')) unit = 'By'
  return { name: `peercache.${rest}`, unit }
}

const LOAD_CHANNEL = channelName('load')

/** MetricsBridge owns the instruments on the instrumentation's current meter and the caches they read. */
export class MetricsBridge {
  readonly #caches = new Set<Peercache>()
  readonly #enabled: () => boolean
  #meter: Meter | undefined
  /** The observable instrument of each counter and gauge family. */
  #observables = new Map<MetricFamily, Observable>()
  #histogram: Histogram | undefined
  #subscribed = false

  constructor(enabled: () => boolean) {
    this.#enabled = enabled
  }

  /** attach (re)creates every instrument on meter, leaving the previous meter's callback (setMeterProvider). */
  attach(meter: Meter): void {
    this.#meter?.removeBatchObservableCallback(this.#collect, [...this.#observables.values()])
    this.#meter = meter
    this.#observables = new Map()
    for (const family of METRIC_FAMILIES) {
      const { name, unit } = instrumentName(family)
      const options = { description: family.help, ...(unit === undefined ? {} : { unit }) }
      if (family.type === 'counter') this.#observables.set(family, meter.createObservableCounter(name, { ...options, valueType: ValueType.INT }))
      else if (family.type === 'gauge') this.#observables.set(family, meter.createObservableGauge(name, { ...options, valueType: ValueType.INT }))
      else this.#histogram = meter.createHistogram(name, { ...options, valueType: ValueType.DOUBLE, advice: { explicitBucketBoundaries: [...LOAD_BUCKETS_SECONDS] } })
    }
    meter.addBatchObservableCallback(this.#collect, [...this.#observables.values()])
  }

  /** observe reports cache's numbers at each collection, until the returned function is called. */
  observe(cache: Peercache): () => void {
    this.#caches.add(cache)
    return () => void this.#caches.delete(cache)
  }

  /** subscribe starts recording load durations (idempotent). */
  subscribe(): void {
    if (this.#subscribed) return
    this.#subscribed = true
    diagnostics.subscribe(LOAD_CHANNEL, this.#onLoad)
  }

  /** unsubscribe stops recording load durations (idempotent). */
  unsubscribe(): void {
    if (!this.#subscribed) return
    this.#subscribed = false
    diagnostics.unsubscribe(LOAD_CHANNEL, this.#onLoad)
  }

  /** The batch callback: one snapshot per observed cache, every family's samples from it. */
  readonly #collect = (result: BatchObservableResult): void => {
    if (!this.#enabled()) return
    for (const cache of this.#caches) {
      const snapshot = internalsOf(cache).metricsSnapshot()
      for (const [family, observable] of this.#observables) {
        for (const sample of family.samples(snapshot)) result.observe(observable, sample.value, sample.labels as Attributes)
      }
    }
  }

  readonly #onLoad = (message: unknown): void => {
    const { group, source, durationMs } = message as PeercacheEvents['load']
    this.#histogram?.record(durationMs / 1000, { group, source })
  }
}
