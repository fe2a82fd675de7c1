/**
 * Tracing (issue 11): diagnostics_channel TracingChannels `peercache:get`,
 * `peercache:load`, `peercache:fetch` and `peercache:serve` publish
 * start/end/asyncStart/asyncEnd (and error) in order, with group, key,
 * source and peer in their context, so a tracer can make nested spans; the
 * headers a subscriber puts in a fetch's context travel to the owner's
 * serve (signed requests still verify); with no subscriber nothing is
 * traced at all.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import diagnostics from 'node:diagnostics_channel'
import { afterEach, describe, expect, it } from 'vitest'
import { LoadError, NotFoundError, Peercache } from '../src/index.js'
import { TRACING_CHANNELS } from '../src/tracing.js'
import { startCluster, type Cluster } from './helpers/cluster.js'
import { keysOwnedBy } from './helpers/features-cluster.js'

type Phase = 'start' | 'end' | 'asyncStart' | 'asyncEnd' | 'error'
const PHASES: readonly Phase[] = ['start', 'end', 'asyncStart', 'asyncEnd', 'error']

interface Seen {
  channel: keyof typeof TRACING_CHANNELS
  phase: Phase
  context: Record<string, unknown>
}

let cluster: Cluster | undefined
const caches: Peercache[] = []
const cleanups: Array<() => void> = []

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup()
  await cluster?.close()
  cluster = undefined
  for (const cache of caches.splice(0)) await cache.close()
})

/** record subscribes to every phase of the four channels, keeping the events of `group` (unsubscribed after the test). */
function record(group: string): Seen[] {
  const seen: Seen[] = []
  for (const channel of ['get', 'load', 'fetch', 'serve'] as const) {
    const tracing = diagnostics.tracingChannel(TRACING_CHANNELS[channel])
    const subscribers = Object.fromEntries(
      PHASES.map((phase) => [
        phase,
        (message: unknown) => {
          const context = message as Record<string, unknown>
          if (context.group === group) seen.push({ channel, phase, context: { ...context } })
        },
      ]),
    ) as unknown as Parameters<typeof tracing.subscribe>[0]
    tracing.subscribe(subscribers)
    cleanups.push(() => tracing.unsubscribe(subscribers))
  }
  return seen
}

/** countTraces counts the calls of TracingChannel#tracePromise, on any channel, until the test ends. */
function countTraces(): () => number {
  const prototype = Object.getPrototypeOf(diagnostics.tracingChannel(TRACING_CHANNELS.get)) as { tracePromise: (...args: unknown[]) => unknown }
  const original = prototype.tracePromise
  let calls = 0
  prototype.tracePromise = function (this: unknown, ...args: unknown[]) {
    calls++
    return original.apply(this, args)
  }
  cleanups.push(() => (prototype.tracePromise = original))
  return () => calls
}

/** traceparentOf is a W3C traceparent made from key, so each fetch's is its own. */
function traceparentOf(key: string): string {
  const hex = Buffer.from(key.padEnd(16, '.').slice(0, 16)).toString('hex')
  return `00-${hex}-${hex.slice(0, 16)}-01`
}

function steps(seen: readonly Seen[]): string[] {
  return seen.map((s) => `${s.channel}:${s.phase}`)
}

function standalone(group: string, load: (key: string) => string | Promise<string>): Peercache {
  const cache = new Peercache({ env: {} })
  caches.push(cache)
  cache.group({ name: group, cacheBytes: 1 << 20, load })
  return cache
}

