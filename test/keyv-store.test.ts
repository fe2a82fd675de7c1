/**
 * PeercacheStore beyond Keyv's suite: what it does across processes (a key
 * written through one peer is read through the other, and lives at its
 * owner, expiring there with Keyv's ttl), how it keeps raw values, what its
 * namespaces do and do not isolate, and how failures reach Keyv's `error`
 * event. Real two-peer clusters on 127.0.0.1.
 */
import Keyv, { type KeyvOptions } from 'keyv'
import { afterEach, describe, expect, it } from 'vitest'
import { InvalidArgumentError, Peercache, PeerError } from '../src/index.js'
import { PeercacheStore } from '../src/integrations/keyv.js'
import { decodeKeyvValue, encodeKeyvValue } from '../src/integrations/keyv-values.js'
import { startCluster, type Cluster, type MemberOptions } from './helpers/cluster.js'
import { servedGroup } from './helpers/served.js'

let cluster: Cluster | undefined
const caches: Peercache[] = []

afterEach(async () => {
  await cluster?.close()
  cluster = undefined
  await Promise.all(caches.splice(0).map((cache) => cache.close()))
})

/** start runs two members with groups `kv` and `other`, both without a loader. */
async function start(options: MemberOptions = {}): Promise<Cluster> {
  cluster = await startCluster(
    2,
    ({ cache }) => {
      cache.group({ name: 'kv', cacheBytes: 1 << 20 })
      cache.group({ name: 'other', cacheBytes: 1 << 20 })
    },
    { options },
  )
  return cluster
}

/** keyvOf is a Keyv over member's group (a store of its own, as Keyv needs). */
function keyvOf(c: Cluster, member: number, options: { namespace?: string; group?: string } = {}): Keyv {
  const store = new PeercacheStore(c.caches[member]!, { group: c.group(member, options.group ?? 'kv') })
  return new Keyv({ store, ...(options.namespace === undefined ? {} : { namespace: options.namespace }) })
}

/** keysOwnedBy lists n Keyv keys (unprefixed) whose prefixed form the ring gives to member. */
function keysOwnedBy(c: Cluster, member: number, n: number, namespace = 'keyv'): string[] {
  const keys: string[] = []
  for (let i = 0; keys.length < n && i < 10_000; i++) if (c.ownerOf(`${namespace}:key-${i}`) === member) keys.push(`key-${i}`)
  return keys
}

