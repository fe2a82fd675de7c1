/**
 * child-peer: one cluster member in its own process, for
 * test/integration/child-processes.test.ts (as golang/groupcache's
 * http_test.go runs its peers).
 *
 *   PEERCACHE_SELF=http://127.0.0.1:PORT PEERCACHE_PEERS=... TAG=child-0 \
 *     node --import tsx test/helpers/child-peer.ts
 *
 * Reads its peer list from the environment (the real config path), creates
 * group `kv` whose loader answers `${TAG}:${key}`, listens on 127.0.0.1 at the
 * port of its self URL, and prints `READY` on stdout. SIGTERM closes it.
 */
import { Peercache } from '../../src/index.js'
import { closeOnSigterm } from './sigterm.js'

const tag = process.env.TAG ?? 'child'
const cache = new Peercache()
if (cache.self === undefined) throw new Error('child-peer needs PEERCACHE_SELF')
cache.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => `${tag}:${key}` })

const port = Number(new URL(cache.self).port)
await cache.listen(port, '127.0.0.1')

closeOnSigterm(cache)

process.stdout.write('READY\n')
