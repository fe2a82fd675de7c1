/**
 * not-found-heap: a child process (node --expose-gc) for
 * test/integration/not-found-memory.test.ts. It makes a Peercache group of
 * CACHE_BYTES with notFoundTtl whose loader throws NotFoundError with a
 * MESSAGE_BYTES message for every key, gets KEYS distinct keys (each a
 * miss remembered), and writes one JSON line: the heap used before and
 * after (after full GCs), and the notFoundHits of a second get of the last
 * key (1: the memory holds it).
 */
import { NotFoundError, Peercache } from '../../src/index.js'

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with --expose-gc')
const keys = Number(process.env.KEYS)
const messageBytes = Number(process.env.MESSAGE_BYTES)

function heapUsed(): number {
  for (let i = 0; i < 3; i++) gc!()
  return process.memoryUsage().heapUsed
}

const cache = new Peercache({ env: {} })
const group = cache.group({
  name: 'kv',
  cacheBytes: Number(process.env.CACHE_BYTES),
  notFoundTtl: 600_000,
  // A flat string of its own per key (no rope sharing a filler): what a real loader's message costs.
  load: (key) => {
    throw new NotFoundError(Buffer.from(`no row ${key} `.padEnd(messageBytes, '.'), 'latin1').toString('latin1'))
  },
})
const missing = (i: number): string => `missing-key-${i}`
await group.get('warm-up').catch(() => {})
const before = heapUsed()
for (let i = 0; i < keys; i++) await group.get(missing(i)).catch(() => {})
const after = heapUsed()
await group.get(missing(keys - 1)).catch(() => {})
process.stdout.write(`${JSON.stringify({ before, after, notFoundHits: group.stats().notFoundHits })}\n`)
await cache.close()
