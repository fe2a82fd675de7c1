/**
 * internals: what peercache's own adapters (`peercache/fastify`,
 * `peercache/prom-client`) need from a Peercache — the peer endpoint's
 * context, a metrics snapshot, the drain — through `internalsOf(cache)`
 * (peercache.ts), which reads a private field: nothing of it is reachable
 * from the Peercache object a user holds, not even by reflection, and the
 * package's exports map keeps the module itself out of users' imports.
 */
import type { MetricsSnapshot } from './metrics.js'
import type { HandlerContext } from './endpoint/handler.js'

/** PeercacheInternals is what `internalsOf(cache)` returns. */
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
