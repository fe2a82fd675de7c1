/**
 * tracing: node:diagnostics_channel TracingChannels around the three steps
 * of a get that take time, so a tracer (an OpenTelemetry instrumentation, an
 * APM) can make spans of them, as undici's channels let it do for requests:
 *
 *   peercache:get    a get (a hit, or a wait for the key's flight)  { group, key }
 *   peercache:load   a run of this process's loader                 { group, key, source: 'local' }
 *   peercache:fetch  a request for the key to its owner             { group, key, source: 'peer', peer, headers }
 *   peercache:serve  the owner answering a peer's get or batch      { group, key, keys, traceparent, tracestate }
 *
 * Across processes a trace goes on through the fetch's `headers`: a
 * subscriber may fill that record at `start` (or in a store transform bound
 * to `start`, which runs just before it) with W3C `traceparent` and
 * `tracestate`, and the peer client sends them with the request of that
 * fetch (peers/client.ts; a coalesced batch carries its first waiter's). The
 * owner's endpoint hands the incoming request's two headers to
 * `peercache:serve`, whose subscriber continues the trace from them. Go
 * peers ignore the headers; request signatures do not cover them (auth.ts).
 *
 * Each publishes what `TracingChannel#tracePromise` publishes: `start`, then
 * `end` when the call returns, then `error` (with `context.error`) if it
 * rejects, and `asyncStart`/`asyncEnd` when it settles (with
 * `context.result` on success). A subscriber that binds an AsyncLocalStorage
 * to `start` sees its store inside the loader and the peer request, so spans
 * nest. When nobody subscribes, nothing is traced: every entry point checks
 * `hasSubscribers` first and then calls straight through, allocating nothing.
 */
import diagnostics, { type TracingChannel } from 'node:diagnostics_channel'
import type { Peer, PeerGetOptions } from './peer.js'
import type { CacheEntry } from './cache.js'

/** GetTrace is the context of `peercache:get`. */
export interface GetTrace {
  group: string
  key: string
}

/** LoadTrace is the context of `peercache:load`. */
export interface LoadTrace {
  group: string
  key: string
  source: 'local'
}

/** FetchTrace is the context of `peercache:fetch`. */
export interface FetchTrace {
  group: string
  key: string
  source: 'peer'
  /** The owner's base URL. */
  peer: string
  /** Headers to send with this fetch's request (trace context): empty until a subscriber fills it at `start`. */
  headers: Record<string, string>
}

/** ServeTrace is the context of `peercache:serve`: the owner answering a peer. */
export interface ServeTrace {
  group: string
  /** The key of a get; undefined for a batch. */
  key: string | undefined
  /** How many keys the request asks for: 1 for a get, the batch's size for a batch. */
  keys: number
  /** The asker's W3C trace context headers as they arrived (undefined when absent). */
  traceparent: string | undefined
  tracestate: string | undefined
}

/** TRACING_CHANNELS names the tracing channels (each is `tracing:<name>:start`, `…:end`, and so on). */
export const TRACING_CHANNELS = { get: 'peercache:get', load: 'peercache:load', fetch: 'peercache:fetch', serve: 'peercache:serve' } as const

/** Tracer holds one instance's tracing channels (the channels themselves are process-wide, by name). */
export class Tracer {
  readonly #get: TracingChannel<unknown, GetTrace> = diagnostics.tracingChannel(TRACING_CHANNELS.get)
  readonly #load: TracingChannel<unknown, LoadTrace> = diagnostics.tracingChannel(TRACING_CHANNELS.load)
  readonly #fetch: TracingChannel<unknown, FetchTrace> = diagnostics.tracingChannel(TRACING_CHANNELS.fetch)
  readonly #serve: TracingChannel<unknown, ServeTrace> = diagnostics.tracingChannel(TRACING_CHANNELS.serve)

  /** tracesGets is true while someone subscribes to `peercache:get`: only then call `get`. */
  get tracesGets(): boolean {
    return this.#get.hasSubscribers
  }

  /** get runs a get inside `peercache:get` (call it only when tracesGets). */
  get<T>(group: string, key: string, read: () => Promise<T>): Promise<T> {
    return this.#get.tracePromise(read, { group, key })
  }

  /** load calls the loader, inside `peercache:load` when someone subscribes. */
  load<C, R>(group: string, key: string, loader: (key: string, context: C) => R | Promise<R>, context: C): R | Promise<R> {
    if (!this.#load.hasSubscribers) return loader(key, context)
    return this.#load.tracePromise(callLoader<C, R>, { group, key, source: 'local' }, undefined, loader, key, context)
  }

  /**
   * fetch asks peer for key, inside `peercache:fetch` when someone
   * subscribes; the request then carries the headers the subscriber put in
   * the context's `headers` at `start` (the same record: filled before
   * peer.get runs).
   */
  fetch(peer: Peer, group: string, key: string, options: PeerGetOptions): Promise<CacheEntry> {
    if (!this.#fetch.hasSubscribers) return peer.get(group, key, options)
    const headers: Record<string, string> = {}
    return this.#fetch.tracePromise(peer.get, { group, key, source: 'peer', peer: peer.url, headers }, peer, group, key, { ...options, headers })
  }

  /** tracesServes is true while someone subscribes to `peercache:serve`: only then call `serve`. */
  get tracesServes(): boolean {
    return this.#serve.hasSubscribers
  }

  /** serve runs the owner's answer to a peer (`answer(...args)`) inside `peercache:serve` (call it only when tracesServes). */
  serve<A extends unknown[], R>(trace: ServeTrace, answer: (...args: A) => R | Promise<R>, thisArg: unknown, ...args: A): Promise<R> {
    return this.#serve.tracePromise(answer as (...args: A) => Promise<R>, trace, thisArg, ...args)
  }
}

/** callLoader turns a loader's result (a value or a promise) into a promise, as tracePromise needs. */
async function callLoader<C, R>(loader: (key: string, context: C) => R | Promise<R>, key: string, context: C): Promise<R> {
  return loader(key, context)
}
