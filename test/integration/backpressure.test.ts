/**
 * Bounded memory on the answering side (issue 23): clients that ask an owner
 * for many big values and never read the answers. Real servers and raw
 * `net` sockets on 127.0.0.1; what is asserted is observable state, never
 * RSS or time:
 *
 *  - per answer: the bytes the owner's server-side socket holds in memory
 *    (socket.writableLength, recorded after every write the server makes)
 *    stay within server.maxQueuedBytes plus one value; a connection that
 *    pipelines gets holds no more (the answers waiting behind the first are
 *    counted; past the bound the rest are refused busy);
 *  - in all: the endpoint's send queue (reached through internalsOf, as
 *    peercache's own adapters reach it) counts a single value answer the
 *    client does not read, passes server.maxTotalQueuedBytes by that one
 *    answer at most, and is back to 0 once the stalled clients are gone;
 *  - in time: a stalled connection is reset after server.writeStallMs (the
 *    'close' event of the owner's end; the client then gets a small part of
 *    what the owner's socket was handed: the kernel dropped the rest too);
 *  - a full queue refuses value answers with a 503 marked busy, and an asker
 *    loads those keys itself (PeerBusyError) without marking the owner down.
 * The stall deadline is the only wait, and every wait is for an event or a
 * state (vi.waitFor), never a sleep.
 */
import type { Server } from 'node:http'
import net from 'node:net'
import { Client } from 'undici'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { PeerBusyError, type PeercacheEvents } from '../../src/index.js'
import type { SendQueue } from '../../src/endpoint/send-queue.js'
import { internalsOf } from '../../src/peercache.js'
import { decodeBatchResponse, decodeGetResponse, encodeBatchRequest } from '../../src/proto/codec.js'
import { BATCH_PREFIX, keysOwnedBy } from '../helpers/features-cluster.js'
import { startCluster, type Cluster, type MemberOptions } from '../helpers/cluster.js'
import { header, parseResponses, rawExchange } from '../helpers/security-http.js'

const MiB = 1024 * 1024
const VALUE_BYTES = 100 * 1024
const KEYS = 200
const CONNECTIONS = 30
const MAX_QUEUED = MiB
/** Room beside the bound for what is not an entry's value: headers, chunk framing, entry fields, the socket's high-water mark. */
const SLACK = 64 * 1024

const cleanups: Array<() => void | Promise<void>> = []

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

/** valueOf is key's 100 KB value: its bytes spell the key, so a wrong answer shows. */
function valueOf(key: string): Uint8Array {
  return Buffer.alloc(VALUE_BYTES, `${key};`)
}

interface Started {
  c: Cluster
  /** The keys owned by member 1, cached there. */
  keys: string[]
  /** The owner's send queue. */
  queue: SendQueue
  /** The owner's server-side connections, by the client's port. */
  conns: Map<number, Watched>
}

/** Watched is one server-side connection of the owner, and the most bytes its socket held in memory after any write. */
interface Watched {
  socket: net.Socket
  most: number
}

/** start runs 2 members (group `kv`, 100 KB values; group `big`, 24 MiB ones) and caches KEYS keys at member 1, their owner. */
async function start(server: NonNullable<MemberOptions['server']>): Promise<Started> {
  const c = await startCluster(2, ({ cache, track }) => {
    cache.group({ name: 'kv', cacheBytes: 64 * MiB, load: track((key) => valueOf(key)) })
    cache.group({ name: 'big', cacheBytes: 64 * MiB, coalesce: false, load: track(() => Buffer.alloc(24 * MiB, 7)) })
  }, { options: { logger: false, hotCacheProbability: 0, server } })
  cleanups.push(() => c.close())
  const keys = keysOwnedBy(c, 1, KEYS, 'bp')
  await Promise.all(keys.map((key) => c.group(1).get(key)))
  return { c, keys, queue: internalsOf(c.caches[1]!).endpoint.sendQueue, conns: watch(c.servers[1]!) }
}

/** watch records every connection of server and, after every write the server makes on it (the real write runs unchanged), the bytes its socket holds. */
function watch(server: Server): Map<number, Watched> {
  const conns = new Map<number, Watched>()
  server.on('connection', (socket: net.Socket) => {
    const watched: Watched = { socket, most: 0 }
    conns.set(socket.remotePort as number, watched)
    const write = socket.write.bind(socket) as (...args: unknown[]) => boolean
    socket.write = ((...args: unknown[]) => {
      const ok = write(...args)
      watched.most = Math.max(watched.most, socket.writableLength)
      return ok
    }) as typeof socket.write
  })
  return conns
}

