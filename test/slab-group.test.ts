/**
 * A group over its slab arena (src/slab.ts): a cached value's chunk is given
 * to another value once it is evicted, so an entry that outlives a
 * synchronous step must leave the cache with bytes of its own (cache.ts
 * `detached`). These tests make an entry wait across a load while other
 * loads evict it and reuse its chunk, then check its bytes.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { Peercache, type Group } from '../src/index.js'
import { deferred, type Deferred } from './helpers/core-helpers.js'

const T0 = Date.UTC(2030, 0, 1)
const VALUE_BYTES = 1000
let now = T0
let opened: Peercache | undefined

afterEach(async () => {
  await opened?.close()
  opened = undefined
})

/** valueOf is key's value: VALUE_BYTES bytes of one letter per key, so a value read back tells whose bytes it holds. */
function valueOf(key: string): Uint8Array {
  return new Uint8Array(VALUE_BYTES).fill(key.charCodeAt(key.length - 1))
}

/** A group of a 64 KiB budget (one slab page) whose loads of 'a' wait for `gate` and then fail while `failing`. */
function smallGroup(): { group: Group; gate: { next: Deferred<void> | undefined; failing: boolean } } {
  now = T0
  const gate: { next: Deferred<void> | undefined; failing: boolean } = { next: undefined, failing: false }
  opened = new Peercache({ env: {}, clock: () => now })
  const group = opened.group({
    name: 'slab',
    cacheBytes: 64 << 10,
    ttl: 1000,
    staleIfError: 60_000,
    load: async (key) => {
      if (key === 'a' && gate.next !== undefined) await gate.next.promise
      if (key === 'a' && gate.failing) throw new Error('origin down')
      return valueOf(key)
    },
  })
  return { group, gate }
}

/** fillOthers loads enough other keys to evict everything the group held (and reuse every chunk). */
async function fillOthers(group: Group): Promise<void> {
  for (let i = 0; i < 200; i++) await group.get(`other-${i}-${String.fromCharCode(98 + (i % 20))}`)
}

describe('entries that outlive a store keep their own bytes', () => {
  it('a stale-if-error answer waited for across a load is the key\'s own value, though its chunk went to other keys meanwhile', async () => {
    const { group, gate } = smallGroup()
    expect(await group.get('a')).toEqual(Buffer.from(valueOf('a')))
    now += 2000 // expired: within staleIfError only
    gate.next = deferred()
    gate.failing = true
    const answer = group.get('a') // the expired entry is kept while the load runs
    await fillOthers(group)
    expect(group.peek('a')).toBeUndefined() // evicted, its chunk reused
    gate.next.resolve()
    expect(await answer).toEqual(Buffer.from(valueOf('a')))
    expect(group.stats().staleHits).toBe(1)
  })

  it('group.peek\'s view is the cache\'s own bytes until the next store, then may show another value', async () => {
    const { group } = smallGroup()
    await group.get('a')
    const view = group.peek('a')!
    expect(Buffer.from(view)).toEqual(Buffer.from(valueOf('a')))
    await fillOthers(group)
    expect(group.peek('a')).toBeUndefined()
    // The contract (peek's doc comment): the old view now shows some other key's bytes.
    expect(Buffer.from(view)).not.toEqual(Buffer.from(valueOf('a')))
  })
})
