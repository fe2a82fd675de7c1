/**
 * dns-peer: one cluster member in its own process that finds its peers
 * through DNS, for test/integration/discovery-dns.test.ts and rolling.test.ts.
 *
 *   POD_IP=127.0.0.3 PORT=NNNN DNS_NAME=peers.test DNS_SERVER=127.0.0.1:5353 TAG=p3 \
 *     node --import tsx test/helpers/dns-peer.ts
 *
 * `self` is derived from POD_IP and the port (the real derivation path). It
 * listens on POD_IP:PORT; group `kv`'s loader answers `${TAG}:${key}`.
 * It reports on stdout, one line each: `READY`, `PEERS <json list>` on every
 * peers-changed, `LOAD <json key>` on every origin load. SIGTERM closes it
 * (after DRAIN_MS of draining).
 */
import { Peercache } from '../../src/index.js'
import { closeOnSigterm } from './sigterm.js'

const env = process.env
const tag = env.TAG ?? 'child'
const port = Number(env.PORT)
const write = (line: string): boolean => process.stdout.write(`${line}\n`)
const cache = new Peercache({ env: { POD_IP: env.POD_IP }, discovery: { dns: env.DNS_NAME ?? '', port, servers: [env.DNS_SERVER ?? ''], intervalMs: Number(env.INTERVAL_MS ?? 100), ...(env.DNS_SRV === '1' ? { srv: true } : {}) }, hotCacheProbability: 0, deploy: { drainMs: Number(env.DRAIN_MS ?? 0) }, transport: { timeoutMs: 10_000 } })
cache.events.on('peers-changed', (e) => write(`PEERS ${JSON.stringify(e.peers)}`))
cache.group({
  name: 'kv',
  cacheBytes: 1 << 20,
  load: (key) => {
    write(`LOAD ${JSON.stringify(key)}`)
    return `${tag}:${key}`
  },
})
await cache.listen(port, env.POD_IP)

closeOnSigterm(cache)
write('READY')
