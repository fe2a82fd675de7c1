import { describe, it, expect } from 'vitest'
import { ByteCache, CachePair, ENTRY_OVERHEAD_BYTES, OFF_HEAP_OVERHEAD_BYTES, entrySize, type CacheEntry, type CacheName } from '../src/cache.js'
import { mulberry32 } from './helpers/core-helpers.js'

/** entry makes a value of n bytes (filled with n's low byte so values differ). */
function entry(n: number, expiresAt = 0): CacheEntry {
  return { value: new Uint8Array(n).fill(n & 0xff), expiresAt }
}

/** at is a clock fixed at now (epoch ms). */
function at(now: number): () => number {
  return () => now
}

/** where tells which cache of the pair holds a live entry for key (main is checked first, as lookup does). */
function where(pair: CachePair, key: string, now: number): CacheName | undefined {
  if (pair.main.get(key, at(now)) !== undefined) return 'main'
  if (pair.hot.get(key, at(now)) !== undefined) return 'hot'
  return undefined
}

interface Eviction {
  cache: CacheName
  key: string
  entry: CacheEntry
}

/**
 * payload counts an entry as its key's UTF-8 bytes + its value's bytes only:
 * the budget mechanics below are checked with sizes you can add by hand (the
 * real size, with the measured overhead, is checked under "entry sizes").
 */
function payload(e: CacheEntry, key: string): number {
  return Math.max(1, Buffer.byteLength(key, 'utf8') + e.value.byteLength)
}

function recordingPair(cacheBytes: number, hotRatio?: number): { pair: CachePair; evictions: Eviction[] } {
  const evictions: Eviction[] = []
  const pair = new CachePair({
    cacheBytes,
    sizeOf: payload,
    ...(hotRatio === undefined ? {} : { hotRatio }),
    onEvict: (cache, key, e) => evictions.push({ cache, key, entry: e }),
  })
  return { pair, evictions }
}

describe('entry sizes', () => {
  it('counts the key\'s UTF-8 bytes, the value\'s bytes and the measured overhead per entry', () => {
    const key = 'é€𝄞' // 2 + 3 + 4 UTF-8 bytes, 4 UTF-16 units
    expect(key.length).toBe(4)
    expect(entrySize(entry(10), key)).toBe(19 + ENTRY_OVERHEAD_BYTES)
    // A value over V8's on-heap typed array limit (64 bytes) pays for its slab chunk (80 bytes: the smallest),
    // one too large for any chunk (over 1 MiB) for its bytes and their own backing store.
    expect(entrySize(entry(64), key)).toBe(9 + 64 + ENTRY_OVERHEAD_BYTES)
    expect(entrySize(entry(65), key)).toBe(9 + 80 + ENTRY_OVERHEAD_BYTES)
    expect(entrySize(entry(1024), key)).toBe(9 + 1096 + ENTRY_OVERHEAD_BYTES) // 80 × 1.25^n rounded up to 8
    expect(entrySize(entry((1 << 20) + 1), key)).toBe(9 + (1 << 20) + 1 + ENTRY_OVERHEAD_BYTES + OFF_HEAP_OVERHEAD_BYTES)
    expect(ENTRY_OVERHEAD_BYTES).toBeGreaterThan(0)

    const real = new CachePair({ cacheBytes: 100_000 })
    real.populate('main', key, entry(10))
    expect(real.main.stats()).toMatchObject({ bytes: 19 + ENTRY_OVERHEAD_BYTES, items: 1 })
  })

  it('bounds the count of tiny entries by the overhead: a budget of 8 KB holds at most 8 KB / (overhead + size) of them', () => {
    const cacheBytes = 8 * 1024
    const pair = new CachePair({ cacheBytes })
    for (let i = 0; i < 1000; i++) pair.populate('main', `k${i}`, entry(5))
    const perEntry = ENTRY_OVERHEAD_BYTES + 5 + 2 // the shortest key here has 2 bytes
    expect(pair.main.items).toBeLessThanOrEqual(Math.floor(cacheBytes / perEntry))
    expect(pair.main.items).toBeGreaterThan(Math.floor(cacheBytes / (perEntry + 2)) - 1) // and the budget is used
    expect(pair.main.bytes).toBeLessThanOrEqual(cacheBytes)
  })

  it('counts the key and value bytes exactly (payload sizes)', () => {
    const key = 'é€𝄞'
    const { pair } = recordingPair(1000)
    pair.populate('main', key, entry(10))
    expect(pair.main.stats()).toMatchObject({ bytes: 19, items: 1 })
    expect(pair.hot.stats()).toMatchObject({ bytes: 0, items: 0 })

    pair.populate('hot', 'ß', entry(5)) // 2 + 5
    expect(pair.hot.stats()).toMatchObject({ bytes: 7, items: 1 })
  })

  it('counts a key populated twice once (groupcache TestNoDedup), and an overwrite at its new size', () => {
    const { pair, evictions } = recordingPair(10_000)
    pair.populate('main', 'key', entry(100))
    pair.populate('main', 'key', entry(100))
    expect(pair.main.stats()).toMatchObject({ bytes: 103, items: 1 })
    pair.populate('main', 'key', entry(40))
    expect(pair.main.stats()).toMatchObject({ bytes: 43, items: 1, evictions: 0 })
    expect(pair.lookup('key', at(0))?.value.byteLength).toBe(40)
    expect(evictions).toEqual([]) // an overwrite is not an eviction
  })
})

