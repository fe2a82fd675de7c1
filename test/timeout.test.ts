/**
 * TimeoutError (issue 11): what a caller sees when its own
 * `AbortSignal.timeout(ms)` ends its wait — as `fetch` rejects with the
 * signal's TimeoutError — for a local load and for a fetch from the owner.
 * It is an AbortError (code ERR_PEERCACHE_TIMEOUT), the signal's reason is
 * its cause, and the shared load goes on for the others.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { AbortError, Peercache, PeercacheError, TimeoutError } from '../src/index.js'
import { startCluster, type Cluster } from './helpers/cluster.js'
import { keysOwnedBy } from './helpers/features-cluster.js'

let cluster: Cluster | undefined
const caches: Peercache[] = []

afterEach(async () => {
  await cluster?.close()
  cluster = undefined
  for (const cache of caches.splice(0)) await cache.close()
})

/** gated returns a promise and the function that settles it. */
function gated(): { promise: Promise<void>; open: () => void } {
  let open!: () => void
  const promise = new Promise<void>((resolve) => (open = resolve))
  return { promise, open }
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail('expected a rejection'),
    (err: unknown) => err,
  )
}

/** expectTimeout checks the error is our TimeoutError wrapping the signal's own DOMException. */
function expectTimeout(err: unknown, signal: AbortSignal): void {
  expect(err).toBeInstanceOf(TimeoutError)
  expect(err).toBeInstanceOf(AbortError)
  expect(err).toBeInstanceOf(PeercacheError)
  expect((err as TimeoutError).code).toBe('ERR_PEERCACHE_TIMEOUT')
  expect((err as TimeoutError).name).toBe('TimeoutError')
  expect((err as TimeoutError).cause).toBe(signal.reason)
  expect((signal.reason as DOMException).name).toBe('TimeoutError')
}

describe('TimeoutError', () => {
  it('a local load outliving the caller’s AbortSignal.timeout rejects that caller with TimeoutError; the load goes on', async () => {
    const gate = gated()
    let loads = 0
    const cache = new Peercache({ env: {} })
    caches.push(cache)
    const group = cache.group({
      name: 'slow',
      cacheBytes: 1 << 20,
      load: async (key) => {
        loads++
        await gate.promise
        return `v(${key})`
      },
    })
    const patient = group.getString('k')
    const signal = AbortSignal.timeout(5)
    expectTimeout(await rejectionOf(group.getString('k', { signal })), signal)
    gate.open()
    expect(await patient).toBe('v(k)')
    expect(loads).toBe(1)
  })

  it('a signal that already timed out rejects at once with TimeoutError', async () => {
    const cache = new Peercache({ env: {} })
    caches.push(cache)
    const group = cache.group({ name: 'g', cacheBytes: 1 << 20, load: (key) => key })
    const signal = AbortSignal.timeout(1)
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
    expectTimeout(await rejectionOf(group.get('k', { signal })), signal)
    expect(group.stats().localLoads).toBe(0)
  })

  it('a fetch from a slow owner rejects the caller with TimeoutError, not a peer error', async () => {
    const gate = gated()
    const c = await startCluster(2, ({ cache, track }) => {
      cache.group({
        name: 'kv',
        cacheBytes: 1 << 20,
        load: track(async (key) => {
          await gate.promise
          return `v(${key})`
        }),
      })
    })
    cluster = c
    const [key] = keysOwnedBy(c, 1, 1, 'remote') as [string]
    const signal = AbortSignal.timeout(20)
    const err = await rejectionOf(c.group(0).get(key, { signal }))
    gate.open()
    expectTimeout(err, signal)
    // The caller's own timeout says nothing about the owner: no peer error, no local load.
    expect(c.group(0).stats().peerErrors).toBe(0)
    expect(c.loads[0]!.get(key)).toBeUndefined()
  })

  it('any other abort stays a plain AbortError', async () => {
    const cache = new Peercache({ env: {} })
    caches.push(cache)
    const group = cache.group({ name: 'g', cacheBytes: 1 << 20, load: () => new Promise<string>(() => {}) })
    const controller = new AbortController()
    const pending = group.get('k', { signal: controller.signal })
    controller.abort(new Error('user left'))
    const err = await rejectionOf(pending)
    expect(err).toBeInstanceOf(AbortError)
    expect(err).not.toBeInstanceOf(TimeoutError)
    expect((err as AbortError).code).toBe('ERR_PEERCACHE_ABORTED')
  })
})
