import { afterEach, describe, it, expect, vi } from 'vitest'
import {
  AbortError,
  ClosedError,
  ENTRY_OVERHEAD_BYTES,
  InvalidArgumentError,
  LoadError,
  NotFoundError,
  Peercache,
  PeercacheError,
  type Group,
  type GroupOptions,
  type LoadResult,
  type Loader,
  type PeercacheEvents,
  type PeercacheOptions,
} from '../src/index.js'
import { chunkBytes } from '../src/slab.js'
import { bytesOf, deferred, flushTasks, settle, whenAborted } from './helpers/core-helpers.js'
import { servedGroup } from './helpers/served.js'

const MiB = 1024 * 1024
/** OVERHEAD is what each entry counts against the budget beyond its key and value bytes (a value up to 64 bytes). */
const OVERHEAD = ENTRY_OVERHEAD_BYTES
/** CHUNK_100 is what a 100-byte value counts: its slab chunk (src/slab.ts). */
const CHUNK_100 = chunkBytes(100) as number
const open: Peercache[] = []

/** newCache makes a peer-less Peercache (env ignored) that is closed after the test. */
function newCache(options: PeercacheOptions = {}): Peercache {
  const cache = new Peercache({ env: {}, ...options })
  open.push(cache)
  return cache
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((cache) => cache.close()))
})

/** counting wraps a loader and counts its calls per key. */
function counting(load: Loader): { load: Loader; calls: Map<string, number>; total: () => number } {
  const calls = new Map<string, number>()
  return {
    calls,
    total: () => [...calls.values()].reduce((a, b) => a + b, 0),
    load: (key, ctx) => {
      calls.set(key, (calls.get(key) ?? 0) + 1)
      return load(key, ctx)
    },
  }
}

function newGroup(options: Partial<GroupOptions> & Pick<GroupOptions, 'load'>, cacheOptions: PeercacheOptions = {}): { cache: Peercache; group: Group } {
  const cache = newCache(cacheOptions)
  const group = cache.group({ name: 'g', cacheBytes: MiB, ...options })
  return { cache, group }
}

/** plain copies bytes into a plain Uint8Array, so Buffers and Uint8Arrays compare by content. */
function plain(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes)
}

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  const outcome = await settle(promise)
  if (outcome.ok) throw new Error('expected a rejection, got a value')
  return outcome.error
}

describe('deduplication', () => {
  it('1,000 concurrent gets of one key cost exactly one load and all receive equal bytes', async () => {
    const gate = deferred()
    const loader = counting(async (key) => {
      await gate.promise
      return `value of ${key}`
    })
    const { group } = newGroup({ load: loader.load })
    const gets = Array.from({ length: 1000 }, () => group.get('k'))
    gate.resolve()
    const values = await Promise.all(gets)
    expect(loader.total()).toBe(1)
    const expected = bytesOf('value of k')
    for (const value of values) expect(plain(value)).toEqual(expected)
    expect(values[0]).not.toBe(values[1]) // each caller has its own copy
    expect(group.stats()).toMatchObject({ gets: 1000, loads: 1000, loadsDeduped: 1, localLoads: 1, localLoadErrs: 0 })
  })
})

describe('loader failures', () => {
  const cause = new Error('origin down')
  const cases: Array<{ name: string; first: Loader; keepsCause: boolean }> = [
    {
      name: 'throws synchronously',
      first: () => {
        throw cause
      },
      keepsCause: true,
    },
    {
      name: 'rejects',
      first: async () => {
        await Promise.resolve()
        throw cause
      },
      keepsCause: true,
    },
    { name: 'returns a number', first: () => 5 as unknown as LoadResult, keepsCause: false },
    { name: 'returns null', first: () => null as unknown as LoadResult, keepsCause: false },
    { name: 'returns undefined', first: async () => undefined as unknown as LoadResult, keepsCause: false },
    { name: 'returns { value: 5 }', first: () => ({ value: 5 }) as unknown as LoadResult, keepsCause: false },
  ]

  it.each(cases)('loader $name: every waiter gets a LoadError; the next get loads again', async ({ first, keepsCause }) => {
    let call = 0
    // Not an async wrapper: a synchronous throw stays synchronous. The loader
    // runs after this tick, so all 8 gets below join one flight.
    const { group } = newGroup({ load: (key, ctx) => (call++ === 0 ? first(key, ctx) : 'ok') })
    const errors = await Promise.all(Array.from({ length: 8 }, () => errorOf(group.get('k'))))
    expect(call).toBe(1)
    for (const err of errors) {
      expect(err).toBeInstanceOf(LoadError)
      expect(err).toBeInstanceOf(PeercacheError)
      expect((err as LoadError).code).toBe('ERR_PEERCACHE_LOAD_FAILED')
      if (keepsCause) expect((err as LoadError).cause).toBe(cause)
    }
    expect(group.stats()).toMatchObject({ localLoadErrs: 1, localLoads: 0, main: { items: 0 } })

    // Errors are not cached: the next get runs the loader again.
    await expect(group.getString('k')).resolves.toBe('ok')
    expect(call).toBe(2)
    expect(group.stats()).toMatchObject({ localLoadErrs: 1, localLoads: 1 })
  })

  it('a loader that throws synchronously still serves all concurrent waiters from one call', async () => {
    const boom = new Error('sync')
    const loader = counting(() => {
      throw boom
    })
    const { group } = newGroup({ load: loader.load })
    const errors = await Promise.all(Array.from({ length: 10 }, () => errorOf(group.get('k'))))
    expect(loader.total()).toBe(1)
    for (const err of errors) expect((err as LoadError).cause).toBe(boom)
  })

  it('a loader throwing NotFoundError gives every waiter that NotFoundError, not wrapped', async () => {
    const notFound = new NotFoundError('no such product: k')
    const gate = deferred()
    const loader = counting(async () => {
      await gate.promise
      throw notFound
    })
    const { group } = newGroup({ load: loader.load })
    const waiters = Array.from({ length: 5 }, () => errorOf(group.get('k')))
    gate.resolve()
    for (const err of await Promise.all(waiters)) {
      expect(err).toBe(notFound)
      expect(err).not.toBeInstanceOf(LoadError)
      expect((err as NotFoundError).code).toBe('ERR_PEERCACHE_NOT_FOUND')
    }
    expect(loader.total()).toBe(1)
    await expect(group.get('k')).rejects.toBe(notFound)
    expect(loader.total()).toBe(2) // not-found is not cached either
  })
})