describe('CachePair byte budget', () => {
  it('never lets main + hot exceed cacheBytes over a long random sequence, and accounts bytes exactly', () => {
    const cacheBytes = 5000
    const random = mulberry32(0xc0ffee)
    const { pair, evictions } = recordingPair(cacheBytes)
    const keys = Array.from({ length: 300 }, (_, i) => (i % 7 === 0 ? `ключ-${i}-€` : `key-${i}`))
    let biggest = 0

    for (let step = 0; step < 20_000; step++) {
      const cache: CacheName = random() < 0.3 ? 'hot' : 'main'
      const key = keys[Math.floor(random() * keys.length)] as string
      // Mostly small values, now and then one near or over the whole budget.
      const roll = random()
      const size = roll < 0.01 ? 4000 + Math.floor(random() * 2000) : Math.floor(random() * 600)
      biggest = Math.max(biggest, size)
      pair.populate(cache, key, entry(size))
      const main = pair.main.bytes
      const hot = pair.hot.bytes
      if (main + hot > cacheBytes || main < 0 || hot < 0) {
        throw new Error(`step ${step}: main ${main} + hot ${hot} exceeds ${cacheBytes}`)
      }
    }
    expect(biggest).toBeGreaterThan(cacheBytes) // the sequence did try oversized entries
    expect(pair.main.stats().evictions).toBeGreaterThan(0)
    expect(pair.hot.stats().evictions).toBeGreaterThan(0)
    expect(evictions.length).toBe(pair.main.stats().evictions + pair.hot.stats().evictions)

    // The byte counters equal the sizes of the entries really held.
    let mainSum = 0
    let hotSum = 0
    let mainItems = 0
    let hotItems = 0
    for (const key of keys) {
      const m = pair.main.get(key, at(0))
      if (m !== undefined) {
        mainSum += payload(m, key)
        mainItems++
      }
      const h = pair.hot.get(key, at(0))
      if (h !== undefined) {
        hotSum += payload(h, key)
        hotItems++
      }
    }
    expect(pair.main.stats()).toMatchObject({ bytes: mainSum, items: mainItems })
    expect(pair.hot.stats()).toMatchObject({ bytes: hotSum, items: hotItems })
  })

  it('keeps hot to about 1/8 of main once both are full', () => {
    const cacheBytes = 10_000
    const size = 100 // every entry: 6-byte key + 94-byte value
    const { pair } = recordingPair(cacheBytes)
    const key = (prefix: string, i: number): string => `${prefix}${String(i).padStart(5, '0')}`
    for (let i = 0; i < 100; i++) pair.populate('main', key('m', i), entry(size - 6))
    expect(pair.main.bytes).toBe(cacheBytes)

    const random = mulberry32(8)
    let m = 100
    for (let i = 0; i < 3000; i++) {
      if (random() < 0.5) pair.populate('hot', key('h', i), entry(size - 6))
      else pair.populate('main', key('m', m++), entry(size - 6))
      const main = pair.main.bytes
      const hot = pair.hot.bytes
      expect(main + hot).toBeLessThanOrEqual(cacheBytes)
      if (hot > main / 8 + size) throw new Error(`step ${i}: hot ${hot} exceeds main ${main} / 8 + ${size}`)
    }
    // ...and hot is really used, close to its share.
    const main = pair.main.bytes
    const hot = pair.hot.bytes
    expect(hot).toBeGreaterThan(0)
    expect(hot).toBeGreaterThanOrEqual(main / 8 - 2 * size)
    expect(main + hot).toBeGreaterThan(cacheBytes - 2 * size)
  })

  it('honours a custom hotRatio', () => {
    const { pair } = recordingPair(10_000, 2)
    for (let i = 0; i < 100; i++) pair.populate('main', `m${String(i).padStart(3, '0')}`, entry(96)) // 100 each
    for (let i = 0; i < 200; i++) pair.populate('hot', `h${String(i).padStart(3, '0')}`, entry(96))
    expect(pair.hot.bytes).toBeLessThanOrEqual(pair.main.bytes / 2 + 100)
    expect(pair.hot.bytes).toBeGreaterThan(pair.main.bytes / 8 + 100) // more than the default share
  })
})

