import { describe, expect, it } from 'vitest'
import { HotAdmission } from '../src/group/admission.js'
import { CachePair, type CacheEntry } from '../src/cache.js'
import { HALF_LIFE_MS, RequestRate } from '../src/group/rate.js'
import { FrequencySketch, hashKey } from '../src/group/sketch.js'
import { mulberry32 } from './helpers/core-helpers.js'

/** payload counts key + value bytes only, so the budget below adds up by hand. */
function payload(e: CacheEntry, key: string): number {
  return Buffer.byteLength(key, 'utf8') + e.value.byteLength
}

function entry(n: number): CacheEntry {
  return { value: new Uint8Array(n), expiresAt: 0 }
}

/** A manual clock (epoch ms). */
function manualClock(start = 1_000_000): { now: () => number; advance(ms: number): void } {
  let t = start
  return { now: () => t, advance: (ms) => void (t += ms) }
}

/**
 * fullPair is a 1000-byte pair whose main holds 800 bytes (8 entries of 100)
 * and whose hot holds h0 and h1 (100 each): full, and hot over its 1/8 share,
 * so the next 100-byte hot entry would push out h0, hot's oldest.
 */
function fullPair(): CachePair {
  const pair = new CachePair({ cacheBytes: 1000, sizeOf: payload })
  for (let i = 0; i < 8; i++) pair.populate('main', `m${i}`, entry(98))
  pair.populate('hot', 'h0', entry(98))
  pair.populate('hot', 'h1', entry(98))
  return pair
}

function admission(caches: CachePair, clock = manualClock(), probability?: number): HotAdmission {
  return new HotAdmission({ caches, capacity: 1024, probability, random: mulberry32(1), clock: clock.now })
}

function recordTimes(policy: HotAdmission, key: string, times: number): void {
  for (let i = 0; i < times; i++) policy.record(key)
}

describe('FrequencySketch', () => {
  it('counts up to 15 per key and tells keys apart', () => {
    const sketch = new FrequencySketch(1024)
    for (let i = 0; i < 7; i++) sketch.increment(hashKey('seven'))
    for (let i = 0; i < 40; i++) sketch.increment(hashKey('many'))
    expect(sketch.frequency(hashKey('seven'))).toBe(7)
    expect(sketch.frequency(hashKey('many'))).toBe(15) // 4-bit counters saturate
    expect(sketch.frequency(hashKey('never'))).toBe(0)
  })

  it('ages: halve() halves every counter, and sampleSize increments halve them by themselves', () => {
    const sketch = new FrequencySketch(16)
    for (let i = 0; i < 12; i++) sketch.increment(hashKey('old favourite'))
    expect(sketch.frequency(hashKey('old favourite'))).toBe(12)
    sketch.halve()
    expect(sketch.frequency(hashKey('old favourite'))).toBe(6)
    // Fresh keys fill the sample; the old favourite is not asked for any more.
    let before = 0
    let increments = 0
    for (;;) {
      before = sketch.frequency(hashKey('old favourite')) // fresh keys may share a counter with it (count-min): only raises it
      increments++
      if (sketch.increment(hashKey(`fresh ${increments}`))) break
    }
    expect(increments).toBeLessThanOrEqual(sketch.sampleSize)
    expect(sketch.frequency(hashKey('old favourite'))).toBeLessThanOrEqual(Math.ceil((before + 1) / 2))
    expect(sketch.frequency(hashKey('old favourite'))).toBeLessThan(before)
  })

  it('uses memory proportional to its capacity: 4 bits x 4 rows per key', () => {
    expect(new FrequencySketch(1 << 16).bytes).toBe((1 << 16) * 2)
    expect(new FrequencySketch(1000).bytes).toBe(1024 * 2)
  })
})

describe('CachePair.hotVictim', () => {
  it('is null while the budget has room or hot is under its share of main, else hot\'s oldest key', () => {
    const pair = new CachePair({ cacheBytes: 1000, sizeOf: payload })
    for (let i = 0; i < 8; i++) pair.populate('main', `m${i}`, entry(98))
    expect(pair.hotVictim(100)).toBeNull() // 800 + 100 <= 1000
    pair.populate('hot', 'h0', entry(98))
    pair.populate('hot', 'h1', entry(98))
    expect(pair.hotVictim(100)).toBe('h0') // full, and hot 300 > 800 / 8
    const mainHeavy = new CachePair({ cacheBytes: 1000, sizeOf: payload })
    for (let i = 0; i < 10; i++) mainHeavy.populate('main', `m${i}`, entry(98))
    expect(mainHeavy.hotVictim(100)).toBeNull() // hot 100 <= main 1000 / 8: main gives way, as groupcache's rule says
    expect(mainHeavy.hotVictim(200)).toBeUndefined() // over hot's share on its own: it would evict itself
  })
})

