/**
 * cluster-app: a node:cluster app for test/integration/node-cluster.test.ts.
 * The primary forks WORKERS workers with forkPeerWorkers; each worker builds
 * its Peercache from clusterPeers (peer port BASE_PORT + slot), listens there
 * for peers, and serves `GET /kv/<key>` on the shared APP_PORT. Workers'
 * stdout is the primary's: lines `READY <slot> <pid>` and `LOAD <slot> <key>`.
 * The loader answers `w<slot>-<pid>:<key>`. The primary writes `WARN {…}`
 * for each worker exit it logs, and with VIRTUAL_CLOCK=1 `WAIT <ms>` for each
 * restart delay (virtualClock). SIGTERM to the primary stops the workers and exits.
 */
import cluster from 'node:cluster'
import { createServer } from 'node:http'
import { Peercache, clusterPeers, forkPeerWorkers, type Logger, type RestartClock } from '../../src/index.js'
import { noopLogger } from '../../src/logger.js'
import { closeOnSigterm } from './sigterm.js'

const env = process.env
const write = (line: string): boolean => process.stdout.write(`${line}\n`)

/**
 * virtualClock is forkPeerWorkers' clock when VIRTUAL_CLOCK=1: a restart's
 * delay passes at once (the next tick) and is written as `WAIT <ms>`, so a
 * test reads the backoff without sleeping through it.
 */
function virtualClock(): RestartClock {
  let now = 0
  return {
    now: () => now,
    setTimeout: (run, ms) => {
      now += ms
      write(`WAIT ${ms}`)
      return setImmediate(run)
    },
    clearTimeout: (handle) => clearImmediate(handle as NodeJS.Immediate),
  }
}

/** warnLines writes each warning as `WARN <fields as JSON>`. */
function warnLines(): Logger {
  return { ...noopLogger(), warn: (fields) => void write(`WARN ${JSON.stringify(fields)}`) }
}

if (cluster.isPrimary) {
  const backoff = env.VIRTUAL_CLOCK === '1' ? { clock: virtualClock(), restartBackoff: { minMs: 1000, maxMs: 4000 } } : {}
  const workers = forkPeerWorkers(Number(env.WORKERS ?? 2), { onRestart: (i, w) => write(`RESTART ${i} ${w.process.pid}`), logger: warnLines(), ...backoff })
  cluster.on('exit', (w, c, s) => write(`EXIT ${w.process.pid} ${c} ${s}`))
  process.once('SIGTERM', () => {
    void workers.stop().then(() => process.exit(0))
  })
} else {
  const peers = clusterPeers({ basePort: Number(env.BASE_PORT) })
  const cache = new Peercache({ self: peers.self, peers: peers.peers, env: {}, hotCacheProbability: 0 })
  const tag = `w${peers.index}-${process.pid}`
  const group = cache.group({
    name: 'kv',
    cacheBytes: 1 << 20,
    load: (key) => {
      write(`LOAD ${peers.index} ${key}`)
      return `${tag}:${key}`
    },
  })
  await cache.listen(peers.port, '127.0.0.1')
  const app = createServer((req, res) => {
    const key = decodeURIComponent((req.url ?? '').replace(/^\/kv\//, ''))
    group.getString(key).then(
      (value) => res.end(value),
      (err: Error) => {
        res.statusCode = 500
        res.end(err.message)
      },
    )
  })
  await new Promise<void>((resolve) => app.listen(Number(env.APP_PORT), '127.0.0.1', resolve))
  closeOnSigterm(cache)
  write(`READY ${peers.index} ${process.pid}`)
}
