/**
 * remote bench: the network paths, each against a raw undici baseline
 * measured in the same run, with the server in another process.
 *
 *  - remote get: `group.get` on an asker with caching off (every get goes to
 *    the owner, coalescing off) vs raw `Pool.request` to a plain node:http
 *    server returning the same 100 bytes; 64 in flight.
 *  - peer serving: raw undici requests to a Peercache peer endpoint vs to the
 *    plain server: what the handler costs on the serving side.
 */
import { Pool } from 'undici'
import { Peercache, serverUrl } from '../dist/index.js'
import { startServerChild } from './child.js'
import { bracketed, measureAsync, type BenchRow } from './harness.js'
import { createServer } from 'node:http'

const SUITE = 'remote'
const CONCURRENCY = 64
const KEYS = 1000

/** bench measures remote gets and peer serving against raw undici + node:http. */
export async function bench(): Promise<BenchRow[]> {
  const raw = await startServerChild('raw')
  const peer = await startServerChild('peercache')
  const local = createServer()
  await new Promise<void>((resolve) => local.listen(0, '127.0.0.1', resolve))
  const self = serverUrl(local)
  const asker = new Peercache({ self, peers: [self, peer.url], coalesce: false, hotCacheProbability: 0 })
  const group = asker.group({ name: 'bench', cacheBytes: 0, load: () => 'local' })
  const keys = remoteKeys(asker, KEYS)
  const rawPool = new Pool(raw.url, { connections: 16 })
  const peerPool = new Pool(peer.url, { connections: 16 })
  try {
    const opts = { concurrency: CONCURRENCY, durationMs: 1500, warmupMs: 300 }
    const keyAt = (i: number): string => keys[i % keys.length] as string
    return await bracketed(SUITE, () => measureAsync('undici Pool.request → node:http (raw)', (i) => fetchRaw(rawPool, `/v/${keyAt(i)}`), opts), [
      () => measureAsync('group.get → remote owner', (i) => group.get(keyAt(i)), opts),
      () => measureAsync('undici Pool.request → peercache handler', (i) => fetchRaw(peerPool, `/_groupcache/bench/${encodeURIComponent(keyAt(i))}`), opts),
    ])
  } finally {
    await Promise.all([rawPool.close(), peerPool.close(), asker.close(), raw.stop(), peer.stop()])
    local.close()
  }
}

/** remoteKeys returns n keys the asker's ring gives to the other peer. */
export function remoteKeys(cache: Peercache, n: number): string[] {
  const keys: string[] = []
  for (let i = 0; keys.length < n && i < n * 100; i++) {
    const key = `product:${i}`
    if (cache.picker.pickPeer(key) !== null) keys.push(key)
  }
  return keys
}

async function fetchRaw(pool: Pool, path: string): Promise<void> {
  const { statusCode, body } = await pool.request({ method: 'GET', path })
  await body.arrayBuffer()
  if (statusCode !== 200) throw new Error(`status ${statusCode}`)
}
