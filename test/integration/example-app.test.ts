/**
 * examples/app end to end: three real processes of the example app
 * (examples/app/server.mjs, configured by environment as its containers are)
 * on 127.0.0.1 ports, in front of a fake origin (a real node:http server in
 * the test). A product is served by every process and loaded from the origin
 * once in the whole cluster; the origin's 404 becomes NotFoundError (the
 * app's 404) and its 500 a failed load (the app's 502), neither cached as a
 * value. The fake origin shipped with the example (origin.mjs) runs too.
 */
import { createServer, type Server } from 'node:http'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { serverUrl } from '../../src/index.js'
import { reservePorts, stopChild } from '../helpers/child-procs.js'
import { closeServer } from '../helpers/cluster.js'
import { startExample, type ExampleProcess } from '../helpers/example-app.js'

const PRODUCT = JSON.stringify({ id: '42', name: 'teapot', price: 18 })

/** startOrigin serves 42 as a product, 500 as an origin failure and 404 for any other id, counting requests by path. */
async function startOrigin(): Promise<{ server: Server; requests: Map<string, number> }> {
  const requests = new Map<string, number>()
  const server = createServer((req, res) => {
    const path = req.url ?? ''
    requests.set(path, (requests.get(path) ?? 0) + 1)
    if (path === '/products/42') return res.end(PRODUCT)
    res.statusCode = path === '/products/500' ? 500 : 404
    res.end(res.statusCode === 500 ? 'database on fire' : 'not here')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, requests }
}

describe('examples/app: three processes and an origin', () => {
  let origin: Awaited<ReturnType<typeof startOrigin>>
  const apps: ExampleProcess[] = []

  beforeAll(async () => {
    origin = await startOrigin()
    const urls = await reservePorts(3)
    const env = (url: string): Record<string, string> => ({
      PORT: new URL(url).port,
      PEERCACHE_SELF: url,
      PEERCACHE_PEERS: urls.join(','),
      PEERCACHE_SECRET: 'example-secret',
      ORIGIN_URL: serverUrl(origin.server),
      DRAIN_MS: '0',
    })
    for (const [i, url] of urls.entries()) apps.push(await startExample('server.mjs', `app ${i + 1}`, env(url)))
  }, 90_000)

  afterAll(async () => {
    await Promise.all(apps.map((app) => stopChild(app)))
    if (origin) await closeServer(origin.server)
  }, 30_000)

  const get = async (app: ExampleProcess, id: string): Promise<{ status: number; body: string }> => {
    const response = await fetch(`${app.url}/products/${id}`, { signal: AbortSignal.timeout(10_000) })
    return { status: response.status, body: await response.text() }
  }

  it('serves a product from every process, loaded from the origin once cluster-wide', async () => {
    const answers = await Promise.all([...apps, ...apps, ...apps].map((app) => get(app, '42')))
    expect(answers).toEqual(Array.from({ length: 9 }, () => ({ status: 200, body: PRODUCT })))
    for (const app of apps) expect(await get(app, '42')).toEqual({ status: 200, body: PRODUCT })
    expect(origin.requests.get('/products/42')).toBe(1)
  })

  it("answers the origin's 404 with NotFoundError: the app's 404, never a cached value", async () => {
    for (const app of apps) {
      const { status, body } = await get(app, '7')
      expect(status).toBe(404)
      expect(body).toContain('product 7')
    }
    expect(origin.requests.get('/products/7')).toBeGreaterThanOrEqual(1)
  })

  it("answers the origin's 500 with a failed load (502), asked again next time", async () => {
    const first = await get(apps[0]!, '500')
    expect(first.status).toBe(502)
    expect(first.body).toContain('origin answered 500')
    const before = origin.requests.get('/products/500')
    expect(await get(apps[1]!, '500')).toMatchObject({ status: 502 })
    expect(origin.requests.get('/products/500')).toBeGreaterThan(before!)
  })
})

describe('examples/app/origin.mjs, the fake origin of the compose and kubernetes examples', () => {
  let origin: ExampleProcess | undefined

  afterAll(async () => {
    if (origin) await stopChild(origin)
  })

  it('answers a product as JSON and an unknown id with 404', async () => {
    const [url] = await reservePorts(1)
    origin = await startExample('origin.mjs', 'origin', { PORT: new URL(url!).port })
    const product = await fetch(`${origin.url}/products/42`, { signal: AbortSignal.timeout(5_000) })
    expect(product.status).toBe(200)
    expect(await product.json()).toMatchObject({ id: '42' })
    const missing = await fetch(`${origin.url}/products/0`, { signal: AbortSignal.timeout(5_000) })
    expect(missing.status).toBe(404)
    await missing.text()
    // Its log line travels through a pipe, independently of the HTTP answer.
    await vi.waitFor(() => expect(origin!.output()).toContain('GET /products/0 404'), { timeout: 5_000 })
  })
})