describe('PeercacheStore across two peers', () => {
  it('a value set through one peer lives at its owner and is read through the other; delete and has see it from both', async () => {
    const c = await start()
    const [first, second] = [keyvOf(c, 0), keyvOf(c, 1)]
    const keys = [...keysOwnedBy(c, 0, 3), ...keysOwnedBy(c, 1, 3)]
    for (const key of keys) expect(await first.set(key, { key, n: key.length })).toBe(true)
    for (const key of keys) {
      expect(await second.get(key)).toEqual({ key, n: key.length })
      expect(await second.has(key)).toBe(true)
      // Stored once, at the owner: the other member's main holds none of them.
      const owner = c.ownerOf(`keyv:${key}`)
      expect(servedGroup(c.caches[owner]!, 'kv').peek(`keyv:${key}`)).toBeDefined()
    }
    expect(await second.get(keys)).toEqual(keys.map((key) => ({ key, n: key.length })))
    expect(await second.delete(keys[0]!)).toBe(true)
    expect(await first.get(keys[0]!)).toBeUndefined()
    expect(await first.has(keys[0]!)).toBe(false)
    expect(await second.delete(keys[0]!)).toBe(false)
  })

  it('ttl reaches the owner: it drops the value then, whoever reads it', async () => {
    let now = Date.UTC(2026, 0, 1)
    const c = await start({ clock: () => now })
    const [key] = keysOwnedBy(c, 1, 1)
    await keyvOf(c, 0).set(key!, 'short-lived', 5_000)
    const entry = servedGroup(c.caches[1]!, 'kv').peek(`keyv:${key}`)
    expect(entry?.expiresAt).toBe(now + 5_000)
    now += 5_001
    // Keyv itself still believes the value fresh (its clock is the real one): the owner's expiry answers.
    expect(await keyvOf(c, 0).get(key!)).toBeUndefined()
    expect(await keyvOf(c, 1).get(key!)).toBeUndefined()
  })

  it('raw values (serialize: undefined) come back as they went in: Buffers, Dates, Maps, BigInts, lone surrogates', async () => {
    const c = await start()
    // Keyv's raw mode: no serializer, the store is handed `{ value, expires }` objects.
    const noSerializer = { serialize: undefined, deserialize: undefined } as unknown as Pick<KeyvOptions, 'serialize' | 'deserialize'>
    const raw = (member: number): Keyv => new Keyv({ store: new PeercacheStore(c.caches[member]!, { group: c.group(member, 'kv') }), ...noSerializer })
    const value = { buf: Buffer.from([0, 255, 1]), at: new Date(0), map: new Map([[1, 'one']]), big: 2n ** 70n, odd: 'a\ud800b' }
    for (const key of [...keysOwnedBy(c, 0, 1), ...keysOwnedBy(c, 1, 1)]) {
      await raw(0).set(key, value)
      expect(await raw(1).get(key)).toEqual(value)
      // Kept in the structured-clone form (its 0xFF header), not as text.
      expect(servedGroup(c.caches[c.ownerOf(`keyv:${key}`)]!, 'kv').peek(`keyv:${key}`)?.value[0]).toBe(0xff)
    }
    expect(decodeKeyvValue(Buffer.from(encodeKeyvValue('plain "text" ✓') as string))).toBe('plain "text" ✓')
    expect(decodeKeyvValue(Buffer.alloc(0))).toBe('')
  })

  it('namespaces never collide and delete only their own keys; clear drops the whole group, so one group per namespace', async () => {
    const c = await start()
    const [a, b] = [keyvOf(c, 0, { namespace: 'a' }), keyvOf(c, 1, { namespace: 'b' })]
    await a.set('k', 'from a')
    await b.set('k', 'from b')
    expect([await a.get('k'), await b.get('k')]).toEqual(['from a', 'from b'])
    expect(await a.delete('k')).toBe(true)
    expect(await b.get('k')).toBe('from b')
    await a.set('k', 'from a')
    await a.clear()
    expect([await a.get('k'), await b.get('k')]).toEqual([undefined, undefined])

    const [sessions, pages] = [keyvOf(c, 0, { group: 'kv' }), keyvOf(c, 1, { group: 'other' })]
    await sessions.set('k', 'session')
    await pages.set('k', 'page')
    await sessions.clear()
    expect([await sessions.get('k'), await pages.get('k')]).toEqual([undefined, 'page'])
  })

  it('a write its owner does not take is Keyv’s error event and a false; a clear that misses a peer too', async () => {
    const c = await start({ health: { failureThreshold: 1_000 } })
    const keyv = keyvOf(c, 0)
    const errors: unknown[] = []
    keyv.on('error', (err: unknown) => errors.push(err))
    const [key] = keysOwnedBy(c, 1, 1)
    await c.stop(1)
    expect(await keyv.set(key!, 'lost')).toBe(false)
    expect(errors.at(-1)).toBeInstanceOf(PeerError)
    expect(await keyv.delete(key!)).toBe(false)
    expect(errors.at(-1)).toBeInstanceOf(PeerError)
    expect((errors.at(-1) as Error).message).toMatch(/did not reach its owner/)
    await keyv.clear()
    expect((errors.at(-1) as Error).message).toMatch(/clear of group kv did not reach/)
    expect(errors).toHaveLength(3)
  })

  it('refuses options that cannot make its group, with what to change', () => {
    const cache = new Peercache({ env: {} })
    const stranger = new Peercache({ env: {} })
    caches.push(cache, stranger)
    const store = new PeercacheStore(cache, { name: 'kv', cacheBytes: 1024 })
    expect(store.opts).toMatchObject({ group: 'kv', dialect: 'peercache' })
    expect(() => new PeercacheStore(cache, { name: 'kv', cacheBytes: 1024 })).toThrow(/duplicate group name/)
    expect(() => new PeercacheStore(cache, { name: 'x', cacheBytes: 1024, load: () => 'v' } as never)).toThrow(/without load/)
    expect(() => new PeercacheStore(stranger, { group: store.group })).toThrow(InvalidArgumentError)
  })
})
