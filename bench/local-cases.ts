/**
 * local-cases: the measurements of the local hit suite, one per case, each
 * run in its own process by `isolated()` (see isolated.ts for why). Every
 * case reads the same 1k keys, holding the same 100-byte value.
 */
import { LRUCache } from 'lru-cache'
import { Peercache, codecs, type Group } from '../dist/index.js'
import { measureAsync, measureSync, type BenchResult } from './harness.js'

const KEYS = 1000
const VALUE = new Uint8Array(100).fill(120)
const keys = Array.from({ length: KEYS }, (_, i) => `product:${i}`)
const keyAt = (i: number): string => keys[i % KEYS] as string
/** A ~100-byte JSON product, the typed cases' value. */
const PRODUCT = { id: 'product:0', name: 'A product with a name', price: 1999, tags: ['a', 'b', 'c'], stock: 12, active: true }
const PRODUCT_BYTES = new TextEncoder().encode(JSON.stringify(PRODUCT))
const decoder = new TextDecoder()

/** cases are the local hit measurements, by name. */
export const cases = {
  raw: (): BenchResult => {
    const raw = rawCache()
    return measureSync('lru-cache get (raw)', (i) => raw.get(keyAt(i)))
  },
  awaitRaw: (): Promise<BenchResult> => {
    const raw = rawCache()
    return measureAsync('await raw lru-cache get', async (i) => raw.get(keyAt(i)), { concurrency: 1 })
  },
  peek: (): Promise<BenchResult> => withGroup((group) => measureSync('group.peek (sync, read-only view)', (i) => group.peek(keyAt(i)))),
  get: (): Promise<BenchResult> =>
    withGroup((group) => measureAsync('group.get (await, copies)', (i) => group.get(keyAt(i)), { concurrency: 1 })),
  jsonParse: (): Promise<BenchResult> => {
    const raw = new LRUCache<string, Uint8Array>({ max: KEYS })
    for (const key of keys) raw.set(key, PRODUCT_BYTES)
    return measureAsync('await JSON.parse of the cached bytes', async (i) => JSON.parse(decoder.decode(raw.get(keyAt(i)))), {
      concurrency: 1,
    })
  },
  typedGet: (): Promise<BenchResult> =>
    withTypedGroup((group) => measureAsync('typed group.get (codecs.json, await)', (i) => group.get(keyAt(i)), { concurrency: 1 })),
  getJSON: (): Promise<BenchResult> =>
    withGroup(
      (group) => measureAsync('untyped group.getJSON (await, parses)', (i) => group.getJSON(keyAt(i)), { concurrency: 1 }),
      PRODUCT_BYTES,
    ),
  getString: (): Promise<BenchResult> =>
    withGroup((group) => measureAsync('group.getString (await)', (i) => group.getString(keyAt(i)), { concurrency: 1 })),
}

function rawCache(): LRUCache<string, Uint8Array> {
  const raw = new LRUCache<string, Uint8Array>({ maxSize: 64 << 20, sizeCalculation: (v, k) => v.byteLength + k.length })
  for (const key of keys) raw.set(key, VALUE)
  return raw
}

async function withGroup(measure: (group: Group) => BenchResult | Promise<BenchResult>, value = VALUE): Promise<BenchResult> {
  const cache = new Peercache()
  const group = cache.group({ name: 'bench', cacheBytes: 64 << 20, load: () => value })
  for (const key of keys) await group.get(key)
  try {
    return await measure(group)
  } finally {
    await cache.close()
  }
}

async function withTypedGroup(measure: (group: Group<typeof PRODUCT>) => Promise<BenchResult>): Promise<BenchResult> {
  const cache = new Peercache()
  const group = cache.group({ name: 'bench', cacheBytes: 64 << 20, codec: codecs.json<typeof PRODUCT>(), load: () => PRODUCT })
  for (const key of keys) await group.get(key)
  try {
    return await measure(group)
  } finally {
    await cache.close()
  }
}