describe('per-caller abort', () => {
  it('one of 10 waiters aborts: it gets AbortError, the other 9 share the single load', async () => {
    const gate = deferred()
    let loaderSignal: AbortSignal | undefined
    const loader = counting(async (_key, { signal }) => {
      loaderSignal = signal
      await gate.promise
      return 'shared'
    })
    const { group } = newGroup({ load: loader.load })
    const controllers = Array.from({ length: 10 }, () => new AbortController())
    const gets = controllers.map((c) => group.getString('k', { signal: c.signal }))
    const reason = new Error('user navigated away')
    controllers[6]?.abort(reason)

    const err = await errorOf(gets[6] as Promise<string>)
    expect(err).toBeInstanceOf(AbortError)
    expect((err as AbortError).code).toBe('ERR_PEERCACHE_ABORTED')
    expect((err as AbortError).cause).toBe(reason)

    gate.resolve()
    const others = await Promise.all(gets.filter((_, i) => i !== 6))
    expect(others).toEqual(Array.from({ length: 9 }, () => 'shared'))
    expect(loader.total()).toBe(1)
    expect(loaderSignal).toBeDefined()
    expect(loaderSignal?.aborted).toBe(false)
    // The value is cached for later callers.
    await expect(group.getString('k')).resolves.toBe('shared')
    expect(loader.total()).toBe(1)
  })

  it('when every waiter aborts, the loader\'s signal aborts; the next get loads afresh', async () => {
    const started = deferred<AbortSignal>()
    let runs = 0
    const loader = counting(async (_key, { signal }) => {
      runs++
      if (runs > 1) return 'fresh'
      started.resolve(signal)
      throw await whenAborted(signal) // honours its signal
    })
    const { group } = newGroup({ load: loader.load })
    const controllers = Array.from({ length: 3 }, () => new AbortController())
    const gets = controllers.map((c) => errorOf(group.get('k', { signal: c.signal })))
    const loaderSignal = await started.promise
    for (const c of controllers) c.abort(new Error('bye'))
    for (const err of await Promise.all(gets)) expect(err).toBeInstanceOf(AbortError)
    await whenAborted(loaderSignal)
    expect(loaderSignal.aborted).toBe(true)

    await expect(group.getString('k')).resolves.toBe('fresh')
    expect(loader.total()).toBe(2)
  })

  it('an already-aborted signal rejects without loading', async () => {
    const loader = counting(() => 'v')
    const { group } = newGroup({ load: loader.load })
    const err = await errorOf(group.get('k', { signal: AbortSignal.abort('no') }))
    expect(err).toBeInstanceOf(AbortError)
    expect((err as AbortError).cause).toBe('no')
    expect(loader.total()).toBe(0)
  })
})