describe('evictions', () => {
  it('counts evictions per cache and calls onEvict with the cache that evicted', () => {
    const { pair, evictions } = recordingPair(1000)
    // Keys 'a0'..'a9' (2 bytes) + 98-byte values = 100 bytes each: exactly full.
    for (let i = 0; i < 10; i++) pair.populate('main', `a${i}`, entry(98))
    expect(pair.main.bytes).toBe(1000)
    expect(evictions).toEqual([])

    pair.populate('main', 'a10', entry(97)) // 100 bytes: pushes out the oldest of main
    expect(evictions).toHaveLength(1)
    expect(evictions[0]?.cache).toBe('main')
    expect(evictions[0]?.key).toBe('a0')
    expect(evictions[0]?.entry.value.byteLength).toBe(98)
    expect(pair.main.stats().evictions).toBe(1)

    // Hot (100) <= main (1000) / 8: main gives way.
    pair.populate('hot', 'h0', entry(98))
    expect(evictions[1]).toMatchObject({ cache: 'main', key: 'a1' })
    // Hot (200) > main (900) / 8: hot gives way, oldest first.
    pair.populate('hot', 'h1', entry(98))
    expect(evictions[2]).toMatchObject({ cache: 'hot', key: 'h0' })
    expect(pair.hot.stats()).toMatchObject({ evictions: 1, items: 1, bytes: 100 })
    expect(pair.main.stats()).toMatchObject({ evictions: 2, items: 9, bytes: 900 })
    expect(where(pair, 'h1', 0)).toBe('hot')
    expect(pair.lookup('h0', at(0))).toBeUndefined()
    expect(pair.lookup('a0', at(0))).toBeUndefined()
    expect(pair.lookup('a1', at(0))).toBeUndefined()
    expect(where(pair, 'a2', 0)).toBe('main')
  })

  it('evicts the least recently used entry: a lookup refreshes an entry', () => {
    const { pair, evictions } = recordingPair(300)
    pair.populate('main', 'x', entry(99))
    pair.populate('main', 'y', entry(99))
    pair.populate('main', 'z', entry(99))
    expect(pair.lookup('x', at(0))).toBeDefined() // x is now the most recent
    pair.populate('main', 'w', entry(99))
    expect(evictions.map((e) => e.key)).toEqual(['y'])
    expect(pair.lookup('x', at(0))).toBeDefined()
  })

  it('does not count removals, clears or expiries as evictions', () => {
    const { pair, evictions } = recordingPair(1000)
    pair.populate('main', 'r', entry(10))
    pair.populate('main', 'e', entry(10, 500))
    pair.populate('hot', 'c', entry(10))
    expect(pair.remove('r')).toBe(true)
    expect(pair.lookup('e', at(500))).toBeUndefined()
    pair.hot.clear()
    expect(evictions).toEqual([])
    expect(pair.main.stats()).toMatchObject({ evictions: 0, items: 0, bytes: 0 })
    expect(pair.hot.stats()).toMatchObject({ evictions: 0, items: 0, bytes: 0 })
  })
})

