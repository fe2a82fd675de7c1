/**
 * How a streamed batch answer goes on the wire (batch-answer.ts): entries
 * ready in the same turn of the event loop share one write, the headers
 * with the first of them, and headers still unsent after a short grace go
 * alone, so an asker waiting on slow loads sees at once that its owner is
 * alive.
 *
 * Read over a raw socket: in a chunked answer each write of the response is
 * one chunk, whatever TCP does with the bytes, so the chunks count the writes.
 */
import { connect } from 'node:net'
import { URL } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { Client } from 'undici'
import { decodeBatchResponse, encodeBatchRequest } from '../../src/proto/codec.js'
import { startCluster, type Cluster } from '../helpers/cluster.js'
import { deferred, type Deferred } from '../helpers/core-helpers.js'
import { BATCH_PREFIX, keysOwnedBy } from '../helpers/features-cluster.js'

const cleanups: Array<() => Promise<void>> = []

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

/** start runs 2 members whose group `kv` loads through `load`. */
async function start(load: (key: string) => Promise<string>): Promise<Cluster> {
  const c = await startCluster(2, ({ cache, track }) => {
    cache.group({ name: 'kv', cacheBytes: 1 << 20, load: track((key) => load(key)) })
  }, { options: { hotCacheProbability: 0 } })
  cleanups.push(() => c.close())
  return c
}

/** rawBatch posts a batch of keys to `url` on a socket of its own and resolves to the answer's bytes as sent (bounded: 5 s). */
function rawBatch(url: string, keys: string[]): Promise<Buffer> {
  const { hostname, port } = new URL(url)
  const body = encodeBatchRequest(keys)
  const head = `POST ${BATCH_PREFIX}kv HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${body.byteLength}\r\nConnection: close\r\n\r\n`
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname)
    const chunks: Buffer[] = []
    socket.setTimeout(5000, () => socket.destroy(new Error('no full answer in 5 s')))
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('end', () => resolve(Buffer.concat(chunks)))
    socket.write(head)
    socket.write(body)
  })
}

/** chunksOf splits a chunked HTTP/1.1 answer into its headers and its body chunks (the final empty chunk left out). */
function chunksOf(answer: Buffer): { headers: string; chunks: Buffer[] } {
  const end = answer.indexOf('\r\n\r\n')
  const headers = answer.subarray(0, end).toString('latin1')
  const chunks: Buffer[] = []
  let at = end + 4
  while (at < answer.byteLength) {
    const line = answer.indexOf('\r\n', at)
    const sizeText = answer.subarray(at, line).toString('latin1')
    if (line < 0 || !/^[0-9a-f]+$/i.test(sizeText)) throw new Error(`not a chunk size at byte ${at}: ${JSON.stringify(sizeText.slice(0, 20))}`)
    const size = parseInt(sizeText, 16)
    if (size === 0) break
    chunks.push(answer.subarray(line + 2, line + 2 + size))
    at = line + 2 + size + 2
  }
  return { headers, chunks }
}

describe('a streamed batch answer on the wire', () => {
  it('misses whose loads end in the same turn of the event loop go out in one write', async () => {
    // Each load waits for a release of its own; all are released from one turn's immediates, one after another.
    const releases = new Map<string, Deferred<void>>()
    const allStarted = deferred<void>()
    const keys: string[] = []
    const c = await start(async (key) => {
      const release = deferred<void>()
      releases.set(key, release)
      if (releases.size === keys.length) allStarted.resolve()
      await release.promise
      return `v(${key})`
    })
    keys.push(...keysOwnedBy(c, 1, 5, 'together'))
    const answer = rawBatch(c.urls[1]!, keys)
    await allStarted.promise
    for (const release of releases.values()) setImmediate(() => release.resolve())
    const { headers, chunks } = chunksOf(await answer)
    expect(headers).toMatch(/^HTTP\/1\.1 200 /)
    expect(headers.toLowerCase()).toContain('transfer-encoding: chunked')
    expect(chunks).toHaveLength(1)
    const entries = decodeBatchResponse(chunks[0]!)
    expect(entries.map((entry) => entry.key).sort()).toEqual([...keys].sort())
    for (const entry of entries) expect(Buffer.from(entry.value!).toString()).toBe(`v(${entry.key})`)
  })

  it('headers go alone when no entry is ready: the asker sees the owner alive while its loads still run', async () => {
    const release = deferred<void>()
    const c = await start(async (key) => {
      await release.promise
      return `v(${key})`
    })
    const keys = keysOwnedBy(c, 1, 3, 'slow')
    const client = new Client(c.urls[1]!)
    cleanups.push(() => client.close())
    // undici resolves a request at its headers: while the loads wait for `release`, that takes the owner sending them alone.
    const response = await client.request({ method: 'POST', path: `${BATCH_PREFIX}kv`, body: encodeBatchRequest(keys), headers: { 'content-type': 'application/x-protobuf' } })
    expect(response.statusCode).toBe(200)
    for (const key of keys) expect(c.loadsOf(key)).toBe(1)
    release.resolve()
    const entries = decodeBatchResponse(new Uint8Array(await response.body.arrayBuffer()))
    expect(entries.map((entry) => entry.key).sort()).toEqual([...keys].sort())
  })
})
