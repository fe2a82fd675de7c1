/**
 * Hostile input on the peer endpoint (issue 7), against the hardened server
 * `cache.listen(0, '127.0.0.1')` creates. Each bound gets a test, with the
 * exact status observed:
 *
 * | input                                              | answer                                  |
 * |----------------------------------------------------|-----------------------------------------|
 * | path over basePath + 3×(255+1+maxKeyBytes)         | 414 `request path too long` (handler)   |
 * | key over maxKeyBytes (percent-encoded, in path)    | 414 `key too long` (handler)            |
 * | request line over the server's maxHeaderSize       | 431, connection closed (node)           |
 * | `%zz`, `%`, `%C3`, encoded surrogate               | 400 malformed percent-encoding          |
 * | PATCH / OPTIONS / TRACE / PROPFIND on a key        | 405 + `Allow: GET, HEAD, PUT, DELETE`   |
 * | POST on a key / GET on the batch path              | 405 + `Allow` of the path               |
 * | a method node does not know (`FOO`), lowercase     | 400, connection closed (node's parser)  |
 * | body over maxRequestBytes (announced or streamed)  | 413 + `Connection: close`, closed       |
 * | malformed SetRequest / batch, body naming another key, > 10,000 batch keys | 400      |
 * | headers a byte at a time (slowloris)               | 408 + close after headersTimeout        |
 * | body a byte at a time                              | 408 + close after requestTimeout        |
 * | connections over maxConnections                    | closed at once (node drops them)        |
 * | idle keep-alive connection                         | closed after keepAliveTimeout           |
 * | unknown group names                                | 404 `no such group: NAME`, nothing kept |
 *
 * Raw `net` sockets are used wherever undici would refuse to send the request.
 */
import type { Server } from 'node:http'
import type net from 'node:net'
import { Client, Pool } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { Peercache, serverUrl, type PeercacheOptions } from '../../src/index.js'
import { decodeBatchResponse, decodeGetResponse, encodeBatchRequest, encodeSetRequest } from '../../src/proto/codec.js'
import { reference } from '../helpers/cluster.js'
import { connect, finalResponse, header, parseResponses, peekText, rawExchange, sleep, waitForClose, type ParsedResponse, type RawResult } from '../helpers/security-http.js'

const BASE = '/_groupcache/'
const MAX_KEY_BYTES = 64 * 1024
const CAP = 4096

let cache: Peercache | undefined
let server: Server
let port: number
const sockets = new Set<net.Socket>()
const clients: Array<Client | Pool> = []

afterEach(async () => {
  for (const socket of sockets) socket.destroy()
  sockets.clear()
  await Promise.all(clients.splice(0).map((c) => c.destroy()))
  await cache?.close()
  cache = undefined
})

/** start serves a Peercache (groups `kv` and `small`, maxKeyBytes 32) with listen(0, '127.0.0.1'). */
async function start(options: PeercacheOptions = {}): Promise<Peercache> {
  const c = new Peercache({ env: {}, ...options, server: { maxRequestBytes: CAP, ...options.server }, deploy: { closeTimeoutMs: 1000, ...options.deploy } })
  cache = c
  c.group({ name: 'kv', cacheBytes: 4 << 20, load: (key) => reference(key) })
  c.group({ name: 'small', cacheBytes: 1 << 20, maxKeyBytes: 32, load: (key) => reference(key) })
  server = await c.listen(0, '127.0.0.1')
  port = (server.address() as net.AddressInfo).port
  return c
}

function client(): Client {
  const c = new Client(serverUrl(server))
  clients.push(c)
  return c
}

/** raw sends bytes on a fresh socket (Connection: close in the request) and parses the one answer. */
async function raw(request: string | Uint8Array, timeoutMs = 5000): Promise<{ result: RawResult; response: ParsedResponse | undefined }> {
  const result = await rawExchange(port, request, { timeoutMs, track: sockets })
  const response = result.bytes.length === 0 ? undefined : finalResponse(parseResponses(result.bytes))
  return { result, response }
}

const get = (target: string): string => `GET ${target} HTTP/1.1\r\nHost: peer\r\nConnection: close\r\n\r\n`
const text = new TextDecoder()