describe('expiry', () => {
  it('never returns an expired entry and removes it (main and hot)', () => {
    const { pair } = recordingPair(1000)
    pair.populate('main', 'm', entry(10, 1000))
    pair.populate('hot', 'h', entry(10, 2000))
    pair.populate('main', 'forever', entry(10, 0))

    expect(where(pair, 'm', 999)).toBe('main')
    expect(pair.lookup('m', at(1000))).toBeUndefined()
    expect(pair.main.stats()).toMatchObject({ items: 1, bytes: 17 }) // only 'forever' left
    expect(pair.lookup('m', at(0))).toBeUndefined() // gone, even for an earlier clock

    expect(pair.lookup('h', at(1999))?.value.byteLength).toBe(10)
    expect(where(pair, 'h', 1999)).toBe('hot')
    expect(pair.lookup('h', at(5000))).toBeUndefined()
    expect(pair.hot.stats()).toMatchObject({ items: 0, bytes: 0 })

    expect(where(pair, 'forever', Number.MAX_SAFE_INTEGER)).toBe('main')
  })

  it('counts an expired lookup as a get but not a hit', () => {
    const cache = new ByteCache('main', 1000, undefined, 0, payload)
    cache.add('k', entry(5, 100))
    expect(cache.get('k', at(50))).toBeDefined()
    expect(cache.get('k', at(100))).toBeUndefined()
    expect(cache.get('k', at(50))).toBeUndefined()
    expect(cache.stats()).toEqual({ bytes: 0, items: 0, gets: 3, hits: 1, evictions: 0 })
  })
})

describe('limits', () => {
  it('stores nothing when cacheBytes is 0', () => {
    const { pair, evictions } = recordingPair(0)
    expect(pair.enabled).toBe(false)
    pair.populate('main', 'a', entry(1))
    pair.populate('hot', 'b', entry(1))
    expect(pair.lookup('a', at(0))).toBeUndefined()
    expect(pair.lookup('b', at(0))).toBeUndefined()
    expect(pair.main.stats()).toMatchObject({ bytes: 0, items: 0 })
    expect(pair.hot.stats()).toMatchObject({ bytes: 0, items: 0 })
    expect(evictions).toEqual([])
  })

  it('does not store an entry larger than the budget (and keeps what it held)', () => {
    const { pair, evictions } = recordingPair(100)
    pair.populate('main', 'a', entry(39)) // 40
    pair.populate('main', 'b', entry(39)) // 40
    pair.populate('main', 'big', entry(98)) // 101 > 100
    pair.populate('hot', 'bigger', entry(500))
    expect(pair.lookup('big', at(0))).toBeUndefined()
    expect(pair.lookup('bigger', at(0))).toBeUndefined()
    expect(pair.main.stats()).toMatchObject({ bytes: 80, items: 2 })
    expect(pair.hot.stats()).toMatchObject({ bytes: 0, items: 0 })
    expect(pair.lookup('a', at(0))).toBeDefined()
    expect(pair.lookup('b', at(0))).toBeDefined()
    expect(evictions).toEqual([])

    // An oversized overwrite must not leave the old value behind.
    pair.populate('main', 'a', entry(200))
    expect(pair.lookup('a', at(0))).toBeUndefined()
    expect(pair.main.bytes).toBe(40)

    // An entry of exactly the budget fits (and pushes the rest out).
    pair.populate('main', 'fit', entry(97)) // 3 + 97 = 100
    expect(pair.lookup('fit', at(0))?.value.byteLength).toBe(97)
    expect(pair.main.bytes + pair.hot.bytes).toBe(100)
  })
})

