/**
 * The server side of the wire protocol against the Go groupcache vectors
 * (test/fixtures/wire-golang.json): one real Peercache served by
 * `listen(0, '127.0.0.1')`, asked with raw undici requests whose paths are
 * sent byte for byte as the vectors write them.
 */
import { readFileSync } from 'node:fs'
import type { Server } from 'node:http'
import { Client } from 'undici'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { NotFoundError, Peercache, serverUrl } from '../../src/index.js'
import { decodeGetResponse } from '../../src/proto/codec.js'

interface WireVectors {
  goClientRequestPath: Array<{ key: string; path: string }>
  serverPathDecoding: Array<{ path: string; group: string; key: string }>
  serverErrors: Array<{ path?: string; case?: string; status: number; body?: string }>
  errorHeaders: Record<string, string>
  successHeaders: Record<string, string>
}

const vectors = JSON.parse(readFileSync(new URL('../fixtures/wire-golang.json', import.meta.url), 'utf8')) as WireVectors

const LOADER_FAILURE = 'database is down'

let cache: Peercache
let server: Server
let client: Client
/** Keys each group's loader was called with, in order. */
let seen: Record<string, string[]>

beforeEach(async () => {
  seen = { kv: [], broken: [], missing: [] }
  cache = new Peercache({ env: {}, ring: 'groupcache' })
  cache.group({
    name: 'kv',
    cacheBytes: 1 << 20,
    load: (key) => {
      seen.kv!.push(key)
      return `v(${key})`
    },
  })
  cache.group({
    name: 'broken',
    cacheBytes: 1 << 20,
    load: (key) => {
      seen.broken!.push(key)
      throw new Error(LOADER_FAILURE)
    },
  })
  cache.group({
    name: 'missing',
    cacheBytes: 1 << 20,
    load: (key) => {
      seen.missing!.push(key)
      throw new NotFoundError(`no row for ${key}`)
    },
  })
  server = await cache.listen(0, '127.0.0.1')
  client = new Client(serverUrl(server))
})

afterEach(async () => {
  await client.close()
  await cache.close()
})

interface RawResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

/** get sends GET path exactly as written (no URL parsing, no normalisation) and reads the whole body. */
async function get(path: string, method: 'GET' | 'HEAD' = 'GET'): Promise<RawResponse> {
  const response = await client.request({ method, path })
  const body = Buffer.from(await response.body.arrayBuffer())
  return { status: response.statusCode, headers: response.headers, body }
}

/** expectValue checks a 200 groupcache answer carrying value. */
function expectValue(response: RawResponse, value: string): void {
  expect(response.status).toBe(200)
  expect(response.headers['content-type']).toBe(vectors.successHeaders['Content-Type'])
  expect(Buffer.from(decodeGetResponse(response.body).value).toString('utf8')).toBe(value)
}

/** expectGoError checks the headers Go's http.Error writes. */
function expectGoError(response: RawResponse): void {
  for (const [name, value] of Object.entries(vectors.errorHeaders)) {
    expect(response.headers[name.toLowerCase()], name).toBe(value)
  }
}

describe('server path decoding (Go server vectors)', () => {
  it('the vectors are there', () => {
    expect(vectors.serverPathDecoding.length).toBeGreaterThanOrEqual(9)
    expect(vectors.serverErrors.length).toBeGreaterThanOrEqual(5)
    expect(vectors.goClientRequestPath.length).toBeGreaterThanOrEqual(7)
  })

  for (const vector of vectors.serverPathDecoding) {
    it(`${vector.path} → group ${vector.group}, key ${JSON.stringify(vector.key)}`, async () => {
      const response = await get(vector.path)
      expectValue(response, `v(${vector.key})`)
      expect(seen[vector.group]).toEqual([vector.key])
    })
  }

  it('answers the vectors body byte for byte as Go would: GetResponse{value}, then minute_qps (field 2 of Go\'s own schema)', async () => {
    const vector = vectors.serverPathDecoding.find((v) => v.key === 'hello')!
    const response = await get(vector.path)
    const hex = response.body.toString('hex')
    expect(hex.slice(0, 20)).toBe('0a08762868656c6c6f29')
    // Field 2, wire type 1 (a double): tag 0x11 and 8 bytes, the key's request rate here (1 request so far).
    expect(hex.slice(20, 22)).toBe('11')
    expect(response.body.byteLength).toBe(10 + 9)
    expect(response.body.readDoubleLE(11)).toBeGreaterThan(0)
    expect(response.headers['content-length']).toBe(String(response.body.byteLength))
  })
})

