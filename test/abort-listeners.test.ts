/**
 * One abort listener per signal, however many keys wait on it: getMany(keys,
 * { signal }) over 20 local keys used to add one listener per key to the
 * caller's signal (MaxListenersExceededWarning past 10). Waiters on one
 * signal now share one listener per Singleflight (abort-fanout.ts), removed
 * once the last of them settles; an abort still rejects every one of them.
 */
import { getEventListeners } from 'node:events'
import { afterEach, describe, expect, it } from 'vitest'
import { AbortError, Peercache } from '../src/index.js'
import { deferred } from './helpers/core-helpers.js'

const caches: Peercache[] = []

afterEach(async () => {
  for (const cache of caches.splice(0)) await cache.close()
})

/** slowGroup is a standalone group whose loader waits for `release` (every key is local). */
function slowGroup(release: Promise<void>, started: () => void) {
  const cache = new Peercache({ env: {} })
  caches.push(cache)
  return cache.group({
    name: 'kv',
    cacheBytes: 1 << 20,
    load: async (key) => {
      started()
      await release
      return `v(${key})`
    },
  })
}

const KEYS = Array.from({ length: 20 }, (_, i) => `k${i}`)

describe('abort listeners of getMany', () => {
  it('20 local keys waiting on one signal add one listener to it, and none is left once they settle', async () => {
    const release = deferred()
    let started = 0
    const allStarted = deferred()
    const group = slowGroup(release.promise, () => ++started === KEYS.length && allStarted.resolve())
    const warnings: Error[] = []
    const onWarning = (warning: Error): number => warnings.push(warning)
    process.on('warning', onWarning)
    try {
      const controller = new AbortController()
      const pending = group.getMany(KEYS, { signal: controller.signal })
      await allStarted.promise
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1)
      release.resolve()
      const found = await pending
      expect([...found.keys()]).toEqual(KEYS)
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0)
      await new Promise((resolve) => setImmediate(resolve))
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([])
    } finally {
      release.resolve()
      process.off('warning', onWarning)
    }
  })

  it('an abort still rejects every waiting key with AbortError, and removes the listener', async () => {
    const release = deferred()
    let started = 0
    const allStarted = deferred()
    const group = slowGroup(release.promise, () => ++started === KEYS.length && allStarted.resolve())
    const controller = new AbortController()
    const pending = group.getManySettled(KEYS, { signal: controller.signal })
    await allStarted.promise
    controller.abort(new Error('caller gave up'))
    const settled = await pending
    expect([...settled.values()].map((r) => (r.status === 'rejected' ? r.reason instanceof AbortError : 'fulfilled'))).toEqual(KEYS.map(() => true))
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0)
    release.resolve()
  })
})
