/**
 * internals: what peercache's own adapters (`peercache/fastify`,
 * `peercache/prom-client`) need from a Peercache — the peer endpoint's
 * context and a metrics snapshot — behind a symbol, so they stay out of the
 * public API (users reach Peercache through its documented methods only).
 */
import type { MetricsSnapshot } from './metrics.js'
import type { HandlerContext } from './endpoint/handler.js'

/** internals is the key of Peercache's adapter-only method. */
export const internals: unique symbol = Symbol('peercache.internals')

/** PeercacheInternals is what `cache[internals]()` returns. */
export interface PeercacheInternals {
  /** The context the peer endpoint answers with (shared by handler() and the fastify plugin). */
  endpoint: HandlerContext
  /** A fresh snapshot of every group's numbers and peer health. */
  metricsSnapshot(): MetricsSnapshot
  /**
   * drain is close()'s first step alone (keep serving peers for drainMs);
   * close() then skips it. For a server that stops routing before it calls
   * close(), as fastify does.
   */
  drain(): Promise<void>
}