describe('byte budget', () => {
  it('flooding distinct keys keeps main + hot within cacheBytes; an evicted key reloads exactly once', async () => {
    const perEntry = 8 + CHUNK_100 + OVERHEAD // 8-byte key + 100-byte value, held in a slab chunk
    const cacheBytes = 10 * perEntry + 50
    const loader = counting(() => new Uint8Array(100).fill(7))
    const { group } = newGroup({ cacheBytes, load: loader.load })
    const key = (i: number): string => `key-${String(i).padStart(4, '0')}`
    for (let i = 0; i < 500; i++) {
      await group.get(key(i))
      const stats = group.stats()
      expect(stats.main.bytes + stats.hot.bytes).toBeLessThanOrEqual(cacheBytes)
    }
    const stats = group.stats()
    expect(stats.main.evictions).toBeGreaterThan(0)
    expect(stats.main.items).toBe(10)
    expect(loader.total()).toBe(500)

    // key 0 was evicted long ago: one reload, then a hit.
    expect(loader.calls.get(key(0))).toBe(1)
    await group.get(key(0))
    expect(loader.calls.get(key(0))).toBe(2)
    await group.get(key(0))
    expect(loader.calls.get(key(0))).toBe(2)
    // The newest key is still cached.
    await group.get(key(499))
    expect(loader.calls.get(key(499))).toBe(1)
  })

  it('does not double-count a key loaded and got again (groupcache TestNoDedup): sequential', async () => {
    const loader = counting(() => 'the value')
    const { group } = newGroup({ load: loader.load })
    await group.get('dup')
    await group.get('dup')
    expect(loader.total()).toBe(1)
    expect(group.stats().main).toMatchObject({ items: 1, bytes: 3 + 9 + OVERHEAD })
  })

  it('a caller arriving after flight A filled the cache, while A is still settling, adds no second entry', async () => {
    const gate = deferred()
    const loader = counting(async () => {
      await gate.promise
      return 'the value'
    })
    const { cache, group } = newGroup({ load: loader.load })
    let late: Promise<Uint8Array> | undefined
    let itemsWhenLateArrived = -1
    cache.events.on('load', ({ key }) => {
      // 'load' is emitted just before the value is stored: arrive right after.
      queueMicrotask(() => {
        itemsWhenLateArrived = group.stats().main.items
        late = group.get(key)
      })
    })
    const a = group.get('dup')
    gate.resolve()
    const first = await a
    expect(late).toBeDefined()
    expect(plain(await (late as Promise<Uint8Array>))).toEqual(plain(first))
    expect(itemsWhenLateArrived).toBe(1)
    expect(loader.total()).toBe(1)
    expect(group.stats()).toMatchObject({ gets: 2, cacheHits: 1, loads: 1, main: { items: 1, bytes: 12 + OVERHEAD } })
  })

  it('a peer request (serve) and a get of the same key share one load and one entry', async () => {
    const gate = deferred()
    const loader = counting(async () => {
      await gate.promise
      return 'the value'
    })
    const { cache, group } = newGroup({ load: loader.load })
    const owner = servedGroup(cache, 'g')
    const get = group.get('dup')
    const served = owner.serve('dup')
    gate.resolve()
    const [value, entry] = await Promise.all([get, served])
    expect(plain(value)).toEqual(plain(entry.value))
    expect(loader.total()).toBe(1)
    expect(group.stats()).toMatchObject({ serverRequests: 1, main: { items: 1, bytes: 12 + OVERHEAD } })
    await owner.serve('dup')
    expect(loader.total()).toBe(1)
  })

  it('serveCached answers a hit synchronously and counts it; a miss is undefined and serveLoad loads it once', async () => {
    const loader = counting(async () => 'v')
    const { cache, group } = newGroup({ load: loader.load })
    const owner = servedGroup(cache, 'g')
    expect(owner.serveCached('k')).toBeUndefined()
    const entry = await owner.serveLoad('k')
    expect(plain(entry.value)).toEqual(plain(new TextEncoder().encode('v')))
    expect(plain(owner.serveCached('k')!.value)).toEqual(plain(entry.value)) // from the cache (the loader ran once, below)
    expect(group.stats()).toMatchObject({ serverRequests: 2, localLoads: 1, gets: 0 })
    expect(loader.total()).toBe(1)
    await cache.close()
    expect(owner.serveCached('k')).toBeUndefined() // closed: serveLoad gives the reason
    expect(await errorOf(owner.serveLoad('k'))).toBeInstanceOf(ClosedError)
    expect(group.stats().serverRequests).toBe(2)
  })
})

