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
 * `empty` and `fill` then wait, idle, until V8 has shrunk its young
 * generation back to its least (its memory reducer runs some seconds after
 * the process goes quiet; up to SETTLE_MAX_MS): any fill of a heap grows the
 * young generation (16 MiB more here), which the empty process never did,
 * and which is the filling work's, not what the group keeps.
 *
 * It prints `RESULT <json>`: RSS and heap after a full GC, items and bytes held.
 */
import { setTimeout as delay } from 'node:timers/promises'
import { getHeapSpaceStatistics } from 'node:v8'
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

/** How long to wait, at most, for V8 to shrink the young generation; and how often to look. */
const SETTLE_MAX_MS = 40_000
const SETTLE_POLL_MS = 1_000
/** The young generation's least size on 64-bit V8 (one 1 MiB semi-space committed). */
const LEAST_NEW_SPACE_BYTES = 1 << 20

/** newSpaceBytes is the young generation's (new space's) committed size now. */
function newSpaceBytes(): number {
  return getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.space_size ?? 0
}

/** youngGenerationSettled idles (a full GC a second) until new space is back to its least, or SETTLE_MAX_MS passed. */
async function youngGenerationSettled(): Promise<void> {
  const started = performance.now()
  while (newSpaceBytes() > LEAST_NEW_SPACE_BYTES && performance.now() - started < SETTLE_MAX_MS) {
    await delay(SETTLE_POLL_MS)
    ;(gc as () => void)()
  }
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
  if (mode !== 'churn') await youngGenerationSettled()
  const memory = await settle()
  const { main: stats } = group.stats()
  await cache.close()
  return { rss: memory.rss, heapTotal: memory.heapTotal, heapUsed: memory.heapUsed, external: memory.external, items: stats.items, bytes: stats.bytes, heaps }
}

process.stdout.write(`RESULT ${JSON.stringify(await main())}\n`)
