/**
 * exchange: one bounded request over undici's dispatch API, against a real
 * node:http server on 127.0.0.1. Each test checks one bound: the deadline
 * (also for a request still queued in the pool), the caller's signal, the
 * size cap (announced and streamed), and that a whole body comes back.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { Pool } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { AbortError, PeerTimeoutError, ResponseTooLargeError } from '../src/errors.js'
import { exchange, type ExchangeOptions } from '../src/peers/exchange.js'
import { serverUrl } from '../src/index.js'
import { deferred, settle } from './helpers/core-helpers.js'

type Route = (req: IncomingMessage, res: ServerResponse) => void

const started: Array<{ server: Server; pool: Pool }> = []

async function peer(route: Route, connections = 4): Promise<{ pool: Pool; url: string; requests: IncomingMessage[] }> {
  const requests: IncomingMessage[] = []
  const server = createServer((req, res) => {
    requests.push(req)
    route(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = serverUrl(server)
  const pool = new Pool(url, { connections })
  started.push({ server, pool })
  return { pool, url, requests }
}

afterEach(async () => {
  for (const { server, pool } of started.splice(0)) {
    await pool.destroy()
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
})

function options(url: string, overrides: Partial<ExchangeOptions> = {}): ExchangeOptions {
  return { method: 'GET', path: '/v', headers: undefined, body: undefined, peer: url, timeout: 5000, maxResponseBytes: 1024, signal: undefined, ...overrides }
}

describe('exchange', () => {
  it('resolves to the status, the headers and the whole body (many chunks joined), and sends a request body', async () => {
    const { pool, url } = await peer((req, res) => {
      const parts: Buffer[] = []
      req.on('data', (chunk: Buffer) => parts.push(chunk))
      req.on('end', () => {
        res.writeHead(201, { 'x-echo': Buffer.concat(parts).toString() })
        res.write('a'.repeat(300))
        setImmediate(() => res.end('b'.repeat(300)))
      })
    })
    const response = await exchange(pool, options(url, { method: 'PUT', body: new TextEncoder().encode('sent'), headers: { 'content-type': 'text/plain' } }))
    expect(response.status).toBe(201)
    expect(response.headers['x-echo']).toBe('sent')
    expect(response.body.byteLength).toBe(600)
    expect(Buffer.from(response.body).toString()).toBe('a'.repeat(300) + 'b'.repeat(300))
  })

  it('rejects with PeerTimeoutError when no answer comes within the deadline', async () => {
    const { pool, url } = await peer(() => {}) // never answers
    const outcome = await settle(exchange(pool, options(url, { timeout: 50 })))
    expect(outcome.ok).toBe(false)
    expect((outcome as { error: unknown }).error).toBeInstanceOf(PeerTimeoutError)
  })

  it('a request still queued in the pool is timed out by its own deadline, while the one ahead of it still waits', async () => {
    const { pool, url, requests } = await peer(() => {}, 1) // one connection, held by the first request
    const holder = new AbortController()
    const first = settle(exchange(pool, options(url, { timeout: 60_000, signal: holder.signal })))
    const second = await settle(exchange(pool, options(url, { timeout: 50 })))
    expect(second.ok).toBe(false)
    expect((second as { error: unknown }).error).toBeInstanceOf(PeerTimeoutError)
    expect(requests).toHaveLength(1) // the queued one never reached the server
    holder.abort(new Error('test over'))
    const ended = await first
    expect((ended as { error: unknown }).error).toBeInstanceOf(AbortError)
  })

  it('the caller\'s signal ends the wait with AbortError; an already aborted signal sends nothing', async () => {
    const arrived = deferred()
    const { pool, url, requests } = await peer(() => arrived.resolve())
    const early = new AbortController()
    early.abort(new Error('before'))
    const before = await settle(exchange(pool, options(url, { signal: early.signal })))
    expect((before as { error: unknown }).error).toBeInstanceOf(AbortError)

    const caller = new AbortController()
    const pending = settle(exchange(pool, options(url, { signal: caller.signal })))
    await arrived.promise
    caller.abort(new Error('changed my mind'))
    const outcome = await pending
    expect((outcome as { error: AbortError }).error).toBeInstanceOf(AbortError)
    expect(((outcome as { error: AbortError }).error.cause as Error).message).toBe('changed my mind')
    expect(requests).toHaveLength(1)
  })

  it('refuses a body announced over the cap before reading it, and one that grows past the cap while streamed', async () => {
    const { pool, url } = await peer((req, res) => {
      if (req.url === '/announced') {
        res.writeHead(200, { 'content-length': 4096 })
        res.end('x'.repeat(4096))
        return
      }
      res.writeHead(200) // chunked: no length announced
      res.write('y'.repeat(800))
      setImmediate(() => res.end('y'.repeat(800)))
    })
    const announced = await settle(exchange(pool, options(url, { path: '/announced' })))
    expect((announced as { error: unknown }).error).toBeInstanceOf(ResponseTooLargeError)
    const streamed = await settle(exchange(pool, options(url, { path: '/streamed' })))
    expect((streamed as { error: unknown }).error).toBeInstanceOf(ResponseTooLargeError)
    // The pool still works after both refusals.
    const fine = await exchange(pool, options(url, { path: '/announced', maxResponseBytes: 8192 }))
    expect(fine.body.byteLength).toBe(4096)
  })

  it('rejects, never hangs, when the peer refuses connections or the pool is destroyed', async () => {
    const { pool, url } = await peer(() => {})
    const server = started.pop()?.server
    server?.closeAllConnections()
    await new Promise<void>((resolve) => server?.close(() => resolve()))
    const refused = await settle(exchange(pool, options(url)))
    expect(((refused as { error: { code?: string } }).error).code).toBe('ECONNREFUSED')
    await pool.destroy()
    const destroyed = await settle(exchange(pool, options(url)))
    expect(((destroyed as { error: { code?: string } }).error).code).toBe('UND_ERR_DESTROYED')
  })
})
