/**
 * batch bench: what batching buys on the network path, in keys per second,
 * with the owner in another process and caching off on the asker.
 *
 *  - getMany of 100 remote keys (one batch request) vs 100 parallel gets
 *    with coalescing off (100 requests);
 *  - the same 100 parallel gets with coalescing on (one batch, automatically)
 *    vs with it off.
 * Each pair is measured in alternating slices (harness.ts, `interleaved`).
 */
import { createServer } from 'node:http'
import { Peercache, serverUrl } from '../dist/index.js'
import { startServerChild } from './child.js'
import { interleaved, type BenchRow } from './harness.js'
import { remoteKeys } from './remote.js'

const SUITE = 'batch'
const BATCH = 100

/** bench measures getMany and coalesced gets against per-key requests. */
export async function bench(): Promise<BenchRow[]> {
  const peer = await startServerChild('peercache')
  const local = createServer()
  await new Promise<void>((resolve) => local.listen(0, '127.0.0.1', resolve))
  const self = serverUrl(local)
  const perKey = new Peercache({ self, peers: [self, peer.url], coalesce: false, hotCacheProbability: 0 })
  const coalesced = new Peercache({ self, peers: [self, peer.url], coalesce: true, hotCacheProbability: 0 })
  const plain = perKey.group({ name: 'bench', cacheBytes: 0, load: () => 'local' })
  const batched = coalesced.group({ name: 'bench', cacheBytes: 0, load: () => 'local' })
  const pool = remoteKeys(perKey, 10 * BATCH)
  const slice = (i: number): string[] => pool.slice((i % 10) * BATCH, (i % 10) * BATCH + BATCH)
  const each = { concurrency: 4, opsPerCall: BATCH }
  const perKeyGets = { name: '100 parallel gets, coalesce off (keys/s)', fn: (i: number) => Promise.all(slice(i).map((k) => plain.get(k))), ...each }
  try {
    return [
      await interleaved(SUITE, perKeyGets, { name: 'getMany(100 keys) (keys/s)', fn: (i) => plain.getMany(slice(i)), ...each }),
      await interleaved(SUITE, perKeyGets, { name: '100 parallel gets, coalesce on (keys/s)', fn: (i) => Promise.all(slice(i).map((k) => batched.get(k))), ...each }),
    ]
  } finally {
    await Promise.all([perKey.close(), coalesced.close(), peer.stop()])
    local.close()
  }
}
