import { describe, it, expect } from 'vitest'
import { CachePair, type CacheEntry, type CacheName } from '../src/cache.js'
import { SLAB_MIN_PAGE } from '../src/slab.js'
import { mulberry32 } from './helpers/core-helpers.js'

/** valueFor is key's value of n bytes: a pattern that differs per key, so a value read back is known to be the key's own. */
function valueFor(key: string, n: number): Uint8Array {
  let seed = 0
  for (let i = 0; i < key.length; i++) seed = (seed * 31 + key.charCodeAt(i)) >>> 0
  const value = new Uint8Array(n)
  for (let i = 0; i < n; i++) value[i] = (seed + i * 7) & 0xff
  return value
}

function at(now: number): () => number {
  return () => now
}

/** churn populates `count` new keys with values of size(random) into main (and a share into hot); returns the keys written with their sizes. */
function churn(pair: CachePair, count: number, size: (random: () => number) => number, seed: number, prefix: string): Map<string, number> {
  const random = mulberry32(seed)
  const written = new Map<string, number>()
  for (let i = 0; i < count; i++) {
    const key = `${prefix}${i}`
    const n = size(random)
    const cache: CacheName = random() < 0.2 ? 'hot' : 'main'
    pair.populate(cache, key, { value: valueFor(key, n), expiresAt: 0 })
    written.set(key, n)
  }
  return written
}

/** expectIntact checks that every key the pair holds reads back as its own value, and that stats count what is held. */
function expectIntact(pair: CachePair, written: Map<string, number>): number {
  let held = 0
  for (const [key, n] of written) {
    const entry = pair.lookup(key, at(0))
    if (entry === undefined) continue
    held++
    if (Buffer.compare(entry.value, valueFor(key, n)) !== 0) throw new Error(`${key} does not read back as its own value`)
  }
  expect(pair.main.items + pair.hot.items).toBe(held)
  return held
}

const logUniform = (min: number, max: number) => (random: () => number) => Math.round(min * Math.exp(random() * Math.log(max / min)))

describe('slab arena', () => {
  it('reuses an evicted value\'s chunk for the next value of its size at once, and never allocates past the budget', () => {
    const cacheBytes = 4 << 20
    const pair = new CachePair({ cacheBytes })
    const written = churn(pair, 10_000, () => 1024, 1, 'k') // about 3.5× the budget
    const maxPages = Math.floor(cacheBytes / pair.slabPageBytes)
    expect(pair.slabPages).toBeLessThanOrEqual(maxPages)
    expect(pair.main.stats().evictions).toBeGreaterThan(5000)
    expect(expectIntact(pair, written)).toBeGreaterThan(2000)

    // The oldest entry's chunk is the one the next value of its size takes.
    const oldest = pair.main.oldestKey() as string
    const view = pair.lookup(oldest, at(0))!.value
    pair.main.removeOldest() // `oldest` was just looked up: this evicts another; evict oldest itself
    pair.remove(oldest)
    pair.populate('main', 'next', { value: valueFor('next', 1000), expiresAt: 0 })
    const next = pair.lookup('next', at(0))!.value
    expect(next.buffer).toBe(view.buffer)
    expect(next.byteOffset).toBe(view.byteOffset)
  })

  it('keeps every value intact under churn of mixed sizes in main and hot, then a change of the size mix', () => {
    const cacheBytes = 8 << 20
    const pair = new CachePair({ cacheBytes })
    const first = churn(pair, 4000, logUniform(65, 64 * 1024), 2, 'a')
    expect(expectIntact(pair, first)).toBeGreaterThan(100)
    // Now only large values: pages move from the small classes to the large ones, their entries evicted.
    const second = churn(pair, 800, () => 40_000, 3, 'b')
    expect(expectIntact(pair, new Map([...first, ...second]))).toBeGreaterThan(100)
    expect(pair.slabPages).toBeLessThanOrEqual(Math.floor(cacheBytes / pair.slabPageBytes))
    // ...and the budget is still used by the new size: the pages were reassigned, not lost.
    expect(pair.main.bytes + pair.hot.bytes).toBeGreaterThan(cacheBytes * 0.7)
    expect(pair.main.bytes + pair.hot.bytes).toBeLessThanOrEqual(cacheBytes)
  })

  it('keeps every value intact under random overwrites, removals and clears of a fixed key set, within the pages of the budget', () => {
    const cacheBytes = 2 << 20
    const pair = new CachePair({ cacheBytes })
    const random = mulberry32(4)
    const sizes = logUniform(65, 32 * 1024)
    const model = new Map<string, number>() // key → the size of its latest value (the pair may have evicted it)
    for (let step = 0; step < 6000; step++) {
      const index = Math.floor(random() * 400)
      const key = `key-${index}`
      const roll = random()
      if (roll < 0.1) {
        pair.remove(key)
        model.delete(key)
      } else if (roll < 0.1005) {
        pair.clear()
        model.clear()
      } else {
        const n = sizes(random)
        // A new version of the key's value: its size and pattern (from key + size) differ from the last one's.
        // Each key lives in one cache (lookup reads main first: a hot copy under a main one would be shadowed).
        pair.populate(index % 5 === 0 ? 'hot' : 'main', key, { value: valueFor(`${key}/${n}`, n), expiresAt: 0 })
        model.set(key, n)
      }
    }
    let held = 0
    for (const [key, n] of model) {
      const entry = pair.lookup(key, at(0))
      if (entry === undefined) continue
      held++
      if (Buffer.compare(entry.value, valueFor(`${key}/${n}`, n)) !== 0) throw new Error(`${key} does not read back as its latest value`)
    }
    expect(held).toBeGreaterThan(50)
    expect(pair.slabPages).toBeLessThanOrEqual(Math.floor(cacheBytes / pair.slabPageBytes))
  })

  it('counts an entry evicted because its page went to another size as an eviction, and tells onEvict', () => {
    const evicted: Array<{ cache: CacheName; key: string; entry: CacheEntry }> = []
    const cacheBytes = 2 * SLAB_MIN_PAGE // two pages of 64 KiB
    const pair = new CachePair({ cacheBytes, onEvict: (cache, key, entry) => evicted.push({ cache, key, entry }) })
    expect(pair.slabPageBytes).toBe(SLAB_MIN_PAGE)
    pair.populate('main', 'small', { value: valueFor('small', 100), expiresAt: 0 }) // page 1: 104-byte chunks
    pair.populate('main', 'mid', { value: valueFor('mid', 5000), expiresAt: 0 }) // page 2
    expect(pair.slabPages).toBe(2)
    pair.populate('main', 'big', { value: valueFor('big', 20_000), expiresAt: 0 }) // no page left: 'small''s page is taken
    expect(evicted.map((e) => e.key)).toEqual(['small'])
    expect(pair.main.stats()).toMatchObject({ items: 2, evictions: 1 })
    expect(pair.lookup('big', at(0))!.value).toEqual(valueFor('big', 20_000))
    expect(pair.lookup('mid', at(0))!.value).toEqual(valueFor('mid', 5000))
  })

  it('stores a value too large for a page in an array of its own', () => {
    const pair = new CachePair({ cacheBytes: 4 << 20 })
    const big = valueFor('huge', pair.slabPageBytes + 1)
    pair.populate('main', 'huge', { value: big, expiresAt: 0 })
    const kept = pair.lookup('huge', at(0))!.value
    expect(kept).toEqual(big)
    expect(kept.buffer.byteLength).toBe(big.byteLength)
    expect(pair.slabPages).toBe(0)
  })
})
