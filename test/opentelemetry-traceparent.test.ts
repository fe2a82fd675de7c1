/**
 * traceparent.ts against the SDK's own W3CTraceContextPropagator
 * (@opentelemetry/core): for each header a peer may receive, both read the
 * same span context (or both refuse it), and both write the same headers
 * for a span context, so peercache's fetch and serve interoperate with any
 * W3C-propagating service in between.
 */
import { ROOT_CONTEXT, TraceFlags, createTraceState, defaultTextMapGetter, defaultTextMapSetter, trace, type SpanContext } from '@opentelemetry/api'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { describe, expect, it } from 'vitest'
import { formatTraceContext, parseTraceContext } from '../src/integrations/traceparent.js'

const propagator = new W3CTraceContextPropagator()
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const SPAN = '00f067aa0ba902b7'

/** theirs is what the SDK's propagator reads from the headers. */
function theirs(traceparent: string | undefined, tracestate: string | undefined): SpanContext | undefined {
  const carrier: Record<string, string> = {}
  if (traceparent !== undefined) carrier.traceparent = traceparent
  if (tracestate !== undefined) carrier.tracestate = tracestate
  return trace.getSpanContext(propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter))
}

/** plain drops the trace state object for comparison, keeping its serialized form. */
function plain(spanContext: SpanContext | undefined): unknown {
  if (spanContext === undefined) return undefined
  const { traceState, ...rest } = spanContext
  return { ...rest, traceState: traceState?.serialize() }
}

const HEADERS: ReadonlyArray<[string, string | undefined, string | undefined]> = [
  ['sampled', `00-${TRACE}-${SPAN}-01`, undefined],
  ['not sampled, with a trace state', `00-${TRACE}-${SPAN}-00`, 'vendor=a,other=b'],
  ['absent', undefined, 'vendor=a'],
  ['version ff (invalid)', `ff-${TRACE}-${SPAN}-01`, undefined],
  ['version 00 with a fifth field (invalid)', `00-${TRACE}-${SPAN}-01-extra`, undefined],
  ['a later version with a fifth field (kept)', `cc-${TRACE}-${SPAN}-01-extra`, undefined],
  ['an all-zero trace id', `00-${'0'.repeat(32)}-${SPAN}-01`, undefined],
  ['an all-zero span id', `00-${TRACE}-${'0'.repeat(16)}-01`, undefined],
  ['upper-case hex', `00-${TRACE.toUpperCase()}-${SPAN}-01`, undefined],
  ['a short trace id', `00-${TRACE.slice(1)}-${SPAN}-01`, undefined],
  ['two headers joined by node:http', `00-${TRACE}-${SPAN}-01, 00-${TRACE}-${SPAN}-00`, undefined],
  ['surrounding spaces', ` 00-${TRACE}-${SPAN}-01 `, undefined],
  ['garbage', 'not a traceparent', undefined],
]

describe('traceparent, against the W3C propagator of @opentelemetry/core', () => {
  it.each(HEADERS)('reads %s as the propagator does', (_name, traceparent, tracestate) => {
    expect(plain(parseTraceContext(traceparent, tracestate))).toEqual(plain(theirs(traceparent, tracestate)))
  })

  it('reads a valid header into a remote span context', () => {
    expect(plain(parseTraceContext(`00-${TRACE}-${SPAN}-01`, 'vendor=a'))).toEqual({ traceId: TRACE, spanId: SPAN, traceFlags: 1, isRemote: true, traceState: 'vendor=a' })
  })

  it.each([
    ['sampled', { traceId: TRACE, spanId: SPAN, traceFlags: TraceFlags.SAMPLED }],
    ['not sampled, with a trace state', { traceId: TRACE, spanId: SPAN, traceFlags: TraceFlags.NONE, traceState: createTraceState('vendor=a,other=b') }],
    ['invalid', { traceId: '0'.repeat(32), spanId: SPAN, traceFlags: TraceFlags.SAMPLED }],
  ] as const)('writes %s as the propagator does', (_name, spanContext) => {
    const ours: Record<string, string> = {}
    formatTraceContext(spanContext, ours)
    const expected: Record<string, string> = {}
    propagator.inject(trace.setSpanContext(ROOT_CONTEXT, spanContext), expected, defaultTextMapSetter)
    expect(ours).toEqual(expected)
  })
})
