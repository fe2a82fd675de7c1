/**
 * peercache/opentelemetry in one process, with the real OpenTelemetry SDK
 * (test/helpers/otel-sdk.ts): registered the conventional way
 * (registerInstrumentations), it makes nested spans of gets and loads (the
 * loader's own spans nest under its load), records failures on them, keeps
 * keys out unless asked, stops with disable() (leaving the channels without
 * subscribers: the untraced path) and starts again with enable(); and it
 * reports the Prometheus output's series through the Metrics API.
 * Across processes: test/integration/opentelemetry.test.ts.
 */
import diagnostics from 'node:diagnostics_channel'
import { SpanKind, SpanStatusCode } from '@opentelemetry/api'
import { registerInstrumentations } from '@opentelemetry/instrumentation'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { NotFoundError, Peercache } from '../src/index.js'
import { PeercacheInstrumentation, type PeercacheInstrumentationConfig } from '../src/integrations/opentelemetry.js'
import { instrumentName } from '../src/integrations/otel-metrics.js'
import { METRIC_FAMILIES } from '../src/metrics.js'
import { internalsOf } from '../src/peercache.js'
import { TRACING_CHANNELS } from '../src/tracing.js'
import { metricPoints, startMeter, startSdk, type OtelSdk, type SpanRecord } from './helpers/otel-sdk.js'

let sdk: OtelSdk
const cleanups: Array<() => unknown> = []

beforeEach(() => {
  sdk = startSdk()
})

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  await sdk.shutdown()
})

/** instrument registers a PeercacheInstrumentation with the test SDK's providers (disabled after the test). */
function instrument(config: PeercacheInstrumentationConfig = {}): PeercacheInstrumentation {
  const instrumentation = new PeercacheInstrumentation(config)
  const deregister = registerInstrumentations({ instrumentations: [instrumentation], tracerProvider: sdk.tracerProvider, meterProvider: sdk.meterProvider })
  cleanups.push(deregister)
  return instrumentation
}

function standalone(group: string, load: (key: string) => string | Promise<string>): Peercache {
  const cache = new Peercache({ env: {} })
  cleanups.push(() => cache.close())
  cache.group({ name: group, cacheBytes: 1 << 20, load })
  return cache
}

function named(spans: readonly SpanRecord[], name: string): SpanRecord[] {
  return spans.filter((span) => span.name === name)
}

