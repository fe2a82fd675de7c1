/**
 * memory-child: one memory measurement in a fresh process (run with
 * --expose-gc by bench/memory.ts). It makes a group of `cacheBytes`, then:
 *
 *  - `empty`: stores nothing (the empty process's RSS, the baseline);
 *  - `fill`: gets keys (a loader of `valueBytes`-byte values) until the
 *    budget evicts: the cache is full;
 *  - `churn`: gets keys whose key + value bytes add up to 10× the budget,
 *    taking the heap after a full GC at every 1× (it must stay flat).
 *
 * It prints `RESULT <json>`: RSS and heap after a full GC, items and bytes held.
 */
import { setTimeout as delay } from 'node:timers/promises'
import { Peercache } from '../dist/index.js'

const [mode, valueArg, budgetArg] = process.argv.slice(2)
const valueBytes = Number(valueArg)
const cacheBytes = Number(budgetArg)
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with --expose-gc')

const cache = new Peercache()
const group = cache.group({
  name: 'memory',
  cacheBytes,
  load: () => new Uint8Array(valueBytes).fill(120),
})
let next = 0

/** settle collects garbage until the heap stops shrinking, then reads memory. */
async function settle(): Promise<NodeJS.MemoryUsage> {
  for (let i = 0; i < 4; i++) {
    ;(gc as () => void)()
    // V8 hands freed pages back to the OS from a background thread: give it the chance.
    await delay(100)
  }
  return process.memoryUsage()
}

async function writeBytes(bytes: number): Promise<void> {
  let written = 0
  while (written < bytes) {
    const key = `item:${next++}`
    await group.get(key)
    written += key.length + valueBytes
  }
}

/** fill gets new keys until the budget evicts (stats read every 1,000 gets: reading them allocates). */
async function fill(): Promise<void> {
  while (next % 1000 !== 0 || group.stats().main.evictions === 0) await group.get(`item:${next++}`)
}

async function main(): Promise<object> {
  if (mode === 'fill') await fill()
  const heaps: number[] = []
  if (mode === 'churn') {
    for (let i = 0; i < 10; i++) {
      await writeBytes(cacheBytes)
      heaps.push((await settle()).heapUsed)
    }
  }
  const memory = await settle()
  const { main: stats } = group.stats()
  await cache.close()
  return { rss: memory.rss, heapTotal: memory.heapTotal, heapUsed: memory.heapUsed, external: memory.external, items: stats.items, bytes: stats.bytes, heaps }
}

process.stdout.write(`RESULT ${JSON.stringify(await main())}\n`)
