/**
 * app: one instance of the demo web service. It serves `GET /products/:id`
 * from a peercache group whose loader queries SQLite, and answers its peers
 * on the same port (peercache's handler falls through to the app's routes).
 *
 * Configured only through the environment, as a deployed service would be:
 *   PEERCACHE_SELF, PEERCACHE_PEERS  this instance's URL and every instance's (read by peercache)
 *   DEMO_DB                          the SQLite file (seeded by cluster.ts)
 *   DEMO_ORIGIN_LATENCY_MS           artificial latency of each origin query (default 5)
 *   DEMO_ORIGIN_LOG                  optional file: one line per origin query (survives a SIGKILL)
 *   DEMO_EXIT_WITH_PARENT=1          exit when stdin closes (the parent died)
 *   DEMO_PEERS_FILE                  --rolling: the peer list is read from this file (one URL a line) every
 *                                    200 ms through peercache's `discovery` option, instead of PEERCACHE_PEERS
 *   DEMO_DRAIN_MS                    --rolling: how long SIGTERM keeps serving peers before stopping (drainMs)
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { NotFoundError, Peercache } from '../src/index.js'
import { openProducts } from './products.js'

const env = process.env
const latencyMs = Number(env.DEMO_ORIGIN_LATENCY_MS ?? 5)
const products = openProducts(env.DEMO_DB ?? 'demo/.data/products.db')
const originLog = env.DEMO_ORIGIN_LOG ? openSync(env.DEMO_ORIGIN_LOG, 'a') : undefined
const drainMs = Number(env.DEMO_DRAIN_MS ?? 0)
const peersFile = env.DEMO_PEERS_FILE
// self comes from PEERCACHE_SELF; peers from PEERCACHE_PEERS, or with --rolling from the peers file (a registry).
const cache = new Peercache(
  peersFile === undefined
    ? { deploy: { closeTimeoutMs: 1000 } }
    : { discovery: { lookup: () => readFileSync(peersFile, 'utf8').split('\n').filter(Boolean), intervalMs: 200 }, deploy: { closeTimeoutMs: 1000, drainMs } },
)
const counters = { requests: 0, originQueries: 0 }
const peersDown = new Set<string>()
const PRODUCT_ID = /^[1-9]\d{0,8}$/
cache.events.on('peer-down', ({ peer }) => peersDown.add(peer))
cache.events.on('peer-up', ({ peer }) => peersDown.delete(peer))

/** The group: a miss on a key this instance owns runs this loader, once across the cluster. */
const group = cache.group({
  name: 'products',
  cacheBytes: 64 << 20,
  load: async (key, { signal }) => {
    if (!PRODUCT_ID.test(key)) throw new NotFoundError(`no product ${key}`) // peers may ask for any key
    await sleep(latencyMs, undefined, { signal }) // the round trip to a remote database
    const json = products.productJson(Number(key)) // the real query
    countOriginQuery(key)
    if (json === undefined) throw new NotFoundError(`no product ${key}`)
    return json
  },
})

/** Time spent in group.getString per request: bucket i counts gets of at most GET_MS_BOUNDS[i] ms (the last, longer ones). */
const GET_MS_BOUNDS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
const getMs = new Array<number>(GET_MS_BOUNDS.length + 1).fill(0)
function observeGet(ms: number): void {
  const i = GET_MS_BOUNDS.findIndex((bound) => ms <= bound)
  getMs[i === -1 ? GET_MS_BOUNDS.length : i]!++
}

/** countOriginQuery counts a query in memory (for /stats) and in the log, written before the answer leaves. */
function countOriginQuery(key: string): void {
  counters.originQueries++
  if (originLog !== undefined) writeSync(originLog, `${key}\n`)
}

/** route answers the app's own endpoints; peercache's handler has already taken /_groupcache/. */
async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0]
  const id = /^\/products\/([^/]+)$/.exec(path ?? '')?.[1]
  if (req.method === 'GET' && id !== undefined && PRODUCT_ID.test(id)) return serveProduct(id, res)
  if (path === '/healthz') return send(res, 200, { ok: true })
  if (path === '/stats') return send(res, 200, stats())
  send(res, 404, { error: 'not found' })
}

/** stats is what GET /stats answers: this process's counters and the group's (cluster.ts polls it). */
function stats(): object {
  const gets = { bounds: GET_MS_BOUNDS, counts: getMs }
  return { pid: process.pid, self: cache.self, ...counters, peersDown: [...peersDown], getMs: gets, group: group.stats() }
}

/** serveProduct answers from the cluster cache; a client that hangs up stops its wait. */
async function serveProduct(id: string, res: ServerResponse): Promise<void> {
  counters.requests++
  const gone = new AbortController()
  res.once('close', () => gone.abort())
  try {
    const started = performance.now()
    const json = await group.getString(id, { signal: gone.signal })
    observeGet(performance.now() - started)
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) }).end(json)
  } catch (err) {
    if (err instanceof NotFoundError) return send(res, 404, { error: err.message })
    send(res, 503, { error: err instanceof Error ? err.message : String(err) }) // a load balancer retries elsewhere
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return
  const json = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) }).end(json)
}

const peerHandler = cache.handler()
const server = createServer((req, res) => {
  peerHandler(req, res, () => void route(req, res).catch(() => send(res, 500, { error: 'internal error' })))
})
const self = new URL(cache.self ?? 'http://127.0.0.1:8080')
server.listen(Number(self.port), self.hostname)

let stopping = false
/** shutdown stops taking requests, lets peercache finish its loads, then exits 0. */
async function shutdown(): Promise<void> {
  if (stopping) return
  stopping = true
  // Draining (--rolling): keep answering peers and clients while the others drop us from their rings.
  if (drainMs > 0) await cache.close()
  server.close()
  server.closeIdleConnections()
  await cache.close()
  server.closeAllConnections()
  products.close()
  if (originLog !== undefined) closeSync(originLog)
  process.exit(0)
}
process.on('SIGTERM', () => void shutdown())
process.on('SIGINT', () => void shutdown())
if (env.DEMO_EXIT_WITH_PARENT === '1') {
  process.stdin.on('end', () => void shutdown()).on('error', () => void shutdown()).resume()
}
