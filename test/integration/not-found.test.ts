/**
 * Negative caching across real peers on loopback (issue 15, `notFoundTtl`):
 * the owner remembers a NotFoundError for notFoundTtl ms, so repeated gets of
 * a missing key from every member cost one origin load in the cluster; the
 * memory ends with the ttl (an injected clock, no sleeps), and set/remove
 * forget it at once. Off by default.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { NotFoundError } from '../../src/index.js'
import { startCluster, type Cluster } from '../helpers/cluster.js'
import { keysOwnedBy } from '../helpers/features-cluster.js'

const T0 = Date.UTC(2030, 2, 1)
let now = T0
let cluster: Cluster | undefined
/** Keys that exist at the origin (the loader throws NotFoundError for the others). */
let existing: Set<string>

afterEach(async () => {
  await cluster?.close()
  cluster = undefined
  now = T0
})

async function start(notFoundTtl: number | undefined): Promise<Cluster> {
  existing = new Set()
  cluster = await startCluster(
    3,
    ({ cache, track }) => {
      cache.group({
        name: 'kv',
        cacheBytes: 1 << 20,
        ...(notFoundTtl === undefined ? {} : { notFoundTtl }),
        load: track((key) => {
          if (!existing.has(key)) throw new NotFoundError(`no such row ${key}`)
          return `v(${key})`
        }),
      })
    },
    { options: { clock: () => now } },
  )
  return cluster
}

/** getFromAll gets key 5 times from every member and checks each is a NotFoundError. */
async function missFromAll(c: Cluster, key: string): Promise<void> {
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 3; i++) {
      const err = await c.group(i).get(key).catch((e: unknown) => e)
      expect(err, `member ${i}`).toBeInstanceOf(NotFoundError)
      expect((err as Error).message).toContain(`no such row ${key}`)
    }
  }
}

describe('notFoundTtl', () => {
  it('15 gets of a missing key from 3 members cost one origin load, at the owner', async () => {
    const c = await start(10_000)
    const [key] = keysOwnedBy(c, 1, 1, 'missing') as [string]
    await missFromAll(c, key)
    expect(c.loadsOf(key)).toBe(1)
    expect(c.loads[1]!.get(key)).toBe(1)
    expect(c.group(1).stats().notFoundHits).toBe(14)
    expect(c.group(0).stats().notFoundHits).toBe(0)
  })

  it('is forgotten after notFoundTtl: the next get asks the origin again', async () => {
    const c = await start(10_000)
    const [key] = keysOwnedBy(c, 0, 1, 'expiring') as [string]
    await missFromAll(c, key)
    now += 9_999
    await expect(c.group(2).get(key)).rejects.toBeInstanceOf(NotFoundError)
    expect(c.loadsOf(key)).toBe(1)
    now += 1
    existing.add(key)
    expect(await c.group(2).getString(key)).toBe(`v(${key})`)
    expect(c.loadsOf(key)).toBe(2)
  })

  it('set makes the key exist at once, everywhere', async () => {
    const c = await start(60_000)
    const [key] = keysOwnedBy(c, 2, 1, 'set') as [string]
    await missFromAll(c, key)
    await c.group(0).set(key, 'now it exists')
    for (let i = 0; i < 3; i++) expect(await c.group(i).getString(key)).toBe('now it exists')
    expect(c.loadsOf(key)).toBe(1)
  })

  it('remove forgets it: the next get asks the origin, which now has the key', async () => {
    const c = await start(60_000)
    const [key] = keysOwnedBy(c, 1, 1, 'remove') as [string]
    await missFromAll(c, key)
    existing.add(key)
    await expect(c.group(0).get(key)).rejects.toBeInstanceOf(NotFoundError)
    await c.group(0).remove(key)
    expect(await c.group(0).getString(key)).toBe(`v(${key})`)
    expect(c.loadsOf(key)).toBe(2)
  })

  it('is off by default: every get of a missing key asks the origin', async () => {
    const c = await start(undefined)
    const [key] = keysOwnedBy(c, 1, 1, 'off') as [string]
    await missFromAll(c, key)
    expect(c.loadsOf(key)).toBe(15)
    expect(c.group(1).stats().notFoundHits).toBe(0)
  })
})
