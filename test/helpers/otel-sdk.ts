/**
 * otel-sdk: a real OpenTelemetry SDK for the peercache/opentelemetry tests,
 * in the test process or in a child (test/helpers/otel-peer.ts): the
 * AsyncLocalStorage context manager (made global: `context.with` goes
 * through it), a tracer provider that keeps finished spans in memory, and a
 * meter provider whose reader collects on demand. Finished spans are turned
 * into plain records, which a child prints as JSON.
 */
import { context, type Attributes } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'

/** SpanRecord is a finished span as plain data. */
export interface SpanRecord {
  name: string
  /** SpanKind: 0 INTERNAL, 1 SERVER, 2 CLIENT. */
  kind: number
  traceId: string
  spanId: string
  parentSpanId: string | undefined
  attributes: Attributes
  /** SpanStatusCode: 0 UNSET, 1 OK, 2 ERROR. */
  status: { code: number; message?: string | undefined }
  /** The names of its events (`exception` for a recorded error) and each exception's message. */
  exceptions: string[]
}

/** TestReader is a MetricReader that collects when asked (collect()), exporting nowhere. */
class TestReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

/** Meter is a meter provider whose reader collects when asked. */
export interface Meter {
  readonly meterProvider: MeterProvider
  /** collect reads every instrument now. */
  collect(): Promise<ResourceMetrics>
}

/** startMeter starts a meter provider with a reader of its own. */
export function startMeter(): Meter {
  const reader = new TestReader()
  return {
    meterProvider: new MeterProvider({ readers: [reader] }),
    collect: async () => {
      const { resourceMetrics, errors } = await reader.collect()
      if (errors.length > 0) throw new Error(`metric collection failed: ${errors.map(String).join('; ')}`)
      return resourceMetrics
    },
  }
}

/** OtelSdk is one running SDK. */
export interface OtelSdk {
  readonly tracerProvider: BasicTracerProvider
  readonly meterProvider: MeterProvider
  /** spans lists the spans finished so far, as records. */
  spans(): SpanRecord[]
  /** resetSpans forgets the finished spans. */
  resetSpans(): void
  /** collect reads every instrument now. */
  collect(): Promise<ResourceMetrics>
  /** shutdown stops both providers and unregisters the context manager. */
  shutdown(): Promise<void>
}

/** startSdk starts an SDK and makes its context manager the global one. */
export function startSdk(): OtelSdk {
  const contextManager = new AsyncLocalStorageContextManager().enable()
  context.setGlobalContextManager(contextManager)
  const exporter = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const { meterProvider, collect } = startMeter()
  return {
    tracerProvider,
    meterProvider,
    spans: () => exporter.getFinishedSpans().map(toRecord),
    resetSpans: () => exporter.reset(),
    collect,
    shutdown: async () => {
      await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()])
      context.disable()
    },
  }
}

/** toRecord turns a finished span into a SpanRecord. */
export function toRecord(span: ReadableSpan): SpanRecord {
  const { traceId, spanId } = span.spanContext()
  return {
    name: span.name,
    kind: span.kind,
    traceId,
    spanId,
    parentSpanId: span.parentSpanContext?.spanId,
    attributes: span.attributes,
    status: { code: span.status.code, message: span.status.message },
    exceptions: span.events.filter((event) => event.name === 'exception').map((event) => String(event.attributes?.['exception.message'])),
  }
}

/** MetricPoint is one data point of a collected instrument. */
export interface MetricPoint {
  attributes: Attributes
  value: unknown
}

/** metricPoints returns the data points of the instrument called name, or undefined when it reported none. */
export function metricPoints(metrics: ResourceMetrics, name: string): MetricPoint[] | undefined {
  for (const scope of metrics.scopeMetrics) {
    const found = scope.metrics.find((metric) => metric.descriptor.name === name)
    if (found !== undefined) return found.dataPoints.map((point) => ({ attributes: point.attributes, value: point.value }))
  }
  return undefined
}
