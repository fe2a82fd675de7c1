/**
 * Event listeners cannot hurt the cache (issue 11): a listener that throws,
 * or an async one that rejects, never breaks a get, a load or a cached
 * value; its error is logged and the other listeners still run.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { ENTRY_OVERHEAD_BYTES, NotFoundError, Peercache, type Logger } from '../src/index.js'
import { chunkBytes } from '../src/slab.js'

const caches: Peercache[] = []

afterEach(async () => {
  for (const cache of caches.splice(0)) await cache.close()
})

interface LoggedError {
  fields: Record<string, unknown>
  message: string | undefined
}

/** recordingLogger keeps every error-level line. */
function recordingLogger(errors: LoggedError[]): Logger {
  const noop = (): void => {}
  return { debug: noop, info: noop, warn: noop, error: (fields, message) => void errors.push({ fields, message }) }
}

function loader(key: string): string {
  if (key.startsWith('missing')) throw new NotFoundError(`no ${key}`)
  return `${key}:`.padEnd(100, '.')
}

describe('a listener that throws', () => {
  it('breaks no get, no load and no cached value; the error is logged and later listeners still run', async () => {
    const errors: LoggedError[] = []
    const cache = new Peercache({ env: {}, logger: recordingLogger(errors) })
    caches.push(cache)
    // 100-byte values in a budget of 6 entries (each counts its overhead too): later gets evict earlier keys.
    const group = cache.group({ name: 'g', cacheBytes: 6 * (2 + (chunkBytes(100) as number) + ENTRY_OVERHEAD_BYTES), load: loader })
    const seen: string[] = []
    for (const type of ['hit', 'miss', 'load', 'load-error', 'evict'] as const) {
      cache.events.on(type, () => {
        throw new Error(`listener of ${type} failed`)
      })
      cache.events.on(type, () => void seen.push(type))
    }
    cache.events.on('*', () => {
      throw new Error('wildcard listener failed')
    })

    expect(await group.getString('a')).toBe(loader('a')) // miss + load
    expect(await group.getString('a')).toBe(loader('a')) // hit
    await expect(group.get('missing-1')).rejects.toBeInstanceOf(NotFoundError) // the loader's error, not a listener's
    for (let i = 0; i < 10; i++) expect(await group.getString(`k${i}`)).toBe(loader(`k${i}`)) // evictions

    const stats = group.stats()
    expect(stats.localLoads).toBe(11)
    expect(stats.main.evictions).toBeGreaterThan(0)
    // The cache still holds what it should: the last key is a hit, served unchanged.
    expect(group.peek('k9')).toBeDefined()
    expect(await group.getString('k9')).toBe(loader('k9'))
    expect(group.stats().localLoads).toBe(11)

    expect(new Set(seen)).toEqual(new Set(['hit', 'miss', 'load', 'load-error', 'evict']))
    const events = new Set(errors.map((e) => e.fields.event))
    expect(events).toEqual(new Set(['hit', 'miss', 'load', 'load-error', 'evict']))
    expect(errors.every((e) => e.fields.err instanceof Error && e.message === 'peercache event listener failed')).toBe(true)
    expect(errors.some((e) => (e.fields.err as Error).message === 'wildcard listener failed')).toBe(true)
  })

  it('an async listener that rejects is logged, not left as an unhandled rejection', async () => {
    const errors: LoggedError[] = []
    const cache = new Peercache({ env: {}, logger: recordingLogger(errors) })
    caches.push(cache)
    const group = cache.group({ name: 'g', cacheBytes: 1 << 20, load: loader })
    const logged = new Promise<void>((resolve) => {
      cache.events.on('load', async () => {
        await Promise.resolve()
        queueMicrotask(resolve)
        throw new Error('async listener failed')
      })
    })
    expect(await group.getString('a')).toBe(loader('a'))
    await logged
    await Promise.resolve()
    expect(errors.map((e) => [(e.fields.err as Error).message, e.fields.event])).toEqual([['async listener failed', 'load']])
  })
})
