/**
 * primary: forkPeerWorkers starts the workers of a node:cluster primary,
 * each in a numbered slot (env PEERCACHE_WORKER_INDEX, read by
 * clusterPeers), and restarts a worker that exits in the same slot, so its
 * replacement takes its peer port and its share of the keys. A slot whose
 * workers keep dying young is refilled with a capped exponential backoff
 * (backoff.ts), and every exit is logged with its reason: the error the
 * worker reported before it died (exit-reason.ts: EADDRINUSE when its peer
 * port is taken), else its exit code or signal.
 */
import cluster, { type Worker } from 'node:cluster'
import { noopLogger, type Logger } from '../logger.js'
import { RestartBackoff, realClock, type RestartBackoffOptions, type RestartClock } from './backoff.js'
import { exitReasonOf } from './exit-reason.js'

/** ForkOptions configure forkPeerWorkers. */
export interface ForkOptions {
  /** Extra environment for every worker. */
  env?: Record<string, string>
  /** Called when a slot's worker exited and a replacement was forked. */
  onRestart?: (index: number, worker: Worker) => void
  /** Backoff of a slot whose workers exit early, in a row (backoff.ts). */
  restartBackoff?: RestartBackoffOptions
  /** Where each exit and its restart delay are logged (warn). @default no logging */
  logger?: Logger
  /** Clock and timers of the backoff. @default the process's own */
  clock?: RestartClock
}

/** PeerWorkers are the running workers by slot. */
export interface PeerWorkers {
  /** The current worker of each slot. */
  readonly workers: ReadonlyMap<number, Worker>
  /** stop cancels pending restarts, kills every worker (SIGTERM: they close gracefully), and resolves once all exited. */
  stop(): Promise<void>
}

/** forkPeerWorkers forks `count` workers in slots 0..count-1 and keeps each slot filled until stop(). */
export function forkPeerWorkers(count: number, options: ForkOptions = {}): PeerWorkers {
  const workers = new Map<number, Worker>()
  const pending = new Map<number, unknown>()
  const clock = options.clock ?? realClock
  const logger = options.logger ?? noopLogger()
  let stopping = false
  const fork = (index: number, backoff: RestartBackoff): Worker => {
    const worker = cluster.fork({ ...options.env, PEERCACHE_WORKER_INDEX: String(index), PEERCACHE_WORKERS: String(count) })
    const started = clock.now()
    let reported: string | undefined
    workers.set(index, worker)
    worker.on('message', (message: unknown) => {
      reported = exitReasonOf(message) ?? reported
    })
    worker.once('exit', (code, signal) => {
      if (stopping || workers.get(index) !== worker) return
      const delayMs = backoff.exited(clock.now() - started)
      const reason = reported ?? (signal ? `signal ${signal}` : `exit code ${code}`)
      logger.warn({ slot: index, pid: worker.process.pid, reason, code, signal, earlyExitsInARow: backoff.streak, delayMs }, `peer worker ${index} exited (${reason}); restarting it in ${delayMs} ms`)
      pending.set(
        index,
        clock.setTimeout(() => {
          pending.delete(index)
          if (!stopping) options.onRestart?.(index, fork(index, backoff))
        }, delayMs),
      )
    })
    return worker
  }
  for (let i = 0; i < count; i++) fork(i, new RestartBackoff(options.restartBackoff))
  return {
    workers,
    async stop() {
      stopping = true
      for (const handle of pending.values()) clock.clearTimeout(handle)
      pending.clear()
      await Promise.all([...workers.values()].map((worker) => stopWorker(worker)))
    },
  }
}

function stopWorker(worker: Worker): Promise<void> {
  if (worker.isDead()) return Promise.resolve()
  return new Promise((resolve) => {
    worker.once('exit', () => resolve())
    worker.process.kill('SIGTERM')
  })
}