/** serverSide is the owner's end of a client's connection. */
function serverSide(s: Started, client: net.Socket): Watched {
  const watched = s.conns.get(ports.get(client) ?? -1)
  if (watched === undefined) throw new Error('no server-side connection for this client')
  return watched
}

/**
 * dropped resolves once the owner destroyed its end of client's connection
 * (its 'close' event), then reads what reached the client: a reset, so the
 * client closes after a small part of what the owner's socket had been handed.
 */
async function dropped(s: Started, client: net.Socket): Promise<{ received: number; handed: number }> {
  const { socket } = serverSide(s, client)
  if (!socket.closed) await new Promise((resolve) => socket.once('close', resolve))
  let received = client.readableLength
  const over = new Promise<void>((resolve) => client.once('close', () => resolve()))
  client.on('data', (chunk: Buffer) => (received += chunk.byteLength))
  client.resume()
  await over
  return { received, handed: socket.bytesWritten }
}

/** The local port of every raw client socket (a closed socket no longer tells it). */
const ports = new WeakMap<net.Socket, number>()

/** stalled opens a raw connection to url that sends one request and never reads a byte of the answer. */
async function stalled(url: string, head: string, body: Uint8Array = new Uint8Array(0)): Promise<net.Socket> {
  const { port } = new URL(url)
  const socket = net.connect(Number(port), '127.0.0.1')
  cleanups.push(() => void socket.destroy())
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  socket.on('error', () => {})
  ports.set(socket, socket.localPort as number)
  socket.pause()
  socket.write(`${head}Host: peer\r\nContent-Length: ${body.byteLength}\r\n\r\n`)
  socket.write(body)
  return socket
}

/** stalledBatch asks member 1 for every key in one batch and never reads. */
function stalledBatch(s: Started): Promise<net.Socket> {
  return stalled(s.c.urls[1]!, `POST ${BATCH_PREFIX}kv HTTP/1.1\r\nContent-Type: application/x-protobuf\r\n`, encodeBatchRequest(s.keys))
}

/** reader is an undici client that reads every answer, to member 1. */
function reader(s: Started): Client {
  const client = new Client(s.c.urls[1]!)
  cleanups.push(() => client.close())
  return client
}

/** stalledNow is true once the owner's end of client's connection holds bytes the kernel did not take (the answer is stalled), or was already reset for it. */
function stalledNow(s: Started, client: net.Socket): boolean {
  const { socket } = serverSide(s, client)
  return socket.closed || socket.writableLength > 0
}

