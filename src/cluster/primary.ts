/**
 * primary: forkPeerWorkers starts the workers of a node:cluster primary,
 * each in a numbered slot (env PEERCACHE_WORKER_INDEX, read by
 * clusterPeers), and restarts a worker that exits in the same slot, so its
 * replacement takes its peer port and its share of the keys.
 */
import cluster, { type Worker } from 'node:cluster'

/** ForkOptions configure forkPeerWorkers. */
export interface ForkOptions {
  /** Extra environment for every worker. */
  env?: Record<string, string>
  /** Called when a slot's worker exited and a replacement was forked. */
  onRestart?: (index: number, worker: Worker) => void
}

/** PeerWorkers are the running workers by slot. */
export interface PeerWorkers {
  /** The current worker of each slot. */
  readonly workers: ReadonlyMap<number, Worker>
  /** stop kills every worker (SIGTERM: they close gracefully) without restarting them, and resolves once all exited. */
  stop(): Promise<void>
}

/** forkPeerWorkers forks `count` workers in slots 0..count-1 and keeps each slot filled until stop(). */
export function forkPeerWorkers(count: number, options: ForkOptions = {}): PeerWorkers {
  const workers = new Map<number, Worker>()
  let stopping = false
  const fork = (index: number): Worker => {
    const worker = cluster.fork({ ...options.env, PEERCACHE_WORKER_INDEX: String(index), PEERCACHE_WORKERS: String(count) })
    workers.set(index, worker)
    worker.once('exit', () => {
      if (stopping || workers.get(index) !== worker) return
      options.onRestart?.(index, fork(index))
    })
    return worker
  }
  for (let i = 0; i < count; i++) fork(i)
  return {
    workers,
    async stop() {
      stopping = true
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
