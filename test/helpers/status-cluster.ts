/**
 * status-cluster: a 3-member in-process cluster (real servers on 127.0.0.1,
 * signed peer requests) with traffic over three "minutes" of an injected
 * clock, its third member stopped (down), and member 0's statusHandler()
 * mounted on a server of its own: what the status page, the JSON and the
 * CLI tests look at. KEYS are the keys it used: no status output may show one.
 */
import { createServer, type Server } from 'node:http'
import { serverUrl, type StatusHandlerOptions } from '../../src/index.js'
import { closeServer, kvGroup, listenLocal, startCluster, type Cluster } from './cluster.js'

/** KEYS are recognisable keys the traffic uses; the tests assert none is shown. */
export const KEYS = ['user:4242:profile', 'secret-key-alpha', 'order/9000/items', 'very-private-name', 'cart:777']

/** START is the injected clock's start: 2026-01-01 12:00:00 UTC. */
export const START = Date.UTC(2026, 0, 1, 12, 0, 0)

/** StatusCluster is the running cluster and where its status page is served. */
export interface StatusCluster {
  cluster: Cluster
  /** URL of member 0's statusHandler(). */
  statusUrl: string
  /** Index of the stopped member. */
  down: number
  close(): Promise<void>
}

/** startStatusCluster starts the cluster, makes the traffic, stops member 2 and serves member 0's status. */
export async function startStatusCluster(options: StatusHandlerOptions = {}): Promise<StatusCluster> {
  let now = START
  const cluster = await startCluster(3, kvGroup(), { options: { clock: () => now, secret: 'status-test-secret' } })
  let statusServer: Server | undefined
  try {
    for (let minute = 0; minute < 3; minute++) {
      // A status call samples each group's counts for the minute (history.ts).
      for (const cache of cluster.caches) cache.status()
      for (let round = 0; round <= minute; round++) {
        for (const key of KEYS) for (let i = 0; i < 3; i++) await cluster.group(i).get(key)
      }
      now += 60_000
    }
    await cluster.stop(2)
    statusServer = await listenLocal()
    statusServer.on('request', cluster.caches[0]!.statusHandler(options))
  } catch (err) {
    await cluster.close()
    throw err
  }
  const server = statusServer
  return {
    cluster,
    statusUrl: `${serverUrl(server)}/status`,
    down: 2,
    close: async () => {
      await closeServer(server)
      await cluster.close()
    },
  }
}

/** startGoLikePeer starts a server that answers every path with a bare 404, as a Go groupcache peer answers /_peercache/status. */
export async function startGoLikePeer(): Promise<Server> {
  const server = createServer((_req, res) => {
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('404 page not found\n')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return server
}
