/**
 * worker: the peer configuration of one worker of a node:cluster primary or
 * a PM2 cluster. Workers share the app's port, but each needs a peer
 * endpoint of its own, and every worker must name the others the same way.
 * Worker i gets port `basePort + i`, where i is its slot, not its PID or
 * cluster id: a slot survives the worker's restarts (the replacement takes
 * its predecessor's port and keys), so the peer list never changes.
 *
 * The slot comes from PEERCACHE_WORKER_INDEX (set by forkPeerWorkers for
 * node:cluster) or NODE_APP_INSTANCE (set by PM2 in cluster mode); the worker
 * count from the `workers` option or PEERCACHE_WORKERS.
 */
import { ConfigError } from '../errors.js'
import { isPort } from '../discovery/env.js'
import { peerUrl } from '../discovery/self.js'
import { reportExitReasonToPrimary } from './exit-reason.js'

/** ClusterPeersOptions describe one host's workers. */
export interface ClusterPeersOptions {
  /** Peer port of worker 0; worker i listens on basePort + i. */
  basePort: number
  /** Number of workers on this host. @default env PEERCACHE_WORKERS */
  workers?: number
  /** The address peers use to reach this host's workers. @default '127.0.0.1' */
  host?: string
  /** @default 'http' */
  protocol?: 'http' | 'https'
  /** Where the slot and worker count are read. @default process.env */
  env?: Record<string, string | undefined>
}

/** ClusterPeers is one worker's `self`, `peers` (to spread into the Peercache options) and the port to listen on. */
export interface ClusterPeers {
  self: string
  peers: string[]
  /** This worker's peer port: `cache.listen(port, host)`. */
  port: number
  /** This worker's slot, 0..workers-1. */
  index: number
}

/** clusterPeers returns this worker's peer URL, every worker's, and its port. */
export function clusterPeers(options: ClusterPeersOptions): ClusterPeers {
  const env = options.env ?? process.env
  const workers = options.workers ?? integer('PEERCACHE_WORKERS', env.PEERCACHE_WORKERS)
  const index = integer('PEERCACHE_WORKER_INDEX', env.PEERCACHE_WORKER_INDEX ?? env.NODE_APP_INSTANCE)
  if (!Number.isInteger(workers) || workers < 1) throw new ConfigError(`workers must be an integer >= 1, got ${workers}`)
  if (index >= workers) throw new ConfigError(`worker index ${index} is not below the worker count ${workers}`)
  if (!isPort(options.basePort) || !isPort(options.basePort + workers - 1)) throw new ConfigError(`basePort ${options.basePort} + ${workers} workers leaves the port range`)
  const url = (i: number): string => peerUrl(options.protocol ?? 'http', options.host ?? '127.0.0.1', options.basePort + i)
  const peers = Array.from({ length: workers }, (_, i) => url(i))
  // A worker that dies (its peer port taken: EADDRINUSE) tells forkPeerWorkers why, for its log.
  if (env === process.env) reportExitReasonToPrimary(env)
  return { self: url(index), peers, port: options.basePort + index, index }
}

function integer(name: string, value: string | undefined): number {
  const parsed = Number(value)
  if (value === undefined || value.trim() === '' || !Number.isInteger(parsed) || parsed < 0) {
    throw new ConfigError(`${name} must be set to an integer >= 0 (got ${JSON.stringify(value)}): is this process a worker of forkPeerWorkers or PM2?`)
  }
  return parsed
}
