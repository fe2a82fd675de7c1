/**
 * otel-spans: OpenTelemetry spans made from peercache's tracing channels
 * (tracing.ts), for PeercacheInstrumentation. One span per traced call:
 *
 *   peercache.get    INTERNAL  a get; `peercache.hit`, `peercache.source` (main, hot, local, peer)
 *   peercache.fetch  CLIENT    the request to the key's owner; `peercache.peer`, `server.address`, `server.port`
 *   peercache.serve  SERVER    the owner answering it; `peercache.batch.size`, `peercache.source` (cache, local)
 *   peercache.load   INTERNAL  a run of the loader
 *
 * Every span has `peercache.group` and `peercache.status` (ok, not_found,
 * error); with `recordKeys`, `peercache.key`. A failure is recorded on its
 * span (recordException, status ERROR, `error.type`); a not-found is the
 * loader's answer, not a failure: status stays unset.
 *
 * Spans nest because a store is bound to each channel's `start`: its
 * transform (which runs just before `start` is published) starts the span
 * and returns the context that holds it, and the store's `run` is
 * `context.with`, so the span is OpenTelemetry's active context for the
 * whole call: the loader's own spans (a database query) nest under the load,
 * a fetch under its get. The fetch's transform also writes the span's
 * traceparent into the fetch's headers, which travel with the request; the
 * owner's serve continues that trace (traceparent.ts), unless an HTTP server
 * instrumentation already did, in which case it nests under that span.
 */
import diagnostics, { type TracingChannelSubscribers } from 'node:diagnostics_channel'
import { context, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type DiagLogger, type Exception, type Span, type Tracer } from '@opentelemetry/api'
import { NotFoundError } from '../errors.js'
import { channelName } from '../events.js'
import { TRACING_CHANNELS, type FetchTrace, type GetTrace, type LoadTrace, type ServeTrace } from '../tracing.js'
import { contextStore } from './otel-store.js'
import { formatTraceContext, parseTraceContext } from './traceparent.js'

/** SpanSettings are what the bridge reads from the instrumentation's config, at each span. */
export interface SpanSettings {
  recordKeys?: boolean | undefined
}

type Operation = 'get' | 'fetch' | 'serve' | 'load'

/** OpenSpan is a span in flight, and what its call and its children told it. */
interface OpenSpan {
  readonly span: Span
  readonly operation: Operation
  /** Where the value came from: a hit's cache (main, hot), or the child that produced it (local, peer). */
  source: string | undefined
  status: 'ok' | 'not_found' | 'error'
}

/** Settled is any channel's context once the call settled: tracePromise adds `error` (or `result`) to it. */
type Settled = object & { error?: unknown }

const SPAN_KINDS: Readonly<Record<Operation, SpanKind>> = { get: SpanKind.INTERNAL, fetch: SpanKind.CLIENT, serve: SpanKind.SERVER, load: SpanKind.INTERNAL }

const HIT_CHANNEL = channelName('hit')

/** SpanBridge subscribes to the tracing channels while enabled and turns each traced call into a span. */
export class SpanBridge {
  readonly #tracer: () => Tracer
  readonly #settings: () => SpanSettings
  readonly #diag: DiagLogger
  /** Each traced call's context object (made per call, so the call's identity) → its span. */
  readonly #open = new WeakMap<object, OpenSpan>()
  /** The same, by span: a child or a hit event tells its parent where the value came from. */
  readonly #bySpan = new WeakMap<Span, OpenSpan>()
  /** The store bound to every channel's `start`: OpenTelemetry's context standing in for an AsyncLocalStorage (otel-store.ts). */
  readonly #store = contextStore()
  readonly #unsubscribes: Array<() => void> = []

  constructor(tracer: () => Tracer, settings: () => SpanSettings, diag: DiagLogger) {
    this.#tracer = tracer
    this.#settings = settings
    this.#diag = diag
  }