describe('set and remove without peers', () => {
  it('remove drops the cached value: the next get loads again', async () => {
    const loader = counting(() => 'v')
    const { group } = newGroup({ load: loader.load })
    await group.get('k')
    await expect(group.remove('k')).resolves.toEqual({ unreachable: [] })
    expect(group.stats().main.items).toBe(0)
    await group.get('k')
    expect(loader.total()).toBe(2)
  })

  it('a load in flight during remove still answers its waiters but does not store its stale value', async () => {
    const gates = [deferred(), deferred()]
    const started = deferred()
    let call = 0
    const { group } = newGroup({
      load: async () => {
        const mine = call++
        started.resolve()
        await gates[mine]?.promise
        return `value ${mine}`
      },
    })
    const before = group.getString('k')
    await started.promise // the loader is running: its value predates the remove
    await group.remove('k')
    gates[0]?.resolve()
    await expect(before).resolves.toBe('value 0')
    expect(group.stats().main.items).toBe(0)
    const after = group.getString('k')
    gates[1]?.resolve()
    await expect(after).resolves.toBe('value 1')
    expect(call).toBe(2)
  })

  it('set stores a value that a load already in flight cannot overwrite', async () => {
    const gate = deferred()
    const started = deferred()
    const loader = counting(async () => {
      started.resolve()
      await gate.promise
      return 'loaded (older)'
    })
    const { group } = newGroup({ load: loader.load })
    const inFlight = group.getString('k')
    await started.promise // the loader is running: its value predates the set
    await group.set('k', 'written')
    gate.resolve()
    await expect(inFlight).resolves.toBe('loaded (older)')
    await expect(group.getString('k')).resolves.toBe('written')
    expect(loader.total()).toBe(1)
    expect(group.stats().main).toMatchObject({ items: 1, bytes: 1 + 7 + OVERHEAD })
  })
})

describe('stats', () => {
  it('a purely sequential workload gives exact counters: gets === cacheHits + loads', async () => {
    const loader = counting((key) => {
      if (key.startsWith('bad')) throw new Error('nope')
      return `v-${key}`
    })
    const { group } = newGroup({ load: loader.load })
    await group.get('a') // miss
    await group.get('a') // hit
    await group.get('b') // miss
    await group.get('a') // hit
    await group.get('b') // hit
    await errorOf(group.get('bad')) // miss, failed load
    await errorOf(group.get('bad')) // miss again (errors are not cached)
    const s = group.stats()
    expect(s).toMatchObject({
      gets: 7,
      cacheHits: 3,
      loads: 4,
      loadsDeduped: 4,
      localLoads: 2,
      localLoadErrs: 2,
      peerLoads: 0,
      peerErrors: 0,
      serverRequests: 0,
    })
    expect(s.gets).toBe(s.cacheHits + s.loads)
    expect(s.main.hits).toBe(s.cacheHits)
    expect(s.main.items).toBe(2)
  })

  it('concurrent gets: loads count callers, loadsDeduped counts flights, local runs add up', async () => {
    const gate = deferred()
    const loader = counting(async (key) => {
      await gate.promise
      if (key.startsWith('bad')) throw new Error('nope')
      return `v-${key}`
    })
    const { group } = newGroup({ load: loader.load })
    const keys = ['k0', 'k1', 'k2', 'k3', 'bad0', 'bad1']
    const round = (): Array<Promise<unknown>> => Array.from({ length: 120 }, (_, i) => settle(group.get(keys[i % keys.length] as string)))

    const first = round()
    gate.resolve()
    await Promise.all(first)
    let s = group.stats()
    expect(s).toMatchObject({ gets: 120, cacheHits: 0, loads: 120, loadsDeduped: 6, localLoads: 4, localLoadErrs: 2 })

    await Promise.all(round()) // good keys hit; bad keys load again (deduplicated)
    s = group.stats()
    expect(s).toMatchObject({ gets: 240, cacheHits: 80, loads: 160, loadsDeduped: 8, localLoads: 4, localLoadErrs: 4 })
    expect(loader.total()).toBe(8)

    // The relations that hold for any workload without peers.
    expect(s.gets).toBeGreaterThanOrEqual(s.loads)
    expect(s.loadsDeduped).toBeLessThanOrEqual(s.loads)
    expect(s.localLoads + s.localLoadErrs).toBe(s.loadsDeduped)
    expect(s.cacheHits + s.loads).toBeGreaterThanOrEqual(s.gets) // cacheHits may include in-flight re-check hits
    expect(loader.total()).toBe(s.localLoads + s.localLoadErrs)
  })

  it('Peercache.stats() reports every group by name', async () => {
    const cache = newCache()
    const a = cache.group({ name: 'a', cacheBytes: MiB, load: () => 'x' })
    cache.group({ name: 'b', cacheBytes: MiB, load: () => 'y' })
    await a.get('k')
    const stats = cache.stats()
    expect(Object.keys(stats).sort()).toEqual(['a', 'b'])
    expect(stats.a).toMatchObject({ gets: 1, loads: 1, localLoads: 1 })
    expect(stats.b).toMatchObject({ gets: 0 })
  })
})

