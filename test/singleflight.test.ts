import { getEventListeners } from 'node:events'
import { describe, it, expect } from 'vitest'
import { AbortError, PeercacheError } from '../src/errors.js'
import { Singleflight, abortable, toAbortError, type FlightContext } from '../src/singleflight.js'
import { deferred, flushTasks, settle, whenAborted, type Deferred } from './helpers/core-helpers.js'

describe('Singleflight', () => {
  it('runs fn once for 1,000 concurrent callers of one key and shares the result', async () => {
    const sf = new Singleflight<{ n: number }>()
    const gate = deferred()
    let calls = 0
    const fn = async (): Promise<{ n: number }> => {
      calls++
      await gate.promise
      return { n: 42 }
    }
    const waiters = Array.from({ length: 1000 }, () => sf.do('k', fn))
    expect(sf.size).toBe(1)
    gate.resolve()
    const results = await Promise.all(waiters)
    expect(calls).toBe(1)
    const first = results[0]
    expect(first).toEqual({ n: 42 })
    for (const result of results) expect(result).toBe(first)
    expect(sf.size).toBe(0)
  })

  it('keeps flights of different keys apart', async () => {
    const sf = new Singleflight<string>()
    const calls: string[] = []
    const run = (key: string) => sf.do(key, async () => {
      calls.push(key)
      return `v-${key}`
    })
    const results = await Promise.all([run('a'), run('b'), run('a'), run('b')])
    expect(results).toEqual(['v-a', 'v-b', 'v-a', 'v-b'])
    expect(calls.sort()).toEqual(['a', 'b'])
  })

  it('rejects the caller when fn throws synchronously, and does not wedge the key', async () => {
    const sf = new Singleflight<string>()
    const boom = new Error('sync boom')
    let calls = 0
    const throwing = (): Promise<string> => {
      calls++
      throw boom
    }
    const outcomes = await Promise.all(Array.from({ length: 10 }, () => settle(sf.do('k', throwing))))
    for (const outcome of outcomes) expect(outcome).toEqual({ ok: false, error: boom })
    expect(calls).toBeGreaterThanOrEqual(1)
    expect(sf.size).toBe(0)

    const before = calls
    await expect(sf.do('k', async () => 'recovered')).resolves.toBe('recovered')
    expect(calls).toBe(before) // the new fn ran, not the old one
    expect(sf.size).toBe(0)
  })

  it('rejects every waiter with the error when fn rejects, and the next do runs fn again', async () => {
    const sf = new Singleflight<string>()
    const boom = new Error('async boom')
    const gate = deferred()
    let calls = 0
    const failing = async (): Promise<string> => {
      calls++
      await gate.promise
      throw boom
    }
    const waiters = Array.from({ length: 10 }, () => settle(sf.do('k', failing)))
    gate.resolve()
    const outcomes = await Promise.all(waiters)
    expect(calls).toBe(1)
    for (const outcome of outcomes) expect(outcome).toEqual({ ok: false, error: boom })
    expect(sf.size).toBe(0)

    let secondCalls = 0
    await expect(sf.do('k', async () => {
      secondCalls++
      return 'fresh'
    })).resolves.toBe('fresh')
    expect(secondCalls).toBe(1)
  })

  it('ends only the aborting caller\'s wait; the other 9 share the one run and fn\'s signal stays live', async () => {
    const sf = new Singleflight<string>()
    const gate = deferred()
    let calls = 0
    let fnCtx: FlightContext | undefined
    const fn = async (ctx: FlightContext): Promise<string> => {
      calls++
      fnCtx = ctx
      await gate.promise
      return 'shared'
    }
    const controllers = Array.from({ length: 10 }, () => new AbortController())
    const waiters = controllers.map((c) => sf.do('k', fn, c.signal))
    const reason = new Error('caller 3 gave up')
    controllers[3]?.abort(reason)

    const aborted = await settle(waiters[3] as Promise<string>)
    expect(aborted.ok).toBe(false)
    const err = (aborted as { error: unknown }).error
    expect(err).toBeInstanceOf(AbortError)
    expect(err).toBeInstanceOf(PeercacheError)
    expect((err as AbortError).code).toBe('ERR_PEERCACHE_ABORTED')
    expect((err as AbortError).cause).toBe(reason)

    // The aborted caller left before the shared run finished.
    expect(fnCtx?.signal.aborted).toBe(false)
    gate.resolve()
    const others = await Promise.all(waiters.filter((_, i) => i !== 3))
    expect(others).toEqual(Array.from({ length: 9 }, () => 'shared'))
    expect(calls).toBe(1)
    expect(fnCtx?.signal.aborted).toBe(false)
    expect(sf.size).toBe(0)
  })

  it('a caller without a signal keeps the flight alive when every signalled caller aborts', async () => {
    const sf = new Singleflight<string>()
    const gate = deferred()
    let fnSignal: AbortSignal | undefined
    const fn = async (ctx: FlightContext): Promise<string> => {
      fnSignal = ctx.signal
      await gate.promise
      return 'kept'
    }
    const patient = sf.do('k', fn)
    const controller = new AbortController()
    const impatient = sf.do('k', fn, controller.signal)
    controller.abort('bored')
    await expect(impatient).rejects.toBeInstanceOf(AbortError)
    await flushTasks()
    expect(fnSignal?.aborted).toBe(false)
    gate.resolve()
    await expect(patient).resolves.toBe('kept')
  })

  it('aborts fn\'s signal when every waiter aborts, and a later caller starts a fresh run', async () => {
    const sf = new Singleflight<string>()
    const runs: Array<{ ctx: FlightContext; gate: Deferred<string> }> = []
    const fn = (ctx: FlightContext): Promise<string> => {
      const gate = deferred<string>()
      runs.push({ ctx, gate })
      return gate.promise
    }
    const controllers = Array.from({ length: 5 }, () => new AbortController())
    const waiters = controllers.map((c) => settle(sf.do('k', fn, c.signal)))
    expect(runs).toHaveLength(1)
    for (const c of controllers) c.abort(new Error('leaving'))
    const outcomes = await Promise.all(waiters)
    for (const outcome of outcomes) {
      expect(outcome.ok).toBe(false)
      expect((outcome as { error: unknown }).error).toBeInstanceOf(AbortError)
    }
    const first = runs[0]
    if (first === undefined) throw new Error('fn never ran')
    const reason = await whenAborted(first.ctx.signal)
    expect(first.ctx.signal.aborted).toBe(true)
    expect(reason).toBeInstanceOf(AbortError)
    expect(sf.size).toBe(0)

    // A new caller must not join the aborted run.
    const fresh = sf.do('k', fn)
    expect(runs).toHaveLength(2)
    const second = runs[1]
    if (second === undefined) throw new Error('fresh run missing')
    expect(second.ctx.signal.aborted).toBe(false)
    expect(second.ctx.isCurrent()).toBe(true)

    // The abandoned run settling late must not disturb the fresh one.
    first.gate.resolve('stale')
    await flushTasks()
    expect(sf.size).toBe(1)
    expect(second.ctx.isCurrent()).toBe(true)
    second.gate.resolve('fresh')
    await expect(fresh).resolves.toBe('fresh')
    expect(sf.size).toBe(0)
  })

  it('rejects at once, without running fn, when the signal is already aborted', async () => {
    const sf = new Singleflight<string>()
    const controller = new AbortController()
    const reason = new Error('too late')
    controller.abort(reason)
    let calls = 0
    const err = await sf.do('k', async () => {
      calls++
      return 'never'
    }, controller.signal).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(AbortError)
    expect((err as AbortError).code).toBe('ERR_PEERCACHE_ABORTED')
    expect((err as AbortError).cause).toBe(reason)
    expect(calls).toBe(0)
    expect(sf.size).toBe(0)
  })

  it('forgetAll() while running: every flight is detached (stale), its waiters still get its result', async () => {
    const sf = new Singleflight<string>()
    const gates = new Map<string, Deferred<string>>()
    const contexts = new Map<string, FlightContext>()
    const fn = (key: string) => (ctx: FlightContext): Promise<string> => {
      const gate = deferred<string>()
      gates.set(key, gate)
      contexts.set(key, ctx)
      return gate.promise
    }
    const waiters = ['a', 'b'].map((key) => sf.do(key, fn(key)))
    sf.forgetAll()
    expect(sf.size).toBe(0)
    expect([...contexts.values()].map((ctx) => ctx.isCurrent())).toEqual([false, false])
    // A new caller starts afresh.
    const again = sf.do('a', fn('a2'))
    expect(sf.size).toBe(1)
    gates.get('a')!.resolve('old a')
    gates.get('b')!.resolve('old b')
    gates.get('a2')!.resolve('new a')
    expect(await Promise.all([...waiters, again])).toEqual(['old a', 'old b', 'new a'])
  })

  it('forget(key) while running: the next caller starts a new flight; isCurrent() tells old from new', async () => {
    const sf = new Singleflight<string>()
    const runs: Array<{ ctx: FlightContext; gate: Deferred<string> }> = []
    const fn = (ctx: FlightContext): Promise<string> => {
      const gate = deferred<string>()
      runs.push({ ctx, gate })
      return gate.promise
    }
    const oldWaiter = sf.do('k', fn)
    const old = runs[0]
    if (old === undefined) throw new Error('fn never ran')
    expect(old.ctx.isCurrent()).toBe(true)

    sf.forget('k')
    expect(old.ctx.isCurrent()).toBe(false)
    expect(sf.size).toBe(0)

    const newWaiter = sf.do('k', fn)
    expect(runs).toHaveLength(2)
    const fresh = runs[1]
    if (fresh === undefined) throw new Error('new flight missing')
    expect(fresh.ctx.isCurrent()).toBe(true)
    expect(old.ctx.isCurrent()).toBe(false)

    // The old flight finishing must not remove the new one.
    old.gate.resolve('old')
    await expect(oldWaiter).resolves.toBe('old')
    expect(sf.size).toBe(1)
    expect(fresh.ctx.isCurrent()).toBe(true)

    fresh.gate.resolve('new')
    await expect(newWaiter).resolves.toBe('new')
    expect(sf.size).toBe(0)
  })

  it('abortAll(reason) aborts every running fn\'s signal with that reason', async () => {
    const sf = new Singleflight<string>()
    const signals: AbortSignal[] = []
    const honouring = (ctx: FlightContext): Promise<string> => {
      signals.push(ctx.signal)
      return whenAborted(ctx.signal).then((why) => {
        throw why
      })
    }
    const waiters = ['a', 'b', 'c'].map((key) => settle(sf.do(key, honouring)))
    expect(sf.size).toBe(3)
    const reason = new Error('shutting down')
    sf.abortAll(reason)
    expect(sf.size).toBe(0)
    expect(signals).toHaveLength(3)
    for (const signal of signals) {
      expect(signal.aborted).toBe(true)
      expect(signal.reason).toBe(reason)
    }
    for (const outcome of await Promise.all(waiters)) expect(outcome).toEqual({ ok: false, error: reason })
  })

  it('drain() resolves only after every flight in progress has settled', async () => {
    const sf = new Singleflight<string>()
    await sf.drain() // nothing in flight: resolves

    const gateA = deferred<string>()
    const gateB = deferred<string>()
    const a = settle(sf.do('a', () => gateA.promise))
    const b = settle(sf.do('b', () => gateB.promise))
    let drained = false
    const draining = sf.drain().then(() => {
      drained = true
    })

    gateA.resolve('A')
    await a
    await flushTasks()
    expect(drained).toBe(false)
    expect(sf.size).toBe(1)

    gateB.reject(new Error('B failed')) // a rejected flight counts as settled
    await draining
    expect(drained).toBe(true)
    expect(sf.size).toBe(0)
    expect(await b).toEqual({ ok: false, error: new Error('B failed') })
  })

  it('removes its abort listener from a long-lived signal once each wait ends', async () => {
    const sf = new Singleflight<number>()
    const controller = new AbortController()
    for (let i = 0; i < 100; i++) {
      await sf.do(`k${i % 3}`, async () => i, controller.signal)
    }
    const gate = deferred<number>()
    const pending = sf.do('slow', () => gate.promise, controller.signal)
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1)
    gate.resolve(7)
    await expect(pending).resolves.toBe(7)
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0)
  })
})