/** request sends one request with undici and reads the whole answer. */
async function request(method: string, path: string, body?: Uint8Array): Promise<{ status: number; text: string; body: Uint8Array; headers: Record<string, string | string[] | undefined> }> {
  const response = await client().request({ method, path, body: body ?? null })
  const bytes = new Uint8Array(await response.body.arrayBuffer())
  return { status: response.statusCode, text: text.decode(bytes), body: bytes, headers: response.headers }
}

/** encodes a BatchRequest by hand (field 1, repeated string), so it can go beyond MAX_BATCH_KEYS. */
function batchOf(count: number): Uint8Array {
  const parts: Buffer[] = []
  for (let i = 0; i < count; i++) {
    const key = Buffer.from(`k${i}`)
    parts.push(Buffer.from([0x0a, key.length]), key)
  }
  return Buffer.concat(parts)
}

describe('oversized paths and keys', () => {
  it('answers 414 to a path longer than basePath + 3×(255+1+maxKeyBytes)', async () => {
    await start()
    const limit = BASE.length + 3 * (255 + 1 + MAX_KEY_BYTES)
    const { result, response } = await raw(get(BASE + 'kv/' + 'a'.repeat(limit + 1 - BASE.length - 3)))
    expect(response?.status).toBe(414)
    expect(response?.body.toString()).toBe('request path too long\n')
    expect(result.closed).toBe(true)
  })

  it('answers 414 to a key of maxKeyBytes + 1 bytes, percent-encoded, and serves one of maxKeyBytes', async () => {
    await start()
    const over = await raw(get(BASE + 'kv/' + '%61'.repeat(MAX_KEY_BYTES + 1)))
    expect(over.response?.status).toBe(414)
    expect(over.response?.body.toString()).toBe('key too long\n')
    // Multi-byte characters count in UTF-8 bytes: 21,846 × '€' (3 bytes) = 65,538 bytes.
    const euros = await raw(get(BASE + 'kv/' + encodeURIComponent('€'.repeat(21_846))))
    expect(euros.response?.status).toBe(414)
    const exact = await raw(get(BASE + 'kv/' + '%61'.repeat(MAX_KEY_BYTES)))
    expect(exact.response?.status).toBe(200)
    expect(text.decode(decodeGetResponse(exact.response!.body).value)).toBe(reference('a'.repeat(MAX_KEY_BYTES)))
  })

  it("answers 414 beyond a group's own smaller maxKeyBytes, in a path or in a batch", async () => {
    await start()
    expect((await request('GET', BASE + 'small/' + 'b'.repeat(33))).status).toBe(414)
    expect((await request('GET', BASE + 'small/' + 'b'.repeat(32))).status).toBe(200)
    const batch = await request('POST', '/_peercache/batch/small', encodeBatchRequest(['ok', 'c'.repeat(33)]))
    expect(batch.status).toBe(414)
    expect(batch.text).toBe('key too long\n')
  })

  it("answers 431 (node's parser, before the handler) to a request line over the server's maxHeaderSize, and closes", async () => {
    await start()
    // maxHeaderSize = max(16 KiB, 3×maxKeyBytes + 3×255 + 16 KiB) = 213,757 bytes for 64 KiB keys.
    const { result, response } = await raw(get(BASE + 'kv/' + 'a'.repeat(220_000)))
    expect(response?.status).toBe(431)
    expect(result.closed).toBe(true)
  })
})

describe('invalid percent-encoding', () => {
  it.each([
    ['%zz', BASE + 'kv/%zz'],
    ['a lone %', BASE + 'kv/%'],
    ['truncated UTF-8 %C3', BASE + 'kv/%C3'],
    ['truncated UTF-8 %E2%82', BASE + 'kv/a%E2%82'],
    ['an encoded surrogate', BASE + 'kv/%ED%A0%80'],
    ['a bad group name', BASE + '%zz/key'],
  ])('answers 400 to %s', async (_, path) => {
    await start()
    const answer = await request('GET', path)
    expect(answer.status).toBe(400)
    expect(answer.text).toBe('bad request: malformed percent-encoding\n')
  })

  it('answers 400 to a malformed group name on the batch path', async () => {
    await start()
    for (const path of ['/_peercache/batch/%zz', '/_peercache/batch/%C3', '/_peercache/batch/', '/_peercache/batch/a%2Fb']) {
      const answer = await request('POST', path, encodeBatchRequest(['k']))
      expect(answer.status, path).toBe(400)
    }
  })
})