describe('values', () => {
  it('get returns a copy: mutating it does not change the cached value', async () => {
    const source = new Uint8Array([1, 2, 3])
    const { group } = newGroup({ load: () => source })
    const first = await group.get('k')
    first[0] = 99
    source[1] = 99 // the loader's own array is not the cached one either
    expect(plain(await group.get('k'))).toEqual(new Uint8Array([1, 2, 3]))
  })

  it('a loader returning a Node Buffer: the cache keeps its own exact-size copy and get returns an independent copy', async () => {
    const source = Buffer.from('hello') // a view into Node's shared 8 KiB pool
    const { group } = newGroup({ load: () => source })
    const first = await group.get('k')
    first[0] = 0x58 // 'X'
    source[1] = 0x58 // the loader changing its own Buffer later
    const second = await group.get('k')
    expect(Buffer.from(second).toString()).toBe('hello')
    // The cache holds an exact-size array of its own (src/bytes.ts), not a
    // window on the loader's Buffer or on Node's 8 KiB pool.
    const stored = group.peek('k')
    expect(stored?.byteLength).toBe(5)
    expect(stored?.byteOffset).toBe(0)
    expect(stored?.buffer.byteLength).toBe(5)
    expect(group.stats().main.bytes).toBe(1 + 5 + OVERHEAD)
  })

  it('getString and getJSON decode the value; getJSON on non-JSON is an InvalidArgumentError', async () => {
    const { group } = newGroup({ load: (key) => (key === 'json' ? '{"a":[1,"ü"]}' : 'not json {') })
    await expect(group.getString('json')).resolves.toBe('{"a":[1,"ü"]}')
    await expect(group.getJSON<{ a: [number, string] }>('json')).resolves.toEqual({ a: [1, 'ü'] })
    const err = await errorOf(group.getJSON('text'))
    expect(err).toBeInstanceOf(InvalidArgumentError)
    expect((err as InvalidArgumentError).code).toBe('ERR_PEERCACHE_INVALID_ARGUMENT')
    expect((err as InvalidArgumentError).cause).toBeInstanceOf(SyntaxError)
  })

  it('stores a string loader value as UTF-8: multibyte characters round-trip', async () => {
    const text = 'héllo wörld € 𝄞 日本語 🎉'
    const { group } = newGroup({ load: () => text })
    await expect(group.getString('k')).resolves.toBe(text)
    const bytes = await group.get('k')
    expect(plain(bytes)).toEqual(bytesOf(text))
    expect(bytes.byteLength).toBe(Buffer.byteLength(text, 'utf8'))
    expect(group.stats().main.bytes).toBe(1 + Buffer.byteLength(text, 'utf8') + OVERHEAD)
  })

  it('accepts { value } results with string or bytes', async () => {
    const { group } = newGroup({ load: (key) => (key === 's' ? { value: 'str' } : { value: new Uint8Array([4, 5]) }) })
    await expect(group.getString('s')).resolves.toBe('str')
    expect(plain(await group.get('b'))).toEqual(new Uint8Array([4, 5]))
  })
})

describe('keys', () => {
  it('accepts the empty string as a key', async () => {
    const loader = counting((key) => `[${key}]`)
    const { group } = newGroup({ load: loader.load })
    await expect(group.getString('')).resolves.toBe('[]')
    expect(loader.calls.get('')).toBe(1)
  })

  it('rejects a key over maxKeyBytes (counted in UTF-8) before any load', async () => {
    const loader = counting(() => 'v')
    const { cache, group } = newGroup({ load: loader.load })
    expect(servedGroup(cache, 'g').maxKeyBytes).toBe(65536)
    const tooLong = '€'.repeat(21846) // 21,846 UTF-16 units, 65,538 UTF-8 bytes
    expect(tooLong.length).toBeLessThan(65536)
    expect(Buffer.byteLength(tooLong)).toBeGreaterThan(65536)
    const err = await errorOf(group.get(tooLong))
    expect(err).toBeInstanceOf(InvalidArgumentError)
    expect(loader.total()).toBe(0)
    expect(group.stats()).toMatchObject({ loads: 0, loadsDeduped: 0 })

    const atLimit = `${'€'.repeat(21845)}a` // exactly 65,536 bytes
    await expect(group.getString(atLimit)).resolves.toBe('v')
    expect(loader.total()).toBe(1)
  })

  it('honours a custom maxKeyBytes', async () => {
    const loader = counting(() => 'v')
    const { group } = newGroup({ load: loader.load, maxKeyBytes: 10 })
    await expect(group.getString('ééééé')).resolves.toBe('v') // 10 bytes
    await expect(group.get('éééééa')).rejects.toBeInstanceOf(InvalidArgumentError) // 11 bytes
    expect(loader.total()).toBe(1)
  })

  it('rejects a key with a lone surrogate and a key that is not a string', async () => {
    const loader = counting(() => 'v')
    const { group } = newGroup({ load: loader.load })
    await expect(group.get('abc\uD800')).rejects.toBeInstanceOf(InvalidArgumentError)
    await expect(group.get('\uDC00x')).rejects.toBeInstanceOf(InvalidArgumentError)
    for (const bad of [42, undefined, null, { toString: () => 'k' }, Symbol('k')]) {
      await expect(group.get(bad as unknown as string)).rejects.toBeInstanceOf(InvalidArgumentError)
    }
    expect(loader.total()).toBe(0)
    // A well-formed surrogate pair is fine.
    await expect(group.getString('\uD834\uDD1E')).resolves.toBe('v')
  })
})

