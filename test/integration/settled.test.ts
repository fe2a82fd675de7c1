/**
 * getManySettled across real peers on loopback (issue 15): one entry per
 * distinct key, in Promise.allSettled's shape; a key that is not found, whose
 * owner's loader fails, or that is invalid, fails alone; remote keys still
 * travel in one batch per owner. getMany's documented all-or-nothing rule is
 * checked on the same keys.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { InvalidArgumentError, LoadError, NotFoundError } from '../../src/index.js'
import { startCluster, type Cluster } from '../helpers/cluster.js'
import { BATCH_PREFIX, keysOwnedBy, recordRequests } from '../helpers/features-cluster.js'

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

/** Keys starting `missing` are not found; keys starting `broken` make the loader throw. */
async function start(): Promise<Cluster> {
  cluster = await startCluster(3, ({ cache, track }) => {
    cache.group({
      name: 'kv',
      cacheBytes: 1 << 20,
      maxKeyBytes: 64,
      load: track((key) => {
        if (key.startsWith('missing')) throw new NotFoundError(`no ${key}`)
        if (key.startsWith('broken')) throw new Error(`origin down for ${key}`)
        return `v(${key})`
      }),
    })
  })
  return cluster
}

describe('getManySettled', () => {
  it('gives every distinct key its own outcome; failures stay with their key', async () => {
    const c = await start()
    const [good1, good2] = keysOwnedBy(c, 1, 2, 'good') as [string, string]
    const [missing] = keysOwnedBy(c, 2, 1, 'missing') as [string]
    const [broken] = keysOwnedBy(c, 1, 1, 'broken') as [string]
    const [local] = keysOwnedBy(c, 0, 1, 'local') as [string]
    const tooLong = 'x'.repeat(65)
    const logs = c.servers.map((server) => recordRequests(server))

    const results = await c.group(0).getManySettled([good1, missing, good1, broken, tooLong, local, good2])
    expect([...results.keys()]).toEqual([good1, missing, broken, tooLong, local, good2])
    expect(results.get(good1)).toEqual({ status: 'fulfilled', value: Buffer.from(`v(${good1})`) })
    expect(results.get(good2)).toEqual({ status: 'fulfilled', value: Buffer.from(`v(${good2})`) })
    expect(results.get(local)).toEqual({ status: 'fulfilled', value: Buffer.from(`v(${local})`) })
    const reasonOf = (key: string): unknown => {
      const result = results.get(key)
      return result?.status === 'rejected' ? result.reason : undefined
    }
    expect(reasonOf(missing)).toBeInstanceOf(NotFoundError)
    expect(reasonOf(broken)).toBeInstanceOf(LoadError)
    expect(reasonOf(tooLong)).toBeInstanceOf(InvalidArgumentError)
    // One request per remote owner (a batch for member 1's three keys, a plain get for member 2's one), each key
    // loaded once by its owner only.
    expect(logs[1]!.all).toHaveLength(1)
    expect(logs[1]!.count('POST', BATCH_PREFIX)).toBe(1)
    expect(logs[2]!.all).toHaveLength(1)
    expect(c.loads[1]!.get(good1)).toBe(1)
    expect(c.loadsOf(broken)).toBe(1)
    expect(c.loads[0]!.get(local)).toBe(1)
    expect(c.totalLoads()).toBe(5)
  })

  it('a key whose owner is down is loaded locally, the others still come from their owners', async () => {
    const c = await start()
    const [fromDead] = keysOwnedBy(c, 2, 1, 'dead') as [string]
    const [fromLive] = keysOwnedBy(c, 1, 1, 'live') as [string]
    await c.stop(2)
    const results = await c.group(0).getManySettled([fromDead, fromLive])
    expect(results.get(fromDead)).toEqual({ status: 'fulfilled', value: Buffer.from(`v(${fromDead})`) })
    expect(results.get(fromLive)).toEqual({ status: 'fulfilled', value: Buffer.from(`v(${fromLive})`) })
    expect(c.loads[0]!.get(fromDead)).toBe(1)
    expect(c.loads[1]!.get(fromLive)).toBe(1)
  })

  it('an aborted signal shows as each unfinished key’s AbortError; it never rejects', async () => {
    const c = await start()
    const keys = keysOwnedBy(c, 1, 3, 'abort')
    const results = await c.group(0).getManySettled(keys, { signal: AbortSignal.abort() })
    expect([...results.values()].map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected'])
    for (const result of results.values()) expect(result.status === 'rejected' && (result.reason as Error).name).toBe('AbortError')
  })
})

describe('getMany on the same keys (the documented rule)', () => {
  it('omits not-found keys, rejects with the first other failure in key order, and rejects an invalid key before fetching', async () => {
    const c = await start()
    const [good] = keysOwnedBy(c, 1, 1, 'good') as [string]
    const [missing] = keysOwnedBy(c, 2, 1, 'missing') as [string]
    const [broken] = keysOwnedBy(c, 2, 1, 'broken') as [string]
    const found = await c.group(0).getMany([good, missing])
    expect([...found.keys()]).toEqual([good])
    await expect(c.group(0).getMany([good, broken, missing])).rejects.toBeInstanceOf(LoadError)
    const before = c.totalLoads()
    await expect(c.group(0).getMany(['fresh-key', 'x'.repeat(65)])).rejects.toBeInstanceOf(InvalidArgumentError)
    expect(c.totalLoads()).toBe(before)
  })
})