describe('Singleflight: the lazy signal', () => {
  it('abortAll releases every waiter at once, even when fn ignores its signal and never settles', async () => {
    const sf = new Singleflight<string>()
    const reason = new Error('closing')
    let ctxSeen: FlightContext | undefined
    const waiters = Array.from({ length: 5 }, () =>
      settle(sf.do('k', (ctx) => {
        ctxSeen = ctx
        return new Promise<string>(() => {}) // never settles, never looks at the signal
      })),
    )
    sf.abortAll(reason)
    const outcomes = await Promise.all(waiters)
    for (const outcome of outcomes) expect(outcome).toEqual({ ok: false, error: reason })
    // Read only now, the signal is made already aborted, with the reason.
    expect(ctxSeen?.aborted).toBe(true)
    expect(ctxSeen?.reason).toBe(reason)
    expect(ctxSeen?.signal.aborted).toBe(true)
    expect(ctxSeen?.signal.reason).toBe(reason)
    expect(sf.size).toBe(0)
  })

  it('abandonSignal is undefined when the first caller has no signal (nothing but abortAll can end the flight)', async () => {
    const sf = new Singleflight<string>()
    const gate = deferred<string>()
    let ctxSeen: FlightContext | undefined
    const fn = (ctx: FlightContext): Promise<string> => {
      ctxSeen = ctx
      return gate.promise
    }
    const plain = sf.do('k', fn)
    const controller = new AbortController()
    const signalled = settle(sf.do('k', fn, controller.signal))
    expect(ctxSeen?.abandonSignal).toBeUndefined()
    controller.abort('bye')
    expect((await signalled).ok).toBe(false)
    expect(ctxSeen?.aborted).toBe(false) // the first caller still waits
    gate.resolve('v')
    await expect(plain).resolves.toBe('v')
  })

  it('abandonSignal is the flight signal when the first caller has one: it aborts once every caller left', async () => {
    const sf = new Singleflight<string>()
    let ctxSeen: FlightContext | undefined
    const a = new AbortController()
    const b = new AbortController()
    const fn = (ctx: FlightContext): Promise<string> => {
      ctxSeen = ctx
      return new Promise<string>(() => {})
    }
    const first = settle(sf.do('k', fn, a.signal))
    const second = settle(sf.do('k', fn, b.signal))
    const abandon = ctxSeen?.abandonSignal
    expect(abandon).toBeInstanceOf(AbortSignal)
    expect(abandon).toBe(ctxSeen?.signal)
    a.abort('a left')
    await first
    expect(abandon?.aborted).toBe(false)
    b.abort('b left')
    await second
    await expect(whenAborted(abandon as AbortSignal)).resolves.toBeInstanceOf(AbortError)
    expect(sf.size).toBe(0)
  })
})

describe('abortable / toAbortError', () => {
  it('wraps a reason as AbortError with the reason as cause, and passes an AbortError through', async () => {
    const reason = new Error('why')
    const wrapped = toAbortError(reason)
    expect(wrapped).toBeInstanceOf(AbortError)
    expect(wrapped.cause).toBe(reason)
    expect(wrapped.message).toContain('why')
    const already = new AbortError('mine')
    expect(toAbortError(already)).toBe(already)

    const controller = new AbortController()
    const never = new Promise<string>(() => {})
    const racing = abortable(never, controller.signal)
    controller.abort('stop')
    const err = await racing.then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(AbortError)
    expect((err as AbortError).cause).toBe('stop')
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0)
  })
})