describe('group names', () => {
  it('rejects a duplicate name; getGroup returns the group', () => {
    const cache = newCache()
    const group = cache.group({ name: 'users', cacheBytes: MiB, load: () => 'u' })
    expect(cache.getGroup('users')).toBe(group)
    expect(cache.getGroup('nope')).toBeUndefined()
    expect(() => cache.group({ name: 'users', cacheBytes: MiB, load: () => 'u' })).toThrow(InvalidArgumentError)
    expect(cache.getGroup('users')).toBe(group)
  })

  it.each([
    ['empty', ''],
    ['with a slash', 'a/b'],
    ['of 256 bytes', 'a'.repeat(256)],
    ['of 256 UTF-8 bytes in 128 characters', 'é'.repeat(128)],
    ['with a lone surrogate', 'g\uD800'],
  ])('rejects a name %s', (_label, name) => {
    const cache = newCache()
    expect(() => cache.group({ name, cacheBytes: MiB, load: () => 'x' })).toThrow(InvalidArgumentError)
    expect(cache.getGroup(name)).toBeUndefined()
  })

  it('accepts a 255-byte name', () => {
    const cache = newCache()
    const name = 'n'.repeat(255)
    const group = cache.group({ name, cacheBytes: MiB, load: () => 'x' })
    expect(group.name).toBe(name)
    expect(cache.getGroup(name)).toBe(group)
  })

  it('rejects invalid group options', () => {
    const cache = newCache()
    const load = (): string => 'x'
    expect(() => cache.group({ name: 'n1', cacheBytes: -1, load })).toThrow(InvalidArgumentError)
    expect(() => cache.group({ name: 'n2', cacheBytes: 1.5, load })).toThrow(InvalidArgumentError)
    expect(() => cache.group({ name: 'n3', cacheBytes: 10, load: 'x' as unknown as Loader })).toThrow(InvalidArgumentError)
    expect(() => cache.group({ name: 'n4', cacheBytes: 10, load, ttl: -5 })).toThrow(InvalidArgumentError)
    expect(() => cache.group({ name: 'n5', cacheBytes: 10, load, hotCacheProbability: 2 })).toThrow(InvalidArgumentError)
    expect(() => cache.group(null as unknown as GroupOptions)).toThrow(InvalidArgumentError)
    expect(() => cache.group({ name: 42, cacheBytes: 10, load } as unknown as GroupOptions)).toThrow(InvalidArgumentError)
    expect(cache.stats()).toEqual({})
  })
})

describe('cacheBytes 0', () => {
  it('loads on every sequential get, yet concurrent gets still deduplicate', async () => {
    let gate = deferred()
    const loader = counting(async () => {
      await gate.promise
      return 'v'
    })
    const { group } = newGroup({ cacheBytes: 0, load: loader.load })
    gate.resolve()
    for (let i = 0; i < 3; i++) await group.get('k')
    expect(loader.total()).toBe(3)

    gate = deferred()
    const gets = Array.from({ length: 50 }, () => group.getString('k'))
    gate.resolve()
    expect(await Promise.all(gets)).toEqual(Array.from({ length: 50 }, () => 'v'))
    expect(loader.total()).toBe(4)
    expect(group.stats().main).toMatchObject({ items: 0, bytes: 0 })
  })
})

describe('events', () => {
  it('emits hit, miss, load, load-error and evict with their payloads; "*" sees them all', async () => {
    const { cache, group } = newGroup({
      name: 'ev',
      cacheBytes: 2 * (1 + CHUNK_100 + OVERHEAD) + 50, // two 1-byte keys with 100-byte values fit, not three
      load: (key) => {
        if (key === 'bad') throw new Error('broken origin')
        return new Uint8Array(100)
      },
    })
    const seen: { [K in keyof PeercacheEvents]?: Array<PeercacheEvents[K]> } = {}
    const push = <K extends keyof PeercacheEvents>(type: K) => (payload: PeercacheEvents[K]): void => {
      const list = (seen[type] ??= []) as Array<PeercacheEvents[K]>
      list.push(payload)
    }
    cache.events.on('hit', push('hit'))
    cache.events.on('miss', push('miss'))
    cache.events.on('load', push('load'))
    cache.events.on('load-error', push('load-error'))
    cache.events.on('evict', push('evict'))
    const all: string[] = []
    cache.events.on('*', (type) => all.push(`${String(type)}`))

    await group.get('a')
    await group.get('a')
    await group.get('b')
    await group.get('c')
    await errorOf(group.get('bad'))

    expect(seen.miss).toEqual([
      { group: 'ev', key: 'a' },
      { group: 'ev', key: 'b' },
      { group: 'ev', key: 'c' },
      { group: 'ev', key: 'bad' },
    ])
    expect(seen.hit).toEqual([{ group: 'ev', key: 'a', cache: 'main' }])
    expect(seen.load).toHaveLength(3)
    for (const [i, load] of (seen.load ?? []).entries()) {
      expect(load).toMatchObject({ group: 'ev', key: ['a', 'b', 'c'][i], source: 'local' })
      expect(load.durationMs).toBeGreaterThanOrEqual(0)
      expect(Number.isFinite(load.durationMs)).toBe(true)
      expect(load.peer).toBeUndefined()
    }
    expect(seen['load-error']).toHaveLength(1)
    const loadError = seen['load-error']?.[0]
    expect(loadError).toMatchObject({ group: 'ev', key: 'bad' })
    expect(loadError?.error).toBeInstanceOf(LoadError)
    expect((loadError?.error as LoadError).cause).toEqual(new Error('broken origin'))
    expect(seen.evict).toEqual([{ group: 'ev', key: 'a', cache: 'main', bytes: 100 }])

    expect(all).toEqual(['miss', 'load', 'hit', 'miss', 'load', 'miss', 'load', 'evict', 'miss', 'load-error'])
  })

  it('stops delivering to a listener once it is removed', async () => {
    const { cache, group } = newGroup({ load: () => 'v' })
    const misses: string[] = []
    const onMiss = ({ key }: { key: string }): void => {
      misses.push(key)
    }
    cache.events.on('miss', onMiss)
    await group.get('one')
    cache.events.off('miss', onMiss)
    await group.get('two')
    expect(misses).toEqual(['one'])
  })
})