describe('methods', () => {
  it.each(['PATCH', 'OPTIONS', 'TRACE', 'PROPFIND', 'POST'])('answers 405 with an Allow header to %s on a key path', async (method) => {
    await start()
    const { response } = await raw(`${method} ${BASE}kv/a HTTP/1.1\r\nHost: peer\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)
    expect(response?.status).toBe(405)
    expect(header(response!, 'allow')).toBe('GET, HEAD, PUT, DELETE')
  })

  it('answers 405 with Allow: POST to GET on the batch path', async () => {
    await start()
    const { response } = await raw(get('/_peercache/batch/kv'))
    expect(response?.status).toBe(405)
    expect(header(response!, 'allow')).toBe('POST')
  })

  it.each(['FOO', 'get', 'G\x00T'])("answers 400 and closes on a method node's parser does not know (%j)", async (method) => {
    await start()
    const { result, response } = await raw(`${method} ${BASE}kv/a HTTP/1.1\r\nHost: peer\r\n\r\n`)
    // llhttp accepts only the registered methods: node answers 400 itself and closes; our handler never runs.
    expect(response?.status).toBe(400)
    expect(result.closed).toBe(true)
    expect(cache!.getGroup('kv')!.stats().serverRequests).toBe(0)
  })
})

describe('bodies', () => {
  it('answers 413 and closes when a PUT announces a body over maxRequestBytes (nothing is read)', async () => {
    await start()
    const { result, response } = await raw(`PUT ${BASE}kv/a HTTP/1.1\r\nHost: peer\r\nContent-Length: ${CAP + 1}\r\n\r\n`)
    expect(response?.status).toBe(413)
    expect(header(response!, 'connection')).toBe('close')
    expect(response?.body.toString()).toBe(`request body exceeds ${CAP} bytes\n`)
    expect(result.closed).toBe(true)
  })

  it('answers 413 and closes when a chunked PUT streams past maxRequestBytes', async () => {
    await start()
    const chunk = Buffer.alloc(1024, 0x61)
    const parts = [Buffer.from(`PUT ${BASE}kv/a HTTP/1.1\r\nHost: peer\r\nTransfer-Encoding: chunked\r\n\r\n`)]
    for (let i = 0; i < 8; i++) parts.push(Buffer.from('400\r\n'), chunk, Buffer.from('\r\n'))
    parts.push(Buffer.from('0\r\n\r\n'))
    const { result, response } = await raw(Buffer.concat(parts))
    expect(response?.status).toBe(413)
    expect(result.closed).toBe(true)
  })

  it('answers 413 to a batch announced over maxRequestBytes', async () => {
    await start()
    const { response } = await raw(`POST /_peercache/batch/kv HTTP/1.1\r\nHost: peer\r\nContent-Length: 1000000000\r\n\r\n`)
    expect(response?.status).toBe(413)
  })

  it('answers 400 to a PUT whose body is not a SetRequest', async () => {
    const c = await start()
    for (const body of [Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.from('{"value":"json"}'), Buffer.from([0x0a, 0x7f, 0x61])]) {
      const answer = await request('PUT', BASE + 'kv/a', body)
      expect(answer.status).toBe(400)
      expect(answer.text).toMatch(/^bad request/)
    }
    expect(c.getGroup('kv')!.peek('a')).toBeUndefined()
  })

  it('answers 400 to a PUT whose body names another key or group', async () => {
    const c = await start()
    const value = new TextEncoder().encode('smuggled')
    for (const body of [
      encodeSetRequest({ group: 'kv', key: 'other', value, expiresAt: 0 }),
      encodeSetRequest({ group: 'small', key: 'a', value, expiresAt: 0 }),
    ]) {
      const answer = await request('PUT', BASE + 'kv/a', body)
      expect(answer.status).toBe(400)
      expect(answer.text).toBe('bad request: body names another group or key\n')
    }
    expect(c.getGroup('kv')!.peek('a')).toBeUndefined()
    expect(c.getGroup('kv')!.peek('other')).toBeUndefined()
    // The well-formed PUT is accepted.
    expect((await request('PUT', BASE + 'kv/a', encodeSetRequest({ group: 'kv', key: 'a', value, expiresAt: 0 }))).status).toBe(200)
    expect(peekText(c.getGroup('kv')!, 'a')).toBe('smuggled')
  })

  it('answers 400 to a batch that is not a BatchRequest', async () => {
    await start()
    for (const body of [Buffer.from([0xff, 0xff, 0xff]), Buffer.from([0x0a, 0x05, 0x61]), Buffer.from([0x0b])]) {
      const answer = await request('POST', '/_peercache/batch/kv', body)
      expect(answer.status).toBe(400)
      expect(answer.text).toMatch(/^bad request/)
    }
  })

  it('answers 400 to a batch of 10,001 keys and serves one of 10,000', async () => {
    await start({ server: { maxRequestBytes: 1 << 20 } })
    const over = await request('POST', '/_peercache/batch/kv', batchOf(10_001))
    expect(over.status).toBe(400)
    expect(over.text).toBe('bad request: batch exceeds 10000 keys\n')
    const full = await request('POST', '/_peercache/batch/kv', batchOf(10_000))
    expect(full.status).toBe(200)
    const entries = decodeBatchResponse(full.body)
    expect(entries).toHaveLength(10_000)
    expect(entries.every((e) => e.status === 200)).toBe(true)
  })
})

describe('slow and idle clients', () => {
  const timeouts = { headersTimeoutMs: 1000, requestTimeoutMs: 2000, checkIntervalMs: 200, keepAliveTimeoutMs: 500 }

  /** trickle writes one byte every 200 ms (at most `max`) until the socket closes; returns the bytes written. */
  async function trickle(socket: net.Socket, max: number): Promise<number> {
    let written = 0
    while (written < max && !socket.destroyed && socket.writable) {
      await sleep(200)
      if (socket.destroyed || !socket.writable) break
      socket.write('a')
      written++
    }
    return written
  }

  /** watched starts the server and opens a connection that records what the server sends and when it closes it (within 10 s). */
  async function watched(): Promise<{ socket: net.Socket; closed: Promise<number | undefined>; received: () => Buffer }> {
    await start({ server: { ...timeouts } })
    const socket = await connect(port, sockets)
    socket.on('error', () => {})
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => chunks.push(chunk)) // read, so the server's FIN is seen
    return { socket, closed: waitForClose(socket, 10_000), received: () => Buffer.concat(chunks) }
  }

  it('closes a slowloris connection (headers a byte every 200 ms) within headersTimeout', async () => {
    const { socket, closed, received } = await watched()
    socket.write(`GET ${BASE}kv/a HTTP/1.1\r\nX-Slow: `)
    const written = await trickle(socket, 30)
    const elapsed = await closed
    expect(elapsed).toBeDefined()
    expect(elapsed!).toBeLessThan(5000)
    expect(written).toBeLessThan(30) // the writer stopped because the server closed, not because it ran out
    const bytes = received()
    if (bytes.length > 0) expect(parseResponses(bytes)[0]?.status).toBe(408)
  })

  it('closes a connection sending its body a byte every 200 ms within requestTimeout', async () => {
    const { socket, closed, received } = await watched()
    socket.write(`PUT ${BASE}kv/a HTTP/1.1\r\nHost: peer\r\nContent-Length: 1000\r\n\r\n`)
    const written = await trickle(socket, 60)
    const elapsed = await closed
    expect(elapsed).toBeDefined()
    expect(elapsed!).toBeLessThan(5000)
    expect(written).toBeLessThan(60)
    const bytes = received()
    if (bytes.length > 0) expect(parseResponses(bytes)[0]?.status).toBe(408)
    expect(cache!.getGroup('kv')!.peek('a')).toBeUndefined()
  })

  it('closes a connection that never sends a byte within headersTimeout', async () => {
    const { closed, received } = await watched()
    const elapsed = await closed
    expect(elapsed).toBeDefined()
    expect(elapsed!).toBeLessThan(4000)
    const bytes = received()
    if (bytes.length > 0) expect(parseResponses(bytes)[0]?.status).toBe(408)
  })

  it('closes an idle keep-alive connection after keepAliveTimeout', async () => {
    await start({ server: { ...timeouts } })
    const socket = await connect(port, sockets)
    socket.on('error', () => {})
    const answered = new Promise<number>((resolve) => {
      let seen = ''
      socket.on('data', (chunk: Buffer) => {
        seen += chunk.toString('latin1')
        if (seen.includes('v(a)')) resolve(performance.now())
      })
    })
    socket.write(`GET ${BASE}kv/a HTTP/1.1\r\nHost: peer\r\n\r\n`) // keep-alive (HTTP/1.1 default)
    const since = await answered
    const elapsed = await waitForClose(socket, 10_000, since)
    expect(elapsed).toBeDefined()
    expect(elapsed!).toBeLessThan(3000)
  })
})

describe('many connections', () => {
  it('serves at most maxConnections at once, drops the rest, and recovers once they are gone', async () => {
    await start({ server: { maxConnections: 20, headersTimeoutMs: 5000, requestTimeoutMs: 10_000, keepAliveTimeoutMs: 5000 } })
    let dropped = 0
    server.on('drop', () => dropped++)
    let closedCount = 0
    let thirtyClosed!: () => void
    const allDropsClosed = new Promise<void>((resolve) => (thirtyClosed = resolve))
    const open = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const socket = await connect(port, sockets)
        const state = { socket, bytes: '', closed: false }
        socket.on('error', () => {})
        socket.on('data', (chunk: Buffer) => (state.bytes += chunk.toString('latin1')))
        socket.on('close', () => {
          state.closed = true
          if (++closedCount === 30) thirtyClosed()
        })
        return state
      }),
    )
    await allDropsClosed
    expect(dropped).toBe(30)
    const alive = open.filter((s) => !s.closed)
    expect(alive).toHaveLength(20)

    // Every surviving connection is served (keep-alive: they stay open).
    await Promise.all(
      alive.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.socket.on('data', () => s.bytes.includes('v(a)') && resolve())
            s.socket.write(`GET ${BASE}kv/a HTTP/1.1\r\nHost: peer\r\n\r\n`)
          }),
      ),
    )
    for (const s of alive) expect(s.bytes.startsWith('HTTP/1.1 200 OK')).toBe(true)
    for (const s of open.filter((x) => x.closed)) expect(s.bytes).toBe('')

    // While they are all held, a 21st connection is dropped.
    const extra = await rawExchange(port, get(BASE + 'kv/b'), { timeoutMs: 3000, track: sockets })
    expect(extra.bytes.length).toBe(0)
    expect(extra.closed).toBe(true)

    // Once they are gone, a normal request works again.
    for (const s of alive) s.socket.destroy()
    for (let i = 0; i < 200; i++) {
      const count = await new Promise<number>((resolve) => server.getConnections((_, n) => resolve(n)))
      if (count === 0) break
      await sleep(10)
    }
    const answer = await request('GET', BASE + 'kv/after')
    expect(answer.status).toBe(200)
  })
})

describe('unknown group names', () => {
  it('answers 404 no-such-group to 2,000 distinct names and keeps nothing for them', async () => {
    const c = await start()
    const pool = new Pool(serverUrl(server), { connections: 8 })
    clients.push(pool)
    const names = Array.from({ length: 2000 }, (_, i) => `unknown-${i}-${'x'.repeat(i % 50)}`)
    const answers = await Promise.all(
      names.map(async (name) => {
        const response = await pool.request({ method: 'GET', path: `${BASE}${encodeURIComponent(name)}/key` })
        return { name, status: response.statusCode, marker: response.headers['x-peercache-error'], body: await response.body.text() }
      }),
    )
    for (const answer of answers) {
      expect(answer.status).toBe(404)
      expect(answer.marker).toBe('no-such-group')
      expect(answer.body).toBe(`no such group: ${answer.name}\n`)
    }
    const batch = await request('POST', '/_peercache/batch/unknown-batch', encodeBatchRequest(['k']))
    expect(batch.status).toBe(404)
    expect(batch.headers['x-peercache-error']).toBe('no-such-group')
    // Nothing was created or counted per unknown name.
    expect(Object.keys(c.stats()).sort()).toEqual(['kv', 'small'])
    for (const name of names) expect(c.getGroup(name)).toBeUndefined()
    expect(c.getGroup('unknown-batch')).toBeUndefined()
    expect(c.metrics()).not.toContain('unknown-')
  })
})