  /** subscribe starts making spans (idempotent). */
  subscribe(): void {
    if (this.#unsubscribes.length > 0) return
    this.#bind<GetTrace>(TRACING_CHANNELS.get, (t) => this.#begin(t, 'get', context.active(), this.#attributes(t.group, t.key)))
    this.#bind<LoadTrace>(TRACING_CHANNELS.load, (t) => this.#begin(t, 'load', this.#parentOf('local'), this.#attributes(t.group, t.key)))
    this.#bind<FetchTrace>(TRACING_CHANNELS.fetch, (t) => this.#beginFetch(t))
    this.#bind<ServeTrace>(TRACING_CHANNELS.serve, (t) => this.#begin(t, 'serve', serveParent(t), { ...this.#attributes(t.group, t.key), 'peercache.batch.size': t.keys }))
    diagnostics.subscribe(HIT_CHANNEL, this.#onHit)
    this.#unsubscribes.push(() => diagnostics.unsubscribe(HIT_CHANNEL, this.#onHit))
  }

  /** unsubscribe stops making spans (idempotent); spans in flight are never ended, so never exported. */
  unsubscribe(): void {
    for (const unsubscribe of this.#unsubscribes.splice(0)) unsubscribe()
  }

  /** Binds the store to channel's start with `begin` as its transform, and ends the span when the call settles. */
  #bind<T extends object>(name: string, begin: (trace: T) => Context): void {
    const channel = diagnostics.tracingChannel<unknown, T>(name)
    const transform = (t: T): Context => this.#safely(() => begin(t)) ?? context.active()
    const subscribers: TracingChannelSubscribers<T> = {
      start: ignore,
      asyncStart: ignore,
      // A call that threw synchronously publishes error, then end, and no asyncEnd.
      end: (t: Settled) => void (t.error !== undefined && this.#safely(() => this.#finish(t))),
      error: (t: Settled) => void this.#safely(() => this.#failed(t)),
      asyncEnd: (t: T) => void this.#safely(() => this.#finish(t)),
    }
    channel.start.bindStore(this.#store, transform)
    channel.subscribe(subscribers)
    this.#unsubscribes.push(() => {
      channel.unsubscribe(subscribers)
      channel.start.unbindStore(this.#store)
    })
  }

  /** Starts the span of a traced call under parent and returns the context that holds it. */
  #begin(t: object, operation: Operation, parent: Context, attributes: Attributes): Context {
    const span = this.#tracer().startSpan(`peercache.${operation}`, { kind: SPAN_KINDS[operation], attributes }, parent)
    const open: OpenSpan = { span, operation, source: undefined, status: 'ok' }
    this.#open.set(t, open)
    this.#bySpan.set(span, open)
    return trace.setSpan(parent, span)
  }

  /** A fetch's span, whose trace context goes into the fetch's headers (they travel with its request). */
  #beginFetch(t: FetchTrace): Context {
    const peer = new URL(t.peer)
    const attributes = { ...this.#attributes(t.group, t.key), 'peercache.peer': t.peer, 'server.address': peer.hostname, 'server.port': Number(peer.port || defaultPort(peer)) }
    const active = this.#begin(t, 'fetch', this.#parentOf('peer'), attributes)
    formatTraceContext((trace.getSpan(active) as Span).spanContext(), t.headers)
    return active
  }

  /** The active context, whose span (a get's, a serve's) learns that its value comes from `source`. */
  #parentOf(source: 'local' | 'peer'): Context {
    const active = context.active()
    const parent = trace.getSpan(active)
    const open = parent === undefined ? undefined : this.#bySpan.get(parent)
    if (open !== undefined) open.source = source
    return active
  }

  /** A hit (the `hit` event, published inside its get): the get's value came from that cache. */
  readonly #onHit = (message: unknown): void => {
    const span = trace.getSpan(context.active())
    const open = span === undefined ? undefined : this.#bySpan.get(span)
    if (open?.operation === 'get') open.source = (message as { cache: string }).cache
  }

  #failed(t: Settled): void {
    const open = this.#open.get(t)
    if (open === undefined) return
    const error = t.error
    if (error instanceof NotFoundError) {
      open.status = 'not_found'
      return
    }
    open.status = 'error'
    const span = open.span
    span.recordException(error instanceof Error ? error : (String(error) as Exception))
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) })
    span.setAttribute('error.type', errorType(error))
  }

  #finish(t: object): void {
    const open = this.#open.get(t)
    if (open === undefined) return
    this.#open.delete(t)
    const { span, operation } = open
    let source = open.source
    if (operation === 'serve' && open.status === 'ok') source ??= 'cache'
    if (operation === 'get') span.setAttribute('peercache.hit', source === 'main' || source === 'hot')
    if (source !== undefined && (operation === 'get' || operation === 'serve')) span.setAttribute('peercache.source', source)
    span.setAttribute('peercache.status', open.status)
    span.end()
  }

  #attributes(group: string, key: string | undefined): Attributes {
    const attributes: Attributes = { 'peercache.group': group }
    if (key !== undefined && this.#settings().recordKeys === true) attributes['peercache.key'] = key
    return attributes
  }

  /** Runs a step of the bridge: a throw inside a channel's subscriber would be an uncaught exception, so it is logged instead. */
  #safely<R>(step: () => R): R | undefined {
    try {
      return step()
    } catch (err) {
      this.#diag.error('peercache span bridge failed', err)
      return undefined
    }
  }
}

/**
 * serveParent is the parent of an owner's serve span: the asker's fetch,
 * from the request's trace context; or, when an HTTP server instrumentation
 * already continued that same trace, its span (the active one).
 */
function serveParent(t: ServeTrace): Context {
  const active = context.active()
  const remote = parseTraceContext(t.traceparent, t.tracestate)
  if (remote === undefined) return active
  if (trace.getSpanContext(active)?.traceId === remote.traceId) return active
  return trace.setSpanContext(active, remote)
}

/** errorType is an error's `error.type`: peercache's stable code, else its class name. */
function errorType(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code
  if (typeof code === 'string') return code
  return error instanceof Error ? error.name : typeof error
}

function defaultPort(url: URL): number {
  return url.protocol === 'https:' ? 443 : 80
}

function ignore(): void {}