describe('remove / removeHot', () => {
  it('remove drops a key from both caches; removeHot only from hot', () => {
    const { pair, evictions } = recordingPair(1000)
    pair.populate('main', 'both', entry(10))
    pair.populate('hot', 'both', entry(20))
    pair.populate('hot', 'hotOnly', entry(10))
    pair.populate('main', 'mainOnly', entry(10))

    expect(pair.removeHot('mainOnly')).toBe(false)
    expect(where(pair, 'mainOnly', 0)).toBe('main')

    expect(pair.removeHot('both')).toBe(true)
    expect(where(pair, 'both', 0)).toBe('main')
    expect(pair.hot.stats()).toMatchObject({ items: 1, bytes: 17 })

    pair.populate('hot', 'both', entry(20))
    expect(pair.remove('both')).toBe(true)
    expect(pair.lookup('both', at(0))).toBeUndefined()
    expect(pair.remove('both')).toBe(false)

    expect(pair.remove('hotOnly')).toBe(true)
    expect(pair.lookup('hotOnly', at(0))).toBeUndefined()
    expect(pair.main.stats()).toMatchObject({ items: 1, bytes: 18 })
    expect(pair.hot.stats()).toMatchObject({ items: 0, bytes: 0 })
    expect(evictions).toEqual([])
  })
})

describe('ByteCache', () => {
  it('counts gets and hits, and removeOldest counts as an eviction', () => {
    const evicted: string[] = []
    const cache = new ByteCache('hot', 1000, (name, key) => evicted.push(`${name}:${key}`), 0, payload)
    cache.add('one', entry(10))
    cache.add('two', entry(10))
    expect(cache.get('one', at(0))).toBeDefined()
    expect(cache.get('missing', at(0))).toBeUndefined()
    cache.removeOldest() // 'two': 'one' was just read
    expect(evicted).toEqual(['hot:two'])
    expect(cache.stats()).toEqual({ bytes: 13, items: 1, gets: 2, hits: 1, evictions: 1 })
  })
})

describe('cached values own their bytes', () => {
  it('a view of a larger buffer (a peer answer) is copied when stored, so later writes to that buffer change nothing', () => {
    const pair = new CachePair({ cacheBytes: 1 << 20 })
    const body = Buffer.from('xxhelloyy')
    const view = new Uint8Array(body.buffer, body.byteOffset + 2, 5)
    pair.populate('hot', 'k', { value: view, expiresAt: 0 })
    body.fill(0)
    const kept = pair.hot.get('k', at(0))!
    expect(Buffer.from(kept.value).toString()).toBe('hello')
    expect(kept.value.byteOffset).toBe(0)
    expect(kept.value.buffer.byteLength).toBe(5)
  })

  it('a value over 64 bytes is copied into the slab arena: later writes to the stored array change nothing', () => {
    const pair = new CachePair({ cacheBytes: 1 << 20 })
    const own = entry(100)
    pair.populate('main', 'k', own)
    own.value.fill(0)
    const kept = pair.main.get('k', at(0))!
    expect(kept.value).toEqual(new Uint8Array(100).fill(100))
    expect(kept.value.buffer.byteLength).toBe(pair.slabPageBytes) // a chunk of a page, not a store of its own
  })
})

describe('small values stay on the V8 heap', () => {
  it('storing 10,000 values of 16 bytes moves none of them to a store of its own (arrayBuffers does not grow by their size)', () => {
    const pair = new CachePair({ cacheBytes: 64 << 20 })
    const values = Array.from({ length: 10_000 }, (_, i) => new Uint8Array(16).fill(i & 0xff))
    const before = process.memoryUsage().arrayBuffers
    values.forEach((value, i) => pair.populate('main', `k${i}`, { value, expiresAt: 0 }))
    const grown = process.memoryUsage().arrayBuffers - before
    // Reading `.buffer` of each would have added 10,000 × 16 bytes of backing stores (160 KB).
    expect(grown).toBeLessThan(10_000 * 4)
    expect(pair.main.get('k7', at(0))!.value).toEqual(new Uint8Array(16).fill(7))
  })
})
