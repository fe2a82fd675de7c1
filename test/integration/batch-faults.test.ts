/**
 * Batches are an optimisation, never a unit of failure (issue 13). Each case
 * the hostile testing found is reproduced here on real servers on
 * 127.0.0.1 (node:http, undici, real peer processes' handlers):
 *
 *  - an owner that closes while serving a coalesced batch: the keys it did
 *    not serve are a transport failure for the asker (it loads them), never
 *    a final LoadError;
 *  - answers over maxResponseBytes in total, a batch longer than the
 *    transport timeout, one slow key among fast ones: every key is loaded
 *    once in the cluster and the owner is never marked down;
 *  - one batch naming one key 10,000 times, or asking for more value bytes
 *    than the answer budget: keys deduplicated, answer bounded;
 *  - a Go groupcache peer that drops the connection on the batch path: the
 *    keys are asked alone before any local load, and the peer is remembered
 *    as one that cannot serve batches.
 * Loaders that sleep stand for a slow origin; the tests synchronise on
 * events and promises, never on the time they take.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { Client } from 'undici'
import { LoadError, Peercache, serverUrl, type PeercacheEvents } from '../../src/index.js'
import { BATCH_ANSWER_BUDGET } from '../../src/endpoint/batch-answer.js'
import { decodeBatchResponse, encodeBatchRequest, encodeGetResponse } from '../../src/proto/codec.js'
import { closeServer, listenLocal, startCluster, type Cluster, type MemberOptions } from '../helpers/cluster.js'
import { deferred } from '../helpers/core-helpers.js'
import { BATCH_PREFIX, keysOwnedBy, keysOwnedIn, recordRequests, startFakePeer } from '../helpers/features-cluster.js'

const cleanups: Array<() => Promise<void>> = []

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

interface Started {
  c: Cluster
  downs: Array<PeercacheEvents['peer-down']>
}

/** start runs 2 members with group `kv` loading through `load`, watching member 0's peer-down events. */
async function start(load: (key: string) => Promise<string | Uint8Array> | string | Uint8Array, options: MemberOptions = {}): Promise<Started> {
  const c = await startCluster(2, ({ cache, track }) => {
    cache.group({ name: 'kv', cacheBytes: 256 << 20, load: track((key) => load(key)) })
  }, { options: { hotCacheProbability: 0, ...options } })
  cleanups.push(() => c.close())
  const downs: Started['downs'] = []
  c.caches[0]!.events.on('peer-down', (e) => downs.push(e))
  return { c, downs }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

describe('an owner closing while it serves a coalesced batch', () => {
  it('the keys it did not serve are a transport failure: the asker loads them, no get fails', async () => {
    const started = deferred<void>()
    const release = deferred<void>()
    const { c } = await start(async (key) => {
      started.resolve()
      await release.promise
      return `v(${key})`
    }, { deploy: { closeTimeoutMs: 50 } })
    const keys = keysOwnedBy(c, 1, 200, 'closing')
    const gets = Promise.allSettled(keys.map((key) => c.group(0).getString(key))) // one tick: one batch
    await started.promise // the owner is serving the batch
    const closed = c.caches[1]!.close() // its server stays up and answers 503 'closing'
    release.resolve()
    await closed
    const outcomes = await gets
    const failures = outcomes.filter((o) => o.status === 'rejected')
    expect(failures.map((f) => (f as PromiseRejectedResult).reason)).toEqual([])
    expect(outcomes.map((o) => (o as PromiseFulfilledResult<string>).value)).toEqual(keys.map((key) => `v(${key})`))
    // Every key the owner did not serve was loaded by the asker instead.
    for (const key of keys) expect(c.loadsOf(key), key).toBeGreaterThanOrEqual(1)
    expect(c.loads[0]!.size).toBeGreaterThan(0)
    expect(outcomes.some((o) => o.status === 'rejected' && o.reason instanceof LoadError)).toBe(false)
  })
})

describe('one batch, many outcomes', () => {
  it('values summing past maxResponseBytes: streamed per key, each key loaded once, the owner stays up', async () => {
    const value = new Uint8Array(100 * 1024).fill(7)
    const { c, downs } = await start(() => value, { transport: { maxResponseBytes: 1024 * 1024 } })
    const keys = keysOwnedBy(c, 1, 40, 'big') // 4 MB of values in one batch, 1 MB cap
    const values = await Promise.all(keys.map((key) => c.group(0).get(key)))
    for (const got of values) expect(got.byteLength).toBe(value.byteLength)
    for (const key of keys) expect(c.loadsOf(key), key).toBe(1)
    expect(c.loads[0]!.size).toBe(0)
    expect(downs).toEqual([])
    expect(c.group(0).stats()).toMatchObject({ peerErrors: 0, localLoads: 0 })
  })

  it('a batch whose loads take longer than the transport timeout: every key from the owner, the owner stays up', async () => {
    const { c, downs } = await start(async (key) => {
      await sleep(20)
      return `v(${key})`
    }, { transport: { timeoutMs: 200 } })
    const keys = keysOwnedBy(c, 1, 1000, 'long') // 1000 keys, 64 loads at a time, 20 ms each: far past 200 ms
    const values = await Promise.all(keys.map((key) => c.group(0).getString(key)))
    expect(values).toEqual(keys.map((key) => `v(${key})`))
    for (const key of keys) expect(c.loadsOf(key), key).toBe(1)
    expect(c.loads[0]!.size).toBe(0)
    expect(downs).toEqual([])
  })

  it('one slow key coalesced with 19 fast ones: the fast ones arrive without it, nothing loads twice, the owner stays up', async () => {
    const fastDone = deferred<void>()
    const keys = [] as string[]
    const { c, downs } = await start(async (key) => {
      if (key === keys[0]) {
        await fastDone.promise
        await sleep(600) // the owner stays busy well past the transport timeout
      }
      return `v(${key})`
    }, { transport: { timeoutMs: 200 } })
    keys.push(...keysOwnedBy(c, 1, 20, 'mixed'))
    const slow = c.group(0).getString(keys[0]!)
    const fast = await Promise.all(keys.slice(1).map((key) => c.group(0).getString(key))) // same tick: one batch of 20
    fastDone.resolve()
    expect(fast).toEqual(keys.slice(1).map((key) => `v(${key})`))
    expect(await slow).toBe(`v(${keys[0]})`)
    for (const key of keys) expect(c.loadsOf(key), key).toBe(1)
    expect(c.loads[0]!.size).toBe(0)
    expect(downs).toEqual([])
  })
})

describe('a hostile batch', () => {
  /** postBatch sends one raw (unsigned) batch request to member 1 and decodes the answer. */
  async function postBatch(c: Cluster, keys: string[]): Promise<{ status: number; bytes: number; entries: ReturnType<typeof decodeBatchResponse> }> {
    const client = new Client(c.urls[1]!)
    cleanups.push(() => client.close())
    const body = encodeBatchRequest(keys)
    const response = await client.request({ method: 'POST', path: `${BATCH_PREFIX}kv`, body, headers: { 'content-type': 'application/x-protobuf' } })
    const bytes = new Uint8Array(await response.body.arrayBuffer())
    return { status: response.statusCode, bytes: bytes.byteLength, entries: decodeBatchResponse(bytes) }
  }

  it('naming one key 10,000 times is answered with one entry', async () => {
    const { c } = await start(() => new Uint8Array(1024).fill(1))
    const [key] = keysOwnedBy(c, 1, 1, 'same')
    const answer = await postBatch(c, Array.from({ length: 10_000 }, () => key!))
    expect(answer.status).toBe(200)
    expect(answer.entries.map((e) => [e.key, e.status, e.value?.byteLength])).toEqual([[key, 200, 1024]])
    expect(c.loads[1]!.get(key!)).toBe(1)
  })

  it('asking for more value bytes than the answer budget: the answer stops at the budget, the rest is marked "ask alone"', async () => {
    const value = new Uint8Array(64 * 1024).fill(2)
    const { c } = await start(() => value)
    const keys = Array.from({ length: Math.ceil((2 * BATCH_ANSWER_BUDGET) / value.byteLength) }, (_, i) => `many-${i}`)
    const answer = await postBatch(c, keys)
    expect(answer.status).toBe(200)
    expect(answer.entries).toHaveLength(keys.length)
    const served = answer.entries.filter((e) => e.status === 200)
    expect(served.length * value.byteLength).toBeLessThanOrEqual(BATCH_ANSWER_BUDGET + value.byteLength)
    expect(answer.entries.filter((e) => e.status === 413)).toHaveLength(keys.length - served.length)
    expect(answer.bytes).toBeLessThan(BATCH_ANSWER_BUDGET + 2 * value.byteLength + keys.length * 100)
  })
})

describe('a Go groupcache peer that drops the connection on the batch path', () => {
  it('its keys are asked alone before any local load, and it is remembered as a peer without batches', async () => {
    const peer = await startFakePeer((req, res) => {
      if (req.method === 'POST') {
        req.socket.destroy() // Go's mux panics on the unknown path: "other side closed"
        return
      }
      const key = decodeURIComponent((req.url ?? '').split('/').pop() ?? '')
      const body = encodeGetResponse({ value: Buffer.from(`go(${key})`) })
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': body.byteLength }).end(body)
    })
    cleanups.push(() => peer.close())
    const log = recordRequests(peer.server)
    const server = await listenLocal()
    cleanups.push(() => closeServer(server))
    const self = serverUrl(server)
    const peers = [self, peer.url]
    const loads: string[] = []
    const cache = new Peercache({ env: {}, self, peers, hotCacheProbability: 0 })
    cleanups.push(() => cache.close())
    const group = cache.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => (loads.push(key), `local(${key})`) })
    const keys = keysOwnedIn(peers, peer.url, 10, 'go')
    expect(await Promise.all(keys.map((key) => group.getString(key)))).toEqual(keys.map((key) => `go(${key})`))
    expect(loads).toEqual([])
    const more = keysOwnedIn(peers, peer.url, 10, 'go-more')
    expect(await Promise.all(more.map((key) => group.getString(key)))).toEqual(more.map((key) => `go(${key})`))
    expect(loads).toEqual([])
    expect(log.count('POST')).toBe(1)
    expect(log.count('GET')).toBe(20)
    expect(group.stats().peerErrors).toBe(0)
  })
})
