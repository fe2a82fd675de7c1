/**
 * cluster-app: one app process of the cluster benchmark (bench/cluster.ts
 * starts three). A node:http service answering `GET /item/:id` through the
 * cache of its mode (cluster-caches.ts) in front of a counted 5 ms origin
 * (cluster-origin.ts). It reports its URL when it listens and answers the
 * parent's requests over IPC: `peers`, `remoteIds`, `sample` (its CPU time
 * since the last sample, origin queries so far, the group's stats), and
 * `profileStart`/`profileStop` (a CPU profile of the window between).
 *
 * Usage (by cluster.ts only): cluster-app.ts <mode> <name> [--redis url] [--cpu-prof dir]
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { parseArgs } from 'node:util'
import { serverUrl } from '../dist/index.js'
import { createItemCache, MODES, type Mode } from './cluster-caches.js'
import { serveParent, type Message } from './cluster-ipc.js'
import { Origin } from './cluster-origin.js'
import { WindowProfiler } from './window-profiler.js'

const ORIGIN_LATENCY_MS = 5
/** Item ids are decimal numbers: anything else is a 404 before the cache is asked. */
const ITEM_ID = /^[1-9][0-9]{0,8}$/
const PREFIX = '/item/'

const { positionals, values } = parseArgs({ allowPositionals: true, options: { redis: { type: 'string' }, 'cpu-prof': { type: 'string' } } })
const [mode, name] = positionals as [Mode, string]
if (!MODES.includes(mode)) throw new Error(`cluster-app: unknown mode ${String(mode)}`)
const origin = new Origin(ORIGIN_LATENCY_MS)
const cache = await createItemCache(mode, origin, values.redis)
const profileDir = values['cpu-prof']
const profiler = profileDir === undefined ? undefined : new WindowProfiler(profileDir, `${name}-${process.pid}`)
const server = createServer(serve)
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
let cpuMark = process.cpuUsage()

/** serve answers GET /item/:id from the cache; the origin's JSON is ASCII, so its length is its byte length. */
function serve(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? ''
  const id = url.startsWith(PREFIX) ? url.slice(PREFIX.length) : ''
  if (req.method !== 'GET' || !ITEM_ID.test(id)) return void res.writeHead(404).end()
  const value = cache.get(id)
  if (typeof value === 'string') return send(res, value)
  value.then(
    (json) => send(res, json),
    (err: unknown) => res.writeHead(503, { 'content-type': 'text/plain' }).end(String(err)),
  )
}

function send(res: ServerResponse, json: string): void {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': json.length }).end(json)
}

/** sample is this process's CPU time since the previous sample (µs), its origin queries so far and the group's stats. */
function sample(): object {
  const now = process.cpuUsage()
  const cpuMicros = now.user - cpuMark.user + (now.system - cpuMark.system)
  cpuMark = now
  return { cpuMicros, originQueries: origin.queries, group: cache.stats() }
}

serveParent(
  { url: serverUrl(server), peerUrl: cache.peerUrl },
  {
    peers: (message: Message) => cache.setPeers(message.peers as string[]),
    remoteIds: (message: Message) => cache.remoteIds(message.keys as number),
    sample,
    profileStart: () => profiler?.start(),
    profileStop: () => profiler?.stop(),
  },
  async () => {
    server.closeAllConnections()
    server.close()
    await cache.close()
  },
)
