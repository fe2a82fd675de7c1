/**
 * churn-child: one churn measurement in a fresh process (run with
 * --expose-gc by bench/churn.ts). It makes a group of `cacheBytes` whose
 * loader makes a fresh value per key (keys never repeat), then gets keys
 * until the bytes written reach 10× and then 50× `writeBudget`, reading RSS
 * and the heap after a full GC at 1×, 10× and 50×.
 *
 * The same `writeBudget` is given to the run with the real budget and to
 * the baseline run with a 1 MiB budget: both make the same gets, so their
 * RSS differ by what the budget costs. Bytes written count each entry's key,
 * its value and WRITE_OVERHEAD_BYTES (what an entry costs the budget beyond
 * them), so 10× is about ten turnovers of the cache whatever the value size.
 *
 * Value sizes: `fixed:N` (N bytes) or `mixed` (log-uniform 100 B – 64 KiB,
 * from a seeded PRNG: every run draws the same sizes).
 *
 * It prints `RESULT <json>`: rss and heapUsed at 1×, 10×, 50×, and the items held.
 */
import { setTimeout as delay } from 'node:timers/promises'
import { Peercache } from '../dist/index.js'
import { mulberry32 } from '../demo/zipf.js'

/** WRITE_OVERHEAD_BYTES is ENTRY_OVERHEAD_BYTES when this bench was written: fixed, so every version makes the same gets. */
const WRITE_OVERHEAD_BYTES = 400
const MIXED_MIN = 100
const MIXED_MAX = 64 * 1024

const [sizesArg, cacheArg, writeArg] = process.argv.slice(2)
const cacheBytes = Number(cacheArg)
const writeBudget = Number(writeArg)
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with --expose-gc')

const nextSize = sizes(sizesArg as string)
let size = 0
const cache = new Peercache()
const group = cache.group({ name: 'churn', cacheBytes, load: () => new Uint8Array(size).fill(120) })

/** sizes returns the value-size sequence named by arg. */
function sizes(arg: string): () => number {
  if (arg === 'mixed') {
    const random = mulberry32(0x5eed)
    const span = Math.log(MIXED_MAX / MIXED_MIN)
    return () => Math.round(MIXED_MIN * Math.exp(random() * span))
  }
  const fixed = Number(arg.replace(/^fixed:/, ''))
  if (!Number.isInteger(fixed) || fixed < 0) throw new Error(`bad sizes: ${arg}`)
  return () => fixed
}

/** settle collects garbage until the heap stops shrinking, then reads memory. */
async function settle(): Promise<NodeJS.MemoryUsage> {
  for (let i = 0; i < 4; i++) {
    ;(gc as () => void)()
    // V8 hands freed pages back to the OS from a background thread: give it the chance.
    await delay(100)
  }
  return process.memoryUsage()
}

let next = 0
let written = 0

/** writeUntil gets new keys until `target` bytes have been written in all. */
async function writeUntil(target: number): Promise<void> {
  while (written < target) {
    const key = `item:${next++}`
    size = nextSize()
    await group.get(key)
    written += key.length + size + WRITE_OVERHEAD_BYTES
  }
}

async function main(): Promise<object> {
  const points: Array<{ times: number; rss: number; heapUsed: number }> = []
  for (const times of [1, 10, 50]) {
    await writeUntil(times * writeBudget)
    const memory = await settle()
    points.push({ times, rss: memory.rss, heapUsed: memory.heapUsed })
  }
  const { main: stats } = group.stats()
  await cache.close()
  return { points, items: stats.items, bytes: stats.bytes, gets: next }
}

process.stdout.write(`RESULT ${JSON.stringify(await main())}\n`)