describe('HotAdmission', () => {
  it('admits every fetched value while the hot cache has room', () => {
    const pair = new CachePair({ cacheBytes: 1000, sizeOf: payload })
    const policy = admission(pair)
    expect(policy.admit('never asked before', 100, undefined, 2)).toBe(true)
  })

  it('a frequent key displaces a rare one', () => {
    const pair = fullPair()
    const policy = admission(pair)
    recordTimes(policy, 'h0', 1)
    recordTimes(policy, 'h1', 1)
    recordTimes(policy, 'frequent', 3)
    expect(policy.admit('frequent', 100, undefined, 2)).toBe(true)
  })

  it('a one-hit wonder does not displace a frequent key', () => {
    const pair = fullPair()
    const policy = admission(pair)
    recordTimes(policy, 'h0', 5) // the victim is asked for again and again
    recordTimes(policy, 'once', 1)
    expect(policy.admit('once', 100, undefined, 2)).toBe(false)
    // A tie is no reason to churn either.
    recordTimes(policy, 'five', 5)
    expect(policy.admit('five', 100, undefined, 2)).toBe(false)
  })

  it('ages: a victim popular long ago loses to a key asked for now', () => {
    const pair = fullPair()
    const sketch = new FrequencySketch(1024)
    const policy = new HotAdmission({ caches: pair, capacity: 1024, sketch, probability: undefined, random: Math.random, clock: manualClock().now })
    recordTimes(policy, 'h0', 8)
    recordTimes(policy, 'now', 4)
    expect(policy.admit('now', 100, undefined, 2)).toBe(false)
    // Two aging periods go by (what 2 x sampleSize gets of other keys would do)...
    sketch.halve()
    sketch.halve()
    // ...and 'now' is asked for again: 1 + 4 beats what is left of the old 8.
    recordTimes(policy, 'now', 4)
    expect(policy.admit('now', 100, undefined, 2)).toBe(true)
  })

  it('weighs the owner\'s minute_qps: a key the cluster asks for often is admitted before it is frequent here', () => {
    const clock = manualClock()
    const pair = fullPair()
    const policy = admission(pair, clock)
    recordTimes(policy, 'h0', 3)
    recordTimes(policy, 'popular elsewhere', 1)
    clock.advance(10_000) // the sketch's current aging period has lasted 10 s
    expect(policy.admit('popular elsewhere', 100, undefined, 2)).toBe(false) // a Go owner: no rate
    expect(policy.admit('popular elsewhere', 100, 0.2, 2)).toBe(false) // 0.1/s each over 10 s: a count of 1
    expect(policy.admit('popular elsewhere', 100, 1, 2)).toBe(true) // 0.5/s each over 10 s: a count of 5 > 3
    expect(policy.admit('popular elsewhere', 100, 1, 0)).toBe(false) // nobody asks that owner: no share to weigh
  })

  it('with a probability set, is groupcache\'s coin (frequency ignored)', () => {
    const pair = fullPair()
    const always = admission(pair, manualClock(), 1)
    const never = admission(pair, manualClock(), 0)
    expect(always.admit('anything', 100, undefined, 2)).toBe(true)
    expect(never.admit('anything', 100, 1000, 2)).toBe(false)
    expect(always.sketchBytes).toBe(0) // the coin needs no sketch
    expect(admission(pair).sketchBytes).toBeGreaterThan(0)
  })
})

describe('RequestRate', () => {
  it('estimates a key\'s requests per second from its counts and the clock', () => {
    const clock = manualClock()
    const rate = new RequestRate(1024, clock.now)
    for (let s = 0; s < 10; s++) {
      for (let i = 0; i < 5; i++) rate.record('five a second')
      rate.record('one a second')
      clock.advance(1000)
    }
    expect(rate.perSecond('five a second')).toBeCloseTo(5, 5)
    expect(rate.perSecond('one a second')).toBeCloseTo(1, 5)
    expect(rate.perSecond('never')).toBe(0)
  })

  it('record returns the rate perSecond tells right after it (one hash and one clock read for the owner)', () => {
    const clock = manualClock()
    const rate = new RequestRate(1024, clock.now)
    for (let s = 0; s < 2 * (HALF_LIFE_MS / 1000); s++) {
      for (let i = 0; i < 3; i++) expect(rate.record('three a second')).toBe(rate.perSecond('three a second'))
      clock.advance(1000)
    }
    expect(rate.record('first')).toBe(rate.perSecond('first'))
  })

  it('halves its counts every half-life: a steady rate stays estimated right, a silent key fades to 0', () => {
    const clock = manualClock()
    const rate = new RequestRate(1024, clock.now)
    for (let s = 0; s < 3 * (HALF_LIFE_MS / 1000); s++) {
      for (let i = 0; i < 4; i++) rate.record('steady')
      clock.advance(1000)
    }
    expect(rate.perSecond('steady')).toBeGreaterThan(3)
    expect(rate.perSecond('steady')).toBeLessThan(5)
    clock.advance(20 * HALF_LIFE_MS)
    expect(rate.perSecond('steady')).toBe(0)
  })
})

describe('hashKey', () => {
  it('tells apart long keys that differ in length, head or tail, with bounded work', () => {
    const long = 'x'.repeat(64 * 1024)
    const hashes = new Set([hashKey(long), hashKey(`${long}y`), hashKey(`y${long}`), hashKey(`${long.slice(1)}z`), hashKey('short')])
    expect(hashes.size).toBe(5)
    expect(hashKey(long)).toBe(hashKey('x'.repeat(64 * 1024))) // deterministic
  })
})