describe('peercache/opentelemetry spans', () => {
  it('a miss: a get span over its load span, and the loader’s own span under the load', async () => {
    instrument()
    const app = sdk.tracerProvider.getTracer('app')
    const cache = standalone('otel-miss', (key) => app.startActiveSpan('db.query', (span) => (span.end(), `v(${key})`)))
    expect(await cache.getGroup('otel-miss')!.getString('a')).toBe('v(a)')
    const spans = sdk.spans()
    const [get] = named(spans, 'peercache.get')
    const [load] = named(spans, 'peercache.load')
    const [query] = named(spans, 'db.query')
    expect(spans).toHaveLength(3)
    expect(get).toMatchObject({ kind: SpanKind.INTERNAL, parentSpanId: undefined, status: { code: SpanStatusCode.UNSET } })
    expect(get!.attributes).toEqual({ 'peercache.group': 'otel-miss', 'peercache.hit': false, 'peercache.source': 'local', 'peercache.status': 'ok' })
    expect(load).toMatchObject({ kind: SpanKind.INTERNAL, traceId: get!.traceId, parentSpanId: get!.spanId })
    expect(load!.attributes).toEqual({ 'peercache.group': 'otel-miss', 'peercache.status': 'ok' })
    expect(query).toMatchObject({ traceId: get!.traceId, parentSpanId: load!.spanId })
  })

  it('a hit: one get span, marked a hit from the main cache', async () => {
    instrument()
    const cache = standalone('otel-hit', (key) => key)
    await cache.getGroup('otel-hit')!.get('a')
    sdk.resetSpans()
    await cache.getGroup('otel-hit')!.get('a')
    const spans = sdk.spans()
    expect(spans.map((span) => span.name)).toEqual(['peercache.get'])
    expect(spans[0]!.attributes).toMatchObject({ 'peercache.hit': true, 'peercache.source': 'main', 'peercache.status': 'ok' })
  })

  it('a failing loader: the exception and status ERROR on the load and on the get; a not-found is an answer, not an error', async () => {
    instrument()
    const cache = standalone('otel-fail', (key) => {
      if (key === 'gone') throw new NotFoundError('no such row')
      throw new Error('database down')
    })
    const group = cache.getGroup('otel-fail')!
    await expect(group.get('boom')).rejects.toThrow('database down')
    const [get] = named(sdk.spans(), 'peercache.get')
    const [load] = named(sdk.spans(), 'peercache.load')
    expect(load).toMatchObject({ status: { code: SpanStatusCode.ERROR, message: 'database down' }, exceptions: ['database down'] })
    expect(load!.attributes).toMatchObject({ 'peercache.status': 'error', 'error.type': 'Error' })
    expect(get).toMatchObject({ status: { code: SpanStatusCode.ERROR }, parentSpanId: undefined })
    expect(get!.attributes).toMatchObject({ 'peercache.status': 'error', 'error.type': 'ERR_PEERCACHE_LOAD_FAILED' })
    sdk.resetSpans()
    await expect(group.get('gone')).rejects.toBeInstanceOf(NotFoundError)
    for (const span of sdk.spans()) {
      expect(span.status.code).toBe(SpanStatusCode.UNSET)
      expect(span.exceptions).toEqual([])
      expect(span.attributes['peercache.status']).toBe('not_found')
    }
  })

  it('keeps keys out of the spans unless recordKeys is set', async () => {
    instrument({ recordKeys: true })
    const cache = standalone('otel-keys', (key) => key)
    await cache.getGroup('otel-keys')!.get('user@example.com')
    expect(sdk.spans().map((span) => span.attributes['peercache.key'])).toEqual(['user@example.com', 'user@example.com'])
  })

  it('records no key by default', async () => {
    instrument()
    const cache = standalone('otel-nokeys', (key) => key)
    await cache.getGroup('otel-nokeys')!.get('user@example.com')
    expect(sdk.spans()).toHaveLength(2)
    for (const span of sdk.spans()) expect(span.attributes).not.toHaveProperty('peercache.key')
  })

  it('disable() stops spans and leaves the channels without subscribers; enable() starts them again', async () => {
    const instrumentation = instrument()
    const cache = standalone('otel-toggle', (key) => key)
    const group = cache.getGroup('otel-toggle')!
    await group.get('a')
    expect(sdk.spans()).toHaveLength(2)
    instrumentation.disable()
    for (const channel of Object.values(TRACING_CHANNELS)) expect(diagnostics.tracingChannel(channel).hasSubscribers).toBe(false)
    await group.get('b')
    await group.get('a')
    expect(sdk.spans()).toHaveLength(2)
    instrumentation.enable()
    instrumentation.enable() // idempotent: still one span per call
    await group.get('c')
    expect(named(sdk.spans(), 'peercache.get')).toHaveLength(2)
    expect(named(sdk.spans(), 'peercache.load')).toHaveLength(2)
  })

  it('constructed with enabled: false, it makes no span until enabled', async () => {
    const instrumentation = new PeercacheInstrumentation({ enabled: false })
    instrumentation.setTracerProvider(sdk.tracerProvider)
    cleanups.push(() => instrumentation.disable())
    const group = standalone('otel-off', (key) => key).getGroup('otel-off')!
    await group.get('a')
    expect(sdk.spans()).toEqual([])
    instrumentation.enable()
    await group.get('b')
    expect(sdk.spans().map((span) => span.name).sort()).toEqual(['peercache.get', 'peercache.load'])
  })
})

