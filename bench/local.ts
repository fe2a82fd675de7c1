/**
 * local bench: the hit path. `group.get` (an async call that copies the
 * value), `getString`, and the synchronous `peek`, over 1k cached keys,
 * against a raw lru-cache `get` of the same entries in the same process.
 */
import { LRUCache } from 'lru-cache'
import { Peercache } from '../src/index.js'
import { measureAsync, measureSync, row, type BenchRow } from './harness.js'

const SUITE = 'local hit'
const KEYS = 1000
const VALUE = new Uint8Array(100).fill(120)

/** bench measures the local hit path against raw lru-cache get. */
export async function bench(): Promise<BenchRow[]> {
  const keys = Array.from({ length: KEYS }, (_, i) => `product:${i}`)
  const keyAt = (i: number): string => keys[i % KEYS] as string
  const raw = new LRUCache<string, Uint8Array>({ maxSize: 64 << 20, sizeCalculation: (v, k) => v.byteLength + k.length })
  for (const key of keys) raw.set(key, VALUE)
  const cache = new Peercache()
  const group = cache.group({ name: 'bench', cacheBytes: 64 << 20, load: () => VALUE })
  for (const key of keys) await group.get(key)

  const baseline = measureSync('lru-cache get (raw)', (i) => raw.get(keyAt(i)))
  const rows = [
    row(SUITE, measureSync('group.peek (sync, read-only view)', (i) => group.peek(keyAt(i))), baseline),
    row(SUITE, await measureAsync('group.get (await, copies)', (i) => group.get(keyAt(i)), { concurrency: 1 }), baseline),
    row(SUITE, await measureAsync('group.getString (await)', (i) => group.getString(keyAt(i)), { concurrency: 1 }), baseline),
    row(SUITE, await measureAsync('await raw lru-cache get', async (i) => raw.get(keyAt(i)), { concurrency: 1 }), baseline),
  ]
  await cache.close()
  return rows
}