describe('TTL with an injected clock', () => {
  const t0 = 1_700_000_000_000

  it('group ttl: hit until just before expiry, reload at expiry', async () => {
    let now = t0
    const loader = counting(() => 'v')
    const { group } = newGroup({ ttl: 1000, load: loader.load }, { clock: () => now })
    await group.get('k')
    expect(loader.total()).toBe(1)
    now = t0 + 999
    await group.get('k')
    expect(loader.total()).toBe(1)
    now = t0 + 1000
    await group.get('k')
    expect(loader.total()).toBe(2)
    now = t0 + 1999 // the reload's ttl runs from t0 + 1000
    await group.get('k')
    expect(loader.total()).toBe(2)
    now = t0 + 2000
    await group.get('k')
    expect(loader.total()).toBe(3)
  })

  it('a loader result { value, ttl } overrides the group ttl', async () => {
    let now = t0
    const loader = counting(() => ({ value: 'v', ttl: 50 }))
    const { group } = newGroup({ ttl: 1000, load: loader.load }, { clock: () => now })
    await group.get('k')
    now = t0 + 49
    await group.get('k')
    expect(loader.total()).toBe(1)
    now = t0 + 50
    await group.get('k')
    expect(loader.total()).toBe(2)
  })

  it('a loader result { value, ttl: 0 } never expires, even with a group ttl', async () => {
    let now = t0
    const loader = counting(() => ({ value: 'v', ttl: 0 }))
    const { group } = newGroup({ ttl: 1000, load: loader.load }, { clock: () => now })
    await group.get('k')
    now = t0 + 365 * 24 * 3600 * 1000
    await group.get('k')
    expect(loader.total()).toBe(1)
  })

  it('a loader result { value, expiresAt } sets an absolute expiry', async () => {
    let now = t0
    const loader = counting(() => ({ value: 'v', expiresAt: t0 + 20 }))
    const { group } = newGroup({ ttl: 1000, load: loader.load }, { clock: () => now })
    await group.get('k')
    now = t0 + 19
    await group.get('k')
    expect(loader.total()).toBe(1)
    now = t0 + 20
    await group.get('k')
    expect(loader.total()).toBe(2)
  })

  it('ttlJitter takes random() * ttlJitter off the ttl', async () => {
    let now = t0
    const loader = counting(() => 'v')
    const { group } = newGroup({ ttl: 1000, ttlJitter: 100, load: loader.load }, { clock: () => now, random: () => 0.5 })
    await group.get('k') // expires at t0 + 1000 - 50
    now = t0 + 949
    await group.get('k')
    expect(loader.total()).toBe(1)
    now = t0 + 950
    await group.get('k')
    expect(loader.total()).toBe(2)
  })

  it('an invalid ttl or expiresAt from the loader is a LoadError', async () => {
    const { group } = newGroup({ load: (key) => (key === 'ttl' ? { value: 'v', ttl: -1 } : { value: 'v', expiresAt: Number.NaN }) })
    await expect(group.get('ttl')).rejects.toBeInstanceOf(LoadError)
    await expect(group.get('exp')).rejects.toBeInstanceOf(LoadError)
  })
})

