/**
 * Typed groups and codecs in one process (issue 15): the built-in codecs,
 * the decoded value kept beside the bytes (decoded once per value, shared by
 * hits, counted in the budget), codec failures as typed errors, and the
 * types (checked by `tsc`, which covers test/).
 */
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest'
import { CodecError, ENTRY_OVERHEAD_BYTES, InvalidArgumentError, LoadError, Peercache, codecs, type Codec, type Group, type PeercacheOptions } from '../src/index.js'

interface Product {
  id: string
  price: number
}

const open: Peercache[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((cache) => cache.close()))
})

function newCache(options: PeercacheOptions = {}): Peercache {
  const cache = new Peercache({ env: {}, ...options })
  open.push(cache)
  return cache
}

/** countingJson is codecs.json() that counts its decodes. */
function countingJson<T>(): Codec<T> & { decodes: number } {
  const json = codecs.json<T>()
  const codec = { decodes: 0, encode: (value: T) => json.encode(value), decode: (bytes: Uint8Array) => (codec.decodes++, json.decode(bytes)) }
  return codec
}

describe('typed groups', () => {
  it('json: load returns T, get resolves to T, decoded once and shared by every hit', async () => {
    const codec = countingJson<Product>()
    const products = newCache().group({ name: 'products', cacheBytes: 1 << 20, codec, load: (id) => ({ id, price: 42 }) })
    expectTypeOf(products).toEqualTypeOf<Group<Product>>()
    const first = await products.get('p1')
    expectTypeOf(first).toEqualTypeOf<Product>()
    expect(first).toEqual({ id: 'p1', price: 42 })
    const second = await products.get('p1')
    // The same object: a hit hands out the kept decoded value, it does not decode again.
    expect(second).toBe(first)
    expect(codec.decodes).toBe(1)
    // Bytes stay what is cached: getString and peek see the JSON text.
    expect(await products.getString('p1')).toBe('{"id":"p1","price":42}')
    expect(Buffer.from(products.peek('p1') as Uint8Array).toString()).toBe('{"id":"p1","price":42}')
  })

  it('an explicit type argument types the codec and the loader', async () => {
    const cache = newCache()
    const products = cache.group<Product>({ name: 'products', cacheBytes: 1 << 20, codec: codecs.json(), load: (id) => ({ id, price: 1 }) })
    expectTypeOf(products.get('x')).toEqualTypeOf<Promise<Product>>()
    expectTypeOf(products.getMany(['x'])).toEqualTypeOf<Promise<Map<string, Product>>>()
    expectTypeOf(products.set).parameter(1).toEqualTypeOf<Product>()
    // Type errors only (never called): tsc checks the @ts-expect-error lines.
    const typeErrors = (): void => {
      // @ts-expect-error a typed loader must return the codec's type
      cache.group<Product>({ name: 'bad', cacheBytes: 1, codec: codecs.json(), load: () => 'text' })
      // @ts-expect-error a type argument without a codec is not a typed group
      cache.group<Product>({ name: 'bad2', cacheBytes: 1, load: () => 'x' })
      // @ts-expect-error set of a typed group takes a T
      void products.set('k', 'not a product')
    }
    expect(typeof typeErrors).toBe('function')
    const untyped = cache.group({ name: 'raw', cacheBytes: 1 << 20, load: () => 'raw' })
    expectTypeOf(untyped.get('k')).toEqualTypeOf<Promise<Buffer>>()
    expectTypeOf(untyped.set).parameter(1).toEqualTypeOf<Uint8Array | string>()
    expect(await products.get('x')).toEqual({ id: 'x', price: 1 })
  })

  it('string: hits share the decoded string', async () => {
    const names = newCache().group({ name: 'names', cacheBytes: 1 << 20, codec: codecs.string(), load: (key) => `name of ${key}` })
    expectTypeOf(names.get('a')).toEqualTypeOf<Promise<string>>()
    expect(await names.get('a')).toBe('name of a')
    expect(await names.get('a')).toBe('name of a')
  })

  it('bytes: the default behaviour, each read gets a copy of its own', async () => {
    const blobs = newCache().group({ name: 'blobs', cacheBytes: 1 << 20, codec: codecs.bytes(), load: () => new Uint8Array([1, 2, 3]) })
    const a = await blobs.get('k')
    const b = await blobs.get('k')
    expect(a).not.toBe(b)
    a[0] = 9
    expect([...(await blobs.get('k'))]).toEqual([1, 2, 3])
    // No decoded value kept: the entry costs key + value bytes (+ the per-entry overhead), as untyped.
    expect(blobs.stats().main.bytes).toBe(1 + 3 + ENTRY_OVERHEAD_BYTES)
  })

  it('counts a kept decoded value in the budget as its bytes once more', async () => {
    const cache = newCache()
    const typed = cache.group({ name: 'typed', cacheBytes: 1 << 20, codec: codecs.json<number[]>(), load: () => [1, 2, 3] })
    const raw = cache.group({ name: 'raw', cacheBytes: 1 << 20, load: () => '[1,2,3]' })
    await typed.get('key')
    await raw.get('key')
    expect(raw.stats().main.bytes).toBe(3 + 7 + ENTRY_OVERHEAD_BYTES)
    expect(typed.stats().main.bytes).toBe(3 + 7 + 7 + ENTRY_OVERHEAD_BYTES)
  })

  it('the decoded value is decoded from the bytes, never the loader’s own object', async () => {
    const made: Product[] = []
    const products = newCache().group({
      name: 'products',
      cacheBytes: 1 << 20,
      codec: codecs.json<Product>(),
      load: (id) => {
        const product = { id, price: 5 }
        made.push(product)
        return product
      },
    })
    const value = await products.get('p')
    expect(value).toEqual(made[0])
    expect(value).not.toBe(made[0])
    made[0]!.price = 1000 // the loader keeps and mutates its object: the cache is not affected
    expect((await products.get('p')).price).toBe(5)
  })

  it('set takes a T, encodes it, and later hits return the decoded value', async () => {
    const codec = countingJson<Product>()
    const products = newCache().group({ name: 'products', cacheBytes: 1 << 20, codec, load: (id) => ({ id, price: 0 }) })
    await products.set('p9', { id: 'p9', price: 99 })
    expect(await products.get('p9')).toEqual({ id: 'p9', price: 99 })
    expect(await products.getString('p9')).toBe('{"id":"p9","price":99}')
    expect(codec.decodes).toBe(1)
  })

  it('a value the codec cannot encode is a LoadError from the loader, a CodecError from set', async () => {
    const group = newCache().group({ name: 'g', cacheBytes: 1 << 20, codec: codecs.json<unknown>(), load: () => undefined })
    await expect(group.get('k')).rejects.toBeInstanceOf(LoadError)
    await expect(group.set('k', () => 1)).rejects.toBeInstanceOf(CodecError)
  })

  it('a codec whose decode throws rejects the get with CodecError, the cause kept', async () => {
    const cause = new Error('nope')
    const broken: Codec<string> = { encode: (v) => v, decode: () => { throw cause } }
    const group = newCache().group({ name: 'g', cacheBytes: 1 << 20, codec: broken, load: () => 'x' })
    const err = await group.get('k').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(CodecError)
    expect((err as CodecError).message).toMatch(/codec could not decode/)
    expect((err as CodecError).cause).toBe(cause)
  })

  it('rejects a codec without encode/decode', () => {
    const cache = newCache()
    expect(() => cache.group({ name: 'g', cacheBytes: 1, codec: {} as Codec<string>, load: () => 'x' })).toThrow(InvalidArgumentError)
  })

  it('getJSON stays for untyped groups', async () => {
    const raw = newCache().group({ name: 'raw', cacheBytes: 1 << 20, load: () => '{"a":1}' })
    expect(await raw.getJSON<{ a: number }>('k')).toEqual({ a: 1 })
  })
})