describe('peercache/opentelemetry metrics', () => {
  it('reports every counter and gauge of the Prometheus output, with the same values and labels as attributes', async () => {
    const instrumentation = instrument()
    const cache = standalone('otel-metrics', (key) => key)
    cleanups.push(instrumentation.observe(cache))
    const group = cache.getGroup('otel-metrics')!
    await group.get('a')
    await group.get('a')
    await group.get('b')
    const collected = await sdk.collect()
    const snapshot = internalsOf(cache).metricsSnapshot()
    for (const family of METRIC_FAMILIES.filter((f) => f.type !== 'histogram')) {
      const expected = family.samples(snapshot).map((s) => ({ attributes: s.labels, value: s.value }))
      expect(metricPoints(collected, instrumentName(family).name), family.name).toEqual(expected.length === 0 ? undefined : expect.arrayContaining(expected))
    }
    expect(metricPoints(collected, 'peercache.gets')).toEqual([{ attributes: { group: 'otel-metrics' }, value: 3 }])
    expect(metricPoints(collected, 'peercache.cache_hits')).toContainEqual({ attributes: { group: 'otel-metrics', cache: 'main' }, value: 1 })
  })

  it('records each load’s duration in the load_duration histogram (seconds, by group and source)', async () => {
    const instrumentation = instrument()
    const cache = standalone('otel-durations', (key) => key)
    cleanups.push(instrumentation.observe(cache))
    for (const key of ['a', 'b', 'c']) await cache.getGroup('otel-durations')!.get(key)
    const points = metricPoints(await sdk.collect(), 'peercache.load_duration')!
    const point = points.find((p) => p.attributes.group === 'otel-durations')
    expect(point?.attributes).toEqual({ group: 'otel-durations', source: 'local' })
    const histogram = point!.value as { count: number; sum: number; buckets: { boundaries: number[] } }
    expect(histogram.count).toBe(3)
    expect(histogram.sum).toBeGreaterThanOrEqual(0)
    expect(histogram.buckets.boundaries[0]).toBe(0.001)
  })

  it('names the instruments by OpenTelemetry’s conventions', () => {
    expect(METRIC_FAMILIES.map((family) => [family.name, instrumentName(family)])).toContainEqual(['peercache_gets_total', { name: 'peercache.gets', unit: undefined }])
    expect(instrumentName({ name: 'peercache_load_duration_seconds', type: 'histogram' })).toEqual({ name: 'peercache.load_duration', unit: 's' })
    expect(instrumentName({ name: 'peercache_cache_bytes', type: 'gauge' })).toEqual({ name: 'peercache.cache_bytes', unit: 'By' })
    const names = METRIC_FAMILIES.map((family) => instrumentName(family).name)
    expect(new Set(names).size).toBe(names.length)
  })

  it('moves its instruments to a new meter provider (setMeterProvider), the old one no longer read', async () => {
    const instrumentation = instrument()
    const cache = standalone('otel-meters', (key) => key)
    cleanups.push(instrumentation.observe(cache))
    await cache.getGroup('otel-meters')!.get('a')
    expect(metricPoints(await sdk.collect(), 'peercache.gets')).toEqual([{ attributes: { group: 'otel-meters' }, value: 1 }])
    const other = startMeter()
    cleanups.push(() => other.meterProvider.shutdown())
    instrumentation.setMeterProvider(other.meterProvider)
    await cache.getGroup('otel-meters')!.get('b')
    expect(metricPoints(await other.collect(), 'peercache.gets')).toEqual([{ attributes: { group: 'otel-meters' }, value: 2 }])
    expect(metricPoints(await sdk.collect(), 'peercache.gets')).toEqual([{ attributes: { group: 'otel-meters' }, value: 1 }])
  })

  it('stops reading a cache once unobserved, and every cache while disabled (the last values stand, as cumulative series do)', async () => {
    const instrumentation = instrument()
    const cache = standalone('otel-unobserved', (key) => key)
    const group = cache.getGroup('otel-unobserved')!
    const gets = async (): Promise<unknown> => metricPoints(await sdk.collect(), 'peercache.gets')
    const unobserve = instrumentation.observe(cache)
    await group.get('a')
    expect(await gets()).toEqual([{ attributes: { group: 'otel-unobserved' }, value: 1 }])
    instrumentation.disable()
    await group.get('b')
    expect(await gets()).toEqual([{ attributes: { group: 'otel-unobserved' }, value: 1 }])
    instrumentation.enable()
    expect(await gets()).toEqual([{ attributes: { group: 'otel-unobserved' }, value: 2 }])
    unobserve()
    await group.get('c')
    expect(await gets()).toEqual([{ attributes: { group: 'otel-unobserved' }, value: 2 }])
  })
})