describe('tracing channels', () => {
  it('a miss: the get wraps the local load, each start/end/asyncStart/asyncEnd in order, with group, key and source', async () => {
    const seen = record('traced-miss')
    const cache = standalone('traced-miss', (key) => `v(${key})`)
    expect(await cache.getGroup('traced-miss')!.getString('a')).toBe('v(a)')
    // The loader starts within the get's synchronous part: its span nests inside.
    expect(steps(seen)).toEqual([
      'get:start',
      'load:start',
      'load:end',
      'get:end',
      'load:asyncStart',
      'load:asyncEnd',
      'get:asyncStart',
      'get:asyncEnd',
    ])
    expect(seen[0]!.context).toEqual({ group: 'traced-miss', key: 'a' })
    expect(seen[1]!.context).toEqual({ group: 'traced-miss', key: 'a', source: 'local' })
    expect(Buffer.from(seen[5]!.context.result as Uint8Array).toString('utf8')).toBe('v(a)') // the loader's value
    expect(seen[7]!.context.result).toBe('v(a)') // what the caller got
  })

  it('a hit: only the get, with its result', async () => {
    const cache = standalone('traced-hit', (key) => `v(${key})`)
    const group = cache.getGroup('traced-hit')!
    await group.get('a')
    const seen = record('traced-hit')
    expect((await group.get('a')).toString('utf8')).toBe('v(a)')
    expect(steps(seen)).toEqual(['get:start', 'get:end', 'get:asyncStart', 'get:asyncEnd'])
  })

  it('a failing load: error before asyncStart/asyncEnd, on the load and on the get', async () => {
    const seen = record('traced-error')
    const cache = standalone('traced-error', (key) => {
      if (key === 'gone') throw new NotFoundError('no gone')
      throw new Error('database down')
    })
    const group = cache.getGroup('traced-error')!
    await expect(group.get('boom')).rejects.toBeInstanceOf(LoadError)
    expect(steps(seen)).toEqual([
      'get:start',
      'load:start',
      'load:end',
      'get:end',
      'load:error',
      'load:asyncStart',
      'load:asyncEnd',
      'get:error',
      'get:asyncStart',
      'get:asyncEnd',
    ])
    expect((seen[4]!.context.error as Error).message).toBe('database down') // the loader's own error
    expect(seen[7]!.context.error).toBeInstanceOf(LoadError) // what the caller got
  })

  it('a remote key: the get wraps a fetch carrying the owner, and the owner traces its local load', async () => {
    const seen = record('kv')
    const c = await startCluster(2, ({ cache }) => void cache.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => `v(${key})` }))
    cluster = c
    const [key] = keysOwnedBy(c, 1, 1, 'remote') as [string]
    expect(await c.group(0).getString(key)).toBe(`v(${key})`)
    const fetches = seen.filter((s) => s.channel === 'fetch')
    expect(fetches.map((s) => s.phase)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd'])
    expect(fetches[0]!.context).toEqual({ group: 'kv', key, source: 'peer', peer: c.urls[1], headers: {} })
    // The owner answered inside its serve, around its load; nobody filled the headers, so no trace context came.
    const serves = seen.filter((s) => s.channel === 'serve')
    expect(serves.map((s) => s.phase)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd'])
    expect(serves[0]!.context).toEqual({ group: 'kv', key, keys: 1, traceparent: undefined, tracestate: undefined })
    // The owner (member 1, same process) ran its loader to answer: a local load span, inside the asker's fetch.
    const order = steps(seen)
    expect(order.indexOf('load:start')).toBeGreaterThan(order.indexOf('serve:start'))
    expect(order.indexOf('serve:start')).toBeGreaterThan(order.indexOf('fetch:start'))
    expect(order.indexOf('load:asyncEnd')).toBeLessThan(order.indexOf('serve:asyncEnd'))
    expect(order.indexOf('load:asyncEnd')).toBeLessThan(order.indexOf('fetch:asyncEnd'))
    expect(order[0]).toBe('get:start')
    expect(order.at(-1)).toBe('get:asyncEnd')
  })

  it('the headers a subscriber puts in a fetch’s context reach the owner’s serve, alone or batched, signed requests verifying', async () => {
    const fetch = diagnostics.tracingChannel(TRACING_CHANNELS.fetch)
    const fill = {
      start: (message: unknown) => {
        const context = message as { key: string; headers: Record<string, string> }
        context.headers.traceparent = traceparentOf(context.key)
        context.headers.tracestate = `peercache=${context.key}`
      },
    } as unknown as Parameters<typeof fetch.subscribe>[0]
    fetch.subscribe(fill)
    cleanups.push(() => fetch.unsubscribe(fill))
    const seen = record('kv')
    const c = await startCluster(2, ({ cache }) => void cache.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => `v(${key})` }), {
      options: { secret: 'a shared secret of the test cluster' },
    })
    cluster = c
    const [alone, ...batched] = keysOwnedBy(c, 1, 4, 'carried') as [string, ...string[]]
    expect(await c.group(0).getString(alone)).toBe(`v(${alone})`)
    // Three gets of one tick share one batch, which carries its first get's headers.
    expect(await Promise.all(batched.map((key) => c.group(0).getString(key)))).toEqual(batched.map((key) => `v(${key})`))
    const serves = seen.filter((s) => s.channel === 'serve' && s.phase === 'start').map((s) => s.context)
    expect(serves).toEqual([
      { group: 'kv', key: alone, keys: 1, traceparent: traceparentOf(alone), tracestate: `peercache=${alone}` },
      { group: 'kv', key: undefined, keys: 3, traceparent: traceparentOf(batched[0]!), tracestate: `peercache=${batched[0]}` },
    ])
    // The batch's misses were loaded inside its serve.
    const all = steps(seen.filter((s) => s.channel === 'serve' || s.channel === 'load'))
    const batch = all.slice(all.lastIndexOf('serve:start'))
    expect(batch.filter((step) => step === 'load:start' || step === 'load:asyncEnd')).toEqual([...Array(3).fill('load:start'), ...Array(3).fill('load:asyncEnd')])
    expect(batch.at(-1)).toBe('serve:asyncEnd')
    expect(c.caches[0]!.stats().kv!.peerLoads).toBe(4)
  })

  it('a store bound to start is the loader’s current context, so spans nest', async () => {
    const store = new AsyncLocalStorage<Record<string, unknown>>()
    const load = diagnostics.tracingChannel(TRACING_CHANNELS.load)
    load.start.bindStore(store, (context) => context as Record<string, unknown>)
    cleanups.push(() => load.start.unbindStore(store))
    let inside: Record<string, unknown> | undefined
    const cache = standalone('traced-store', async (key) => {
      await Promise.resolve()
      inside = store.getStore()
      return key
    })
    await cache.getGroup('traced-store')!.get('k')
    expect(inside).toMatchObject({ group: 'traced-store', key: 'k', source: 'local' })
  })

  it('traces nothing while nobody subscribes', async () => {
    const calls = countTraces()
    const cache = standalone('untraced', (key) => key)
    const group = cache.getGroup('untraced')!
    for (const channel of Object.values(TRACING_CHANNELS)) expect(diagnostics.tracingChannel(channel).hasSubscribers).toBe(false)
    await group.get('a')
    await group.get('a')
    expect(calls()).toBe(0)
    record('untraced')
    await group.get('b')
    expect(calls()).toBe(2) // the get and its load
  })

  it('traces nothing on either side of a remote get while nobody subscribes, then the four channels once someone does', async () => {
    const calls = countTraces()
    const c = await startCluster(2, ({ cache }) => void cache.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => `v(${key})` }))
    cluster = c
    const [first, second] = keysOwnedBy(c, 1, 2, 'untraced') as [string, string]
    expect(await c.group(0).getString(first)).toBe(`v(${first})`)
    expect(calls()).toBe(0)
    record('kv')
    expect(await c.group(0).getString(second)).toBe(`v(${second})`)
    expect(calls()).toBe(4) // the get, its fetch, the owner's serve and its load
  })
})
