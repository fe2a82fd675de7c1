/**
 * service: what a Peercache holds for its status — the reporter (its own
 * report, history and latencies) and how it reaches its peers' status paths
 * — so that peercache.ts only forwards `status()` and `statusHandler()`.
 */
import { resolveStatusHandlerOptions, type StatusHandlerOptions } from '../options.js'
import type { Logger } from '../logger.js'
import { statusAsker, type StatusTransport } from './ask.js'
import { gatherCluster } from './gather.js'
import { createStatusHandler, type StatusHandler } from './handler.js'
import { StatusReporter, type StatusSources } from './report.js'
import type { PeercacheStatus } from './types.js'

/** StatusServiceOptions are the report's sources, the transport to the peers, and where failures are logged. */
export interface StatusServiceOptions extends StatusSources, StatusTransport {
  logger: Logger
}

/** StatusService makes this process's report and the cluster's status handlers. */
export class StatusService {
  readonly #reporter: StatusReporter
  readonly #options: StatusServiceOptions

  constructor(options: StatusServiceOptions) {
    this.#options = options
    this.#reporter = new StatusReporter(options)
  }

  /** report is `cache.status()`. */
  report(): PeercacheStatus {
    return this.#reporter.report()
  }

  /** handler is `cache.statusHandler(options)`: options are checked here (InvalidArgumentError). */
  handler(options: StatusHandlerOptions): StatusHandler {
    const resolved = resolveStatusHandlerOptions(options)
    const ask = statusAsker({ auth: this.#options.auth, tls: this.#options.tls })
    // The ring's peers are the peer list (sorted, self included).
    const others = (): string[] => (this.#options.pool()?.ring.peers ?? []).filter((url) => url !== this.#options.self)
    return createStatusHandler(() => gatherCluster(this.#reporter, others(), ask, resolved), this.#options.logger)
  }
}