describe('clients that ask for many big values and never read', () => {
  it(`${CONNECTIONS} stalled batch answers: each holds at most maxQueuedBytes plus one value, a reading client is answered meanwhile, and each is reset after writeStallMs`, async () => {
    const s = await start({ maxQueuedBytes: MAX_QUEUED, writeStallMs: 2000 })
    const sockets = await Promise.all(Array.from({ length: CONNECTIONS }, () => stalledBatch(s)))
    await vi.waitFor(() => expect(sockets.filter((socket) => stalledNow(s, socket))).toHaveLength(CONNECTIONS), { timeout: 10_000, interval: 20 })

    const client = reader(s)
    const some = s.keys.slice(0, 10)
    const batch = await client.request({ method: 'POST', path: `${BATCH_PREFIX}kv`, body: encodeBatchRequest(some), headers: { 'content-type': 'application/x-protobuf' } })
    expect(batch.statusCode).toBe(200)
    const entries = decodeBatchResponse(new Uint8Array(await batch.body.arrayBuffer()))
    expect(entries.map((e) => [e.key, e.status, Buffer.from(e.value!).equals(valueOf(e.key))])).toEqual(some.map((key) => [key, 200, true]))
    const one = await client.request({ method: 'GET', path: `/_groupcache/kv/${s.keys[0]}` })
    expect(one.statusCode).toBe(200)
    expect(Buffer.from(decodeGetResponse(new Uint8Array(await one.body.arrayBuffer())).value).equals(valueOf(s.keys[0]!))).toBe(true)

    for (const { received, handed } of await Promise.all(sockets.map((socket) => dropped(s, socket)))) expect(received).toBeLessThan(handed)
    for (const socket of sockets) expect(serverSide(s, socket).most).toBeLessThanOrEqual(MAX_QUEUED + VALUE_BYTES + SLACK)
    expect(s.queue.total).toBe(0)
  })

  it('a connection that pipelines gets: the answers waiting for it are counted, and past maxQueuedBytes the rest are refused busy', async () => {
    const s = await start({ maxQueuedBytes: MAX_QUEUED })
    // Every get in one write: node parses them all at once and each hit is answered at once, queued behind the first.
    const gets = s.keys.map((key, i) => `GET /_groupcache/kv/${key} HTTP/1.1\r\nHost: peer\r\n${i === KEYS - 1 ? 'Connection: close\r\n' : ''}\r\n`)
    const bytes = await rawExchange(Number(new URL(s.c.urls[1]!).port), gets.join(''), { timeoutMs: 10_000 })
    const answers = parseResponses(bytes.bytes)
    expect(answers).toHaveLength(KEYS)
    const served = answers.flatMap((answer, i) => (answer.status === 200 ? [i] : []))
    for (const i of served) expect(Buffer.from(decodeGetResponse(answers[i]!.body).value).equals(valueOf(s.keys[i]!))).toBe(true)
    const refused = answers.filter((answer) => answer.status !== 200)
    expect(refused.length).toBeGreaterThan(0)
    for (const answer of refused) expect([answer.status, header(answer, 'x-peercache-error')]).toEqual([503, 'busy'])
    expect(s.queue.peak).toBeLessThanOrEqual(MAX_QUEUED + VALUE_BYTES + SLACK)
    expect(s.queue.total).toBe(0)
  })

  it('a stalled single value answer counts in the send queue; while the queue is full, value answers are refused busy and an asker loads those keys itself, without marking the owner down', async () => {
    const s = await start({ maxTotalQueuedBytes: MiB, writeStallMs: 3000 })
    const downs: Array<PeercacheEvents['peer-down']> = []
    const peerErrors: Array<PeercacheEvents['peer-error']> = []
    s.c.caches[0]!.events.on('peer-down', (e) => downs.push(e))
    s.c.caches[0]!.events.on('peer-error', (e) => peerErrors.push(e))
    await s.c.group(1, 'big').get('huge')
    // One GET of a 24 MiB value, never read: what the kernel does not take stays counted.
    const stuck = await stalled(s.c.urls[1]!, 'GET /_groupcache/big/huge HTTP/1.1\r\n')
    await vi.waitFor(() => expect(s.queue.full).toBe(true), { timeout: 10_000, interval: 20 })

    const client = reader(s)
    const get = await client.request({ method: 'GET', path: `/_groupcache/kv/${s.keys[0]}` })
    expect([get.statusCode, get.headers['x-peercache-error'], await get.body.text()]).toEqual([503, 'busy', 'busy: too many answer bytes wait for clients that do not read them (server.maxQueuedBytes, server.maxTotalQueuedBytes)\n'])
    const batch = await client.request({ method: 'POST', path: `${BATCH_PREFIX}kv`, body: encodeBatchRequest(s.keys.slice(0, 3)), headers: { 'content-type': 'application/x-protobuf' } })
    expect([batch.statusCode, batch.headers['x-peercache-error']]).toEqual([503, 'busy'])
    await batch.body.dump()

    // The asker: a coalesced get (a batch) and a plain one are each refused busy; it loads both keys itself.
    const [coalesced, plain] = [s.keys[1]!, s.keys[2]!]
    const values = await Promise.all([s.c.group(0).get(coalesced), s.c.group(0, 'big').get(plain)])
    expect(Buffer.from(values[0]).equals(valueOf(coalesced))).toBe(true)
    expect(values[1].byteLength).toBe(24 * MiB)
    expect([s.c.loads[0]!.get(coalesced), s.c.loads[0]!.get(plain)]).toEqual([1, 1])
    expect(peerErrors.map((e) => [e.key, e.error instanceof PeerBusyError])).toEqual(expect.arrayContaining([[coalesced, true], [plain, true]]))

    const { received, handed } = await dropped(s, stuck)
    expect(received).toBeLessThan(handed)
    expect(s.queue.total).toBe(0)
    expect(s.queue.peak).toBeLessThanOrEqual(24 * MiB + SLACK)
    // The owner was never held down: once the stalled client is gone it answers again.
    const after = s.keys[3]!
    expect(Buffer.from(await s.c.group(0).get(after)).equals(valueOf(after))).toBe(true)
    expect(s.c.loads[0]!.get(after)).toBeUndefined()
    expect(downs).toEqual([])
  })
})
