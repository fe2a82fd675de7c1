/**
 * Typed groups across real peers on loopback (issue 15): bytes stay what
 * travels, so a typed asker decodes what any owner (typed or not) sends, a
 * typed set reaches its owner as the encoded bytes, and an owner refuses a
 * PUT its codec cannot decode.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { CodecError, codecs, type Group, type LoaderContext } from '../../src/index.js'
import { startCluster, type Cluster } from '../helpers/cluster.js'
import { keysOwnedBy } from '../helpers/features-cluster.js'

interface Product {
  id: string
  price: number
}

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

/** startMixed starts 3 members: 0 and 1 with a typed `products` group, 2 with an untyped one that answers the same JSON. */
async function startMixed(): Promise<Cluster> {
  cluster = await startCluster(
    3,
    ({ cache, track, index }) => {
      const json = (id: string): string => JSON.stringify({ id, price: id.length })
      const load = track(json)
      if (index === 2) cache.group({ name: 'products', cacheBytes: 1 << 20, load })
      else {
        const typedLoad = async (id: string, ctx: LoaderContext): Promise<Product> => JSON.parse((await load(id, ctx)) as string) as Product
        cache.group({ name: 'products', cacheBytes: 1 << 20, codec: codecs.json<Product>(), load: typedLoad })
      }
    },
    { options: { hotCacheProbability: 1 } },
  )
  return cluster
}

const products = (c: Cluster, i: number): Group<Product> => c.caches[i]!.getGroup<Product>('products')!

describe('typed groups across peers', () => {
  it('a typed asker gets T from a typed owner: one origin load, bytes on the wire', async () => {
    const c = await startMixed()
    const [key] = keysOwnedBy(c, 1, 1, 'typed') as [string]
    const value = await products(c, 0).get(key)
    expect(value).toEqual({ id: key, price: key.length })
    expect(c.loadsOf(key)).toBe(1)
    expect(c.loads[1]!.get(key)).toBe(1)
    // The asker mirrored the bytes in hot: the next get is a hit that hands out the same decoded object.
    expect(await products(c, 0).get(key)).toBe(value)
    expect(products(c, 0).stats().hot.items).toBe(1)
  })

  it('a typed asker decodes what an untyped owner sends, and an untyped asker gets the typed owner’s bytes', async () => {
    const c = await startMixed()
    const [fromUntyped] = keysOwnedBy(c, 2, 1, 'u') as [string]
    expect(await products(c, 0).get(fromUntyped)).toEqual({ id: fromUntyped, price: fromUntyped.length })
    const [fromTyped] = keysOwnedBy(c, 0, 1, 't') as [string]
    expect(await c.group(2, 'products').getString(fromTyped)).toBe(JSON.stringify({ id: fromTyped, price: fromTyped.length }))
    expect(c.totalLoads()).toBe(2)
  })

  it('set of a typed group stores the encoded bytes at the owner, which decodes them', async () => {
    const c = await startMixed()
    const [key] = keysOwnedBy(c, 1, 1, 'set') as [string]
    await products(c, 0).set(key, { id: key, price: 7 })
    expect(Buffer.from(products(c, 1).peek(key) as Uint8Array).toString()).toBe(`{"id":"${key}","price":7}`)
    expect(await products(c, 1).get(key)).toEqual({ id: key, price: 7 })
    expect(c.loadsOf(key)).toBe(0)
  })

  it('an owner refuses (400) a PUT its codec cannot decode: the set rejects, nothing is stored', async () => {
    const c = await startMixed()
    const [key] = keysOwnedBy(c, 1, 1, 'bad') as [string]
    await expect(c.group(2, 'products').set(key, 'not json')).rejects.toThrow(/400/)
    expect(products(c, 1).peek(key)).toBeUndefined()
  })
})

describe('typed groups and bad bytes from a peer', () => {
  it('bytes the asker’s codec cannot decode reject its get with CodecError, not a second origin load', async () => {
    const c = await startMixed()
    const [key] = keysOwnedBy(c, 2, 1, 'garbage') as [string]
    // The untyped owner holds bytes that are not JSON.
    await c.group(2, 'products').set(key, 'not json')
    const err = await products(c, 0).get(key).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(CodecError)
    expect(c.loadsOf(key)).toBe(0)
  })
})

describe('typed groups and stale answers', () => {
  it('an owner’s stale answer reaches a typed asker decoded, counted stale, not cached', async () => {
    let now = Date.UTC(2030, 6, 1)
    let loads = 0
    let hold: Promise<void> | undefined
    cluster = await startCluster(
      2,
      ({ cache }) => {
        cache.group({
          name: 'products',
          cacheBytes: 1 << 20,
          ttl: 1_000,
          staleWhileRevalidate: 10_000,
          codec: codecs.json<Product>(),
          load: async (id) => {
            if (hold !== undefined) await hold
            return { id, price: ++loads }
          },
        })
      },
      { options: { clock: () => now, hotCacheProbability: 0 } },
    )
    const c = cluster
    const [key] = keysOwnedBy(c, 1, 1, 'stale') as [string]
    expect(await products(c, 1).get(key)).toEqual({ id: key, price: 1 })
    now += 1_500
    let release!: () => void
    hold = new Promise((resolve) => (release = resolve))
    // The owner answers stale (its refresh is held); the asker decodes it and does not cache it.
    expect(await products(c, 0).get(key)).toEqual({ id: key, price: 1 })
    expect(products(c, 0).stats().staleHits).toBe(1)
    expect(products(c, 0).peek(key)).toBeUndefined()
    expect(products(c, 0).stats().main.items + products(c, 0).stats().hot.items).toBe(0)
    release()
  })
})
