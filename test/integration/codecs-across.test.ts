/**
 * Every codec crosses real peers on loopback, not only json (issue
 * "Hardening, round 3"): a typed asker gets its T from the owner's bytes,
 * per key and in batches, and a typed set reaches the owner as the encoded
 * bytes — for codecs.string(), codecs.bytes() (a copy of its own per read,
 * values over a slab chunk's 64 bytes included) and a custom codec.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { codecs, type Codec, type Group, type LoaderContext } from '../../src/index.js'
import { startCluster, type Cluster } from '../helpers/cluster.js'
import { keysOwnedBy } from '../helpers/features-cluster.js'

/** A point: a custom binary codec (two little-endian float64s), the kind a user writes for compact values. */
interface Point {
  x: number
  y: number
}

const pointCodec: Codec<Point> = {
  encode: (p) => {
    const bytes = new Uint8Array(16)
    const view = new DataView(bytes.buffer)
    view.setFloat64(0, p.x, true)
    view.setFloat64(8, p.y, true)
    return bytes
  },
  decode: (bytes) => {
    if (bytes.byteLength !== 16) throw new Error(`a point is 16 bytes, got ${bytes.byteLength}`)
    const view = new DataView(bytes.buffer, bytes.byteOffset, 16)
    return { x: view.getFloat64(0, true), y: view.getFloat64(8, true) }
  },
}

const pointOf = (key: string): Point => ({ x: key.length, y: -key.length / 3 })
const textOf = (key: string): string => `text ${key} ✓ ${'é'.repeat(40)}`
/** bytesOf is over 64 bytes, so the owner keeps it in its slab arena and the asker in its own. */
const bytesOf = (key: string): Uint8Array => Uint8Array.from({ length: 200 }, (_, i) => (i * 7 + key.length) & 0xff)

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

/** start runs 2 members, each with the three typed groups (string, bytes, point), their loads counted. */
async function start(): Promise<Cluster> {
  cluster = await startCluster(
    2,
    ({ cache, track }) => {
      // track counts calls of an untyped loader: each typed loader counts through one, then returns its T.
      const counted = <T>(make: (key: string) => T) => {
        const count = track(() => '')
        return async (key: string, ctx: LoaderContext): Promise<T> => {
          await count(key, ctx)
          return make(key)
        }
      }
      cache.group({ name: 'texts', cacheBytes: 1 << 20, codec: codecs.string(), load: counted(textOf) })
      cache.group({ name: 'blobs', cacheBytes: 1 << 20, codec: codecs.bytes(), load: counted(bytesOf) })
      cache.group({ name: 'points', cacheBytes: 1 << 20, codec: pointCodec, load: counted(pointOf) })
    },
    { options: { hotCacheProbability: 1 } },
  )
  return cluster
}

const group = <T>(c: Cluster, i: number, name: string): Group<T> => c.caches[i]!.getGroup<T>(name)!

describe('codecs across peers', () => {
  it('codecs.string(): the asker gets the owner’s text, per key and in a batch; one origin load each', async () => {
    const c = await start()
    const keys = keysOwnedBy(c, 1, 3, 's')
    for (const key of keys) expect(await group<string>(c, 0, 'texts').get(key)).toBe(textOf(key))
    const others = keysOwnedBy(c, 1, 3, 'sb')
    const batch = await group<string>(c, 0, 'texts').getMany(others)
    expect([...batch.entries()]).toEqual(others.map((key) => [key, textOf(key)]))
    for (const key of [...keys, ...others]) expect(c.loadsOf(key)).toBe(1)
  })

  it('codecs.bytes(): the asker gets the owner’s bytes, a copy of its own on every read', async () => {
    const c = await start()
    const [key] = keysOwnedBy(c, 1, 1, 'b') as [string]
    const first = await group<Uint8Array>(c, 0, 'blobs').get(key)
    expect(new Uint8Array(first)).toEqual(bytesOf(key))
    first.fill(0) // the caller's own copy: the cache is not changed
    const second = await group<Uint8Array>(c, 0, 'blobs').get(key)
    expect(new Uint8Array(second)).toEqual(bytesOf(key))
    expect(second).not.toBe(first)
    const batch = await group<Uint8Array>(c, 0, 'blobs').getMany(keysOwnedBy(c, 1, 2, 'bb'))
    for (const [k, value] of batch) expect(new Uint8Array(value)).toEqual(bytesOf(k))
    expect(c.loadsOf(key)).toBe(1)
  })

  it('a custom codec: the asker decodes the owner’s bytes; a typed set reaches the owner as the encoded bytes', async () => {
    const c = await start()
    const [key, written] = keysOwnedBy(c, 1, 2, 'p') as [string, string]
    expect(await group<Point>(c, 0, 'points').get(key)).toEqual(pointOf(key))
    await group<Point>(c, 0, 'points').set(written, { x: 1.5, y: -2.25 })
    // The owner holds the 16 encoded bytes, decoded by its own codec, and loaded nothing for the written key.
    expect(await group<Point>(c, 1, 'points').get(written)).toEqual({ x: 1.5, y: -2.25 })
    expect(group<Point>(c, 1, 'points').peek(written)?.byteLength).toBe(16)
    expect(c.loadsOf(written)).toBe(0)
    // And another asker's get of it comes from the owner, decoded again.
    expect(await group<Point>(c, 0, 'points').get(written)).toEqual({ x: 1.5, y: -2.25 })
  })
})