describe('server errors (Go server vectors)', () => {
  const pathErrors = vectors.serverErrors.filter((v): v is typeof v & { path: string } => v.path !== undefined)

  it('covers every vector with a path, and only the getter-failure case has none', () => {
    expect(vectors.serverErrors.filter((v) => v.path === undefined).map((v) => v.case)).toEqual(["owner's getter fails"])
    expect(pathErrors.length).toBe(vectors.serverErrors.length - 1)
  })

  for (const vector of pathErrors) {
    it(`${vector.path} → ${vector.status}${vector.body === undefined ? '' : ` ${JSON.stringify(vector.body)}`}`, async () => {
      const response = await get(vector.path)
      expect(response.status).toBe(vector.status)
      if (vector.body !== undefined) expect(response.body.toString('utf8')).toBe(vector.body)
      else expect(response.body.toString('utf8')).toMatch(/\n$/)
      expectGoError(response)
      // No loader ran for a request that was refused.
      expect(seen.kv).toEqual([])
    })
  }

  it('marks the unknown-group 404 with x-peercache-error: no-such-group', async () => {
    const response = await get('/_groupcache/nosuch/hello')
    expect(response.status).toBe(404)
    expect(response.body.toString('utf8')).toBe('no such group: nosuch\n')
    expect(response.headers['x-peercache-error']).toBe('no-such-group')
  })

  it("answers 503 (not Go's 500) when the owner's loader fails, as text/plain with the message", async () => {
    const response = await get('/_groupcache/broken/k1')
    expect(response.status).toBe(503)
    expectGoError(response)
    const body = response.body.toString('utf8')
    // Go's http.Error shape: the error text, then exactly one newline.
    expect(body.endsWith(`${LOADER_FAILURE}\n`)).toBe(true)
    expect(body.slice(0, -1)).not.toContain('\n')
    expect(response.headers['content-length']).toBe(String(response.body.byteLength))
    // Marked: our client treats only this marked 503 as the final answer (an unmarked one is a transport failure).
    expect(response.headers['x-peercache-error']).toBe('load-failed')
    expect(seen.broken).toEqual(['k1'])
  })

  it('does not cache a loader failure: the next request loads again', async () => {
    expect((await get('/_groupcache/broken/k2')).status).toBe(503)
    expect((await get('/_groupcache/broken/k2')).status).toBe(503)
    expect(seen.broken).toEqual(['k2', 'k2'])
  })

  it('answers 404 with x-peercache-error: not-found when the loader throws NotFoundError', async () => {
    const response = await get('/_groupcache/missing/gone%2Fkey')
    expect(response.status).toBe(404)
    expectGoError(response)
    expect(response.body.toString('utf8')).toBe('no row for gone/key\n')
    expect(response.headers['x-peercache-error']).toBe('not-found')
    expect(seen.missing).toEqual(['gone/key'])
  })

  it('answers 404 from the handler itself for a path outside basePath (no next)', async () => {
    for (const path of ['/', '/hello', '/_groupcache', '/_groupcachekv/hello', '/other/_groupcache/kv/hello']) {
      const response = await get(path)
      expect(response.status, path).toBe(404)
      expectGoError(response)
      expect(response.headers['x-peercache-error'], path).toBeUndefined()
      expect(response.body.toString('utf8'), path).not.toMatch(/no such group/)
    }
    expect(seen.kv).toEqual([])
  })
})

describe("Go client's request paths", () => {
  for (const vector of vectors.goClientRequestPath) {
    // Go's server (and ours) percent-decodes the path; '+' stays '+', so a
    // key Go's client sent with a space arrives with '+' (golang/groupcache PR #91).
    const served = vector.key.replaceAll(' ', '+')
    it(`${vector.path} is answered for key ${JSON.stringify(served)}`, async () => {
      // Independent check of the expectation: Go's server decoding is a plain percent-decode.
      expect(decodeURIComponent(vector.path.slice('/_groupcache/kv/'.length))).toBe(served)
      const response = await get(vector.path)
      expectValue(response, `v(${served})`)
      expect(seen.kv).toEqual([served])
    })
  }

  it("decodes 'spaced+key' as 'spaced+key', not as a space (Go's known quirk)", async () => {
    const response = await get('/_groupcache/kv/spaced+key')
    expectValue(response, 'v(spaced+key)')
    expect(seen.kv).toEqual(['spaced+key'])
    expect(seen.kv).not.toContain('spaced key')
  })

  it('ignores the query string, as Go does', async () => {
    const response = await get('/_groupcache/kv/hello?x=1')
    expectValue(response, 'v(hello)')
    expect(seen.kv).toEqual(['hello'])
  })

  it('answers HEAD with the headers of a get and no body', async () => {
    const response = await get('/_groupcache/kv/hello', 'HEAD')
    expect(response.status).toBe(200)
    expect(response.headers['content-type']).toBe('application/x-protobuf')
    expect(response.body.byteLength).toBe(0)
  })
})
