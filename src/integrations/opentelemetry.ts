/**
 * peercache/opentelemetry: PeercacheInstrumentation, an OpenTelemetry
 * instrumentation for teams that already run an OpenTelemetry SDK: spans for
 * gets, loads, fetches from a key's owner and the owner's answers, one trace
 * across processes (otel-spans.ts), and the metrics of the Prometheus output
 * through the Metrics API (otel-metrics.ts).
 *
 * It follows @opentelemetry/instrumentation's conventions — registered with
 * `registerInstrumentations`, `enable()`/`disable()`, a config object,
 * `setTracerProvider`/`setMeterProvider` — but patches no module: like the
 * undici instrumentation it subscribes to diagnostics channels
 * (tracing.ts), which cost nothing while it is disabled. @opentelemetry/api
 * and @opentelemetry/instrumentation are optional peer dependencies: this
 * module loads the app's copies, and only when imported.
 */
import { createRequire } from 'node:module'
import { InstrumentationBase, type InstrumentationConfig } from '@opentelemetry/instrumentation'
import type { Peercache } from '../peercache.js'
import { MetricsBridge } from './otel-metrics.js'
import { SpanBridge } from './otel-spans.js'

/** PeercacheInstrumentationConfig configures PeercacheInstrumentation. */
export interface PeercacheInstrumentationConfig extends InstrumentationConfig {
  /**
   * recordKeys puts each span's key in the attribute `peercache.key`. Off
   * because keys are often personal data (an email, a user id) that a
   * tracing backend should not keep. @default false
   */
  recordKeys?: boolean
}

/** INSTRUMENTATION_VERSION is this package's version, which names the tracer and the meter. */
const INSTRUMENTATION_VERSION = (createRequire(import.meta.url)('../../package.json') as { version: string }).version

/**
 * PeercacheInstrumentation makes OpenTelemetry spans and metrics of every
 * Peercache in the process. Spans come from the tracing channels while it
 * is enabled; metrics of counters and gauges come from the caches given to
 * `observe` (a cache announces itself nowhere, so it is named once).
 *
 * ```ts
 * registerInstrumentations({ instrumentations: [instrumentation] })
 * instrumentation.observe(cache)
 * ```
 */
export class PeercacheInstrumentation extends InstrumentationBase<PeercacheInstrumentationConfig> {
  // Set up on first use, not as initialised fields: the base constructor
  // calls enable() and _updateMetricInstruments() before this class's own
  // fields (and #private members) exist.
  declare private _spans: SpanBridge | undefined
  declare private _metrics: MetricsBridge | undefined

  constructor(config: PeercacheInstrumentationConfig = {}) {
    super('peercache', INSTRUMENTATION_VERSION, config)
  }

  /** init patches no module: the channels are peercache's own. */
  protected override init(): undefined {
    return undefined
  }

  /** enable starts making spans and recording load durations (idempotent). */
  override enable(): void {
    super.enable()
    this.spans().subscribe()
    this.metricsBridge().subscribe()
  }

  /** disable stops both; observed caches are kept but not reported until enabled again (idempotent). */
  override disable(): void {
    super.disable()
    this._spans?.unsubscribe()
    this._metrics?.unsubscribe()
  }

  /** observe reports cache's counters and gauges at each metric collection, until the returned function is called. */
  observe(cache: Peercache): () => void {
    return this.metricsBridge().observe(cache)
  }

  /** _updateMetricInstruments (re)creates the instruments on the current meter: the base class calls it on setMeterProvider. */
  protected override _updateMetricInstruments(): void {
    this.metricsBridge().attach(this.meter)
  }

  private spans(): SpanBridge {
    this._spans ??= new SpanBridge(
      () => this.tracer,
      () => this.getConfig(),
      this._diag,
    )
    return this._spans
  }

  private metricsBridge(): MetricsBridge {
    this._metrics ??= new MetricsBridge(() => this.isEnabled())
    return this._metrics
  }
}