describe('close', () => {
  it('is idempotent: two calls both resolve; gets and new groups after close reject with ClosedError', async () => {
    const { cache, group } = newGroup({ load: () => 'v' })
    await group.get('k')
    const first = cache.close()
    const second = cache.close()
    await expect(first).resolves.toBeUndefined()
    await expect(second).resolves.toBeUndefined()
    await expect(cache.close()).resolves.toBeUndefined()

    const err = await errorOf(group.get('k'))
    expect(err).toBeInstanceOf(ClosedError)
    expect((err as ClosedError).code).toBe('ERR_PEERCACHE_CLOSED')
    await expect(group.getString('other')).rejects.toBeInstanceOf(ClosedError)
    expect(() => cache.group({ name: 'late', cacheBytes: MiB, load: () => 'v' })).toThrow(ClosedError)
  })

  it('waits for a get in flight, which resolves; gets started after close() reject', async () => {
    const started = deferred()
    const gate = deferred()
    const { cache, group } = newGroup({
      load: async () => {
        started.resolve()
        await gate.promise
        return 'finished'
      },
    })
    const inFlight = group.getString('k')
    await started.promise
    let closed = false
    const closing = cache.close().then(() => {
      closed = true
    })
    await expect(group.get('other')).rejects.toBeInstanceOf(ClosedError)
    await flushTasks()
    expect(closed).toBe(false) // close waits for the load

    gate.resolve()
    await expect(inFlight).resolves.toBe('finished')
    await closing
    expect(closed).toBe(true)
  })

  it('after closeTimeout, a get whose loader never finishes rejects with ClosedError and the loader is aborted', async () => {
    const started = deferred<AbortSignal>()
    const { cache, group } = newGroup(
      {
        load: async (_key, { signal }) => {
          started.resolve(signal)
          throw await whenAborted(signal) // never resolves; honours its signal
        },
      },
      { deploy: { closeTimeoutMs: 50 } },
    )
    const inFlight = errorOf(group.get('k'))
    const loaderSignal = await started.promise
    await cache.close()
    const err = await inFlight
    expect(loaderSignal.aborted).toBe(true)
    expect(loaderSignal.reason).toBeInstanceOf(ClosedError)
    expect(err).toBeInstanceOf(PeercacheError)
    expect(err).toBeInstanceOf(ClosedError)
    expect((err as PeercacheError).code).toBe('ERR_PEERCACHE_CLOSED')
  })

  it('after closeTimeout, a get whose loader ignores its signal and never settles still rejects with ClosedError', async () => {
    const started = deferred()
    const { cache, group } = newGroup(
      {
        load: () => {
          started.resolve()
          return new Promise<string>(() => {}) // never settles, never reads its signal
        },
      },
      { deploy: { closeTimeoutMs: 20 } },
    )
    const inFlight = errorOf(group.get('k'))
    await started.promise
    await cache.close()
    expect(await inFlight).toBeInstanceOf(ClosedError)
  })
})

describe('logger', () => {
  /** A peer that refuses connections, so the get path has something to log. */
  const deadPeer = 'http://127.0.0.1:1'
  const self = 'http://127.0.0.1:2'

  function keyOwnedByDeadPeer(cache: Peercache): string {
    for (let i = 0; i < 1000; i++) {
      const key = `key-${i}`
      if (cache.ownerOf(key) === deadPeer) return key
    }
    throw new Error('no key owned by the dead peer')
  }

  it('accepts a pino-shaped logger and logs through it', async () => {
    const logger = { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() }
    const cache = newCache({ logger, self, peers: [self, deadPeer] })
    expect(cache.logger).toBe(logger)
    const group = cache.group({ name: 'g', cacheBytes: MiB, load: () => 'local' })
    const key = keyOwnedByDeadPeer(cache)
    await expect(group.getString(key)).resolves.toBe('local')
    expect(group.stats()).toMatchObject({ peerErrors: 1, localLoads: 1 })
    expect(logger.warn).toHaveBeenCalled()
    const [fields, message] = logger.warn.mock.calls[0] as [Record<string, unknown>, string | undefined]
    expect(typeof fields).toBe('object')
    expect(typeof message).toBe('string')
  })

  it('is silent by default: nothing reaches the console, even on failures', async () => {
    const spies = (['log', 'info', 'warn', 'error', 'debug', 'trace'] as const).map((method) =>
      vi.spyOn(console, method).mockImplementation(() => {}),
    )
    try {
      const cache = newCache({ self, peers: [self, deadPeer] })
      const group = cache.group({
        name: 'g',
        cacheBytes: MiB,
        load: (key) => {
          if (key === 'bad') throw new Error('fails')
          return 'v'
        },
      })
      await group.get('k')
      await group.get(keyOwnedByDeadPeer(cache)) // peer failure: logged, but to a no-op logger
      await errorOf(group.get('bad'))
      await cache.close()
      expect(group.stats().peerErrors).toBeGreaterThanOrEqual(1)
      for (const spy of spies) expect(spy).not.toHaveBeenCalled()
    } finally {
      for (const spy of spies) spy.mockRestore()
    }
  })
})
