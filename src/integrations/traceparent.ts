/**
 * traceparent: the W3C Trace Context headers (`traceparent`, `tracestate`)
 * that carry a trace from an asker's fetch to the owner's serve. Written
 * here against @opentelemetry/api alone, rather than taken from the SDK's
 * W3CTraceContextPropagator, so the integration needs only the two optional
 * peers; test/opentelemetry-traceparent.test.ts checks it against that
 * propagator. Only these two headers travel: the app's own propagators
 * (baggage, B3) are not consulted, as the peer protocol carries nothing else.
 *
 * Parsing follows the spec's rules for a receiver: version `ff` is invalid;
 * version `00` has exactly four fields; a later version may add fields after
 * the fourth, which are ignored; all-zero ids are invalid; anything invalid
 * is no parent at all (the serve span then starts a trace of its own).
 */
import { createTraceState, isSpanContextValid, TraceFlags, type SpanContext } from '@opentelemetry/api'

/** TRACEPARENT matches a traceparent: version, trace id, parent id, flags, and whatever a later version adds. */
const TRACEPARENT = /^\s?([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?\s?$/

/** formatTraceContext writes spanContext as the headers of a request (version 00), into headers. */
export function formatTraceContext(spanContext: SpanContext, headers: Record<string, string>): void {
  if (!isSpanContextValid(spanContext)) return
  const sampled = (spanContext.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED
  headers.traceparent = `00-${spanContext.traceId}-${spanContext.spanId}-${sampled ? '01' : '00'}`
  const state = spanContext.traceState?.serialize()
  if (state !== undefined && state !== '') headers.tracestate = state
}

/** parseTraceContext reads the asker's headers into a remote span context, or undefined when they carry none (or an invalid one). */
export function parseTraceContext(traceparent: string | undefined, tracestate: string | undefined): SpanContext | undefined {
  if (traceparent === undefined) return undefined
  const match = TRACEPARENT.exec(traceparent)
  if (match === null) return undefined
  const [, version, traceId, spanId, flags, rest] = match as unknown as [string, string, string, string, string, string | undefined]
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined
  const spanContext: SpanContext = { traceId, spanId, traceFlags: parseInt(flags, 16), isRemote: true }
  if (!isSpanContextValid(spanContext)) return undefined
  if (tracestate !== undefined) spanContext.traceState = createTraceState(tracestate)
  return spanContext
}
