/**
 * hono on @hono/node-server (issue 11): the two ways docs/integrations.md documents to
 * serve the peer endpoint next to a hono app, each checked with a real
 * peercache peer talking to the hono-side member: gets, a batch, set and
 * remove — and the app's own routes still answered by hono.
 *
 * 1. In front of hono: `cache.handler()` answers the peer paths and hands
 *    everything else to hono's node listener (`getRequestListener`).
 * 2. Inside hono: routes for the peer paths pass node's request and response
 *    (`HttpBindings`) to `cache.handler()` and return RESPONSE_ALREADY_SENT,
 *    so hono's middleware runs on peer requests too.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { getRequestListener, type HttpBindings } from '@hono/node-server'
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'
import { Hono } from 'hono'
import { Client } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { Opened } from '../helpers/opened.js'
import { HashRing, Peercache, serverUrl } from '../../src/index.js'
import { listenLocal, reference } from '../helpers/cluster.js'

const opened = new Opened()

afterEach(() => opened.closeAll())
/** get sends GET path to origin and reads the body as text. */
async function get(origin: string, path: string): Promise<{ status: number; text: string }> {
  const client = new Client(origin)
  opened.track(client)
  const response = await client.request({ method: 'GET', path })
  return { status: response.statusCode, text: await response.body.text() }
}

/** keysOwnedBy returns n keys the ring over peers gives to owner. */
function keysOwnedBy(peers: readonly string[], owner: string, prefix: string, n: number): string[] {
  const ring = new HashRing(peers)
  const keys: string[] = []
  for (let i = 0; keys.length < n; i++) if (ring.pick(`${prefix}/${i}`) === owner) keys.push(`${prefix}/${i}`)
  return keys
}

/** Mount returns the request listener of member A's server, built as one docs/integrations.md snippet does. */
type Mount = (cache: Peercache, app: Hono<{ Bindings: HttpBindings }>) => (req: IncomingMessage, res: ServerResponse) => void

/** In front of hono (docs/integrations.md's first snippet). */
const inFront: Mount = (cache, app) => {
  const peer = cache.handler()
  const hono = getRequestListener(app.fetch)
  return (req, res) => peer(req, res, () => void hono(req, res))
}

/** Inside hono (docs/integrations.md's second snippet). */
const inside: Mount = (cache, app) => {
  const peer = cache.handler()
  const toPeercache = (c: { env: HttpBindings }): Response => {
    peer(c.env.incoming, c.env.outgoing)
    return RESPONSE_ALREADY_SENT
  }
  app.all(`${cache.basePath}*`, toPeercache)
  app.all('/_peercache/*', toPeercache)
  const hono = getRequestListener(app.fetch)
  return (req, res) => void hono(req, res)
}

describe.each([
  ['in front of hono', inFront],
  ['inside hono routes', inside],
] as const)('peercache next to a hono app, %s', (_name, mount) => {
  it('serves a peer (gets, a batch, set, remove) and leaves the app’s routes to hono', async () => {
    const aServer = await listenLocal()
    const bServer = await listenLocal()
    opened.track(aServer)
    opened.track(bServer)
    const a = serverUrl(aServer)
    const b = serverUrl(bServer)
    const peers = [a, b]
    const seenA: string[] = []
    const cacheA = new Peercache({ env: {}, self: a, peers, hotCacheProbability: 0 })
    const cacheB = new Peercache({ env: {}, self: b, peers, hotCacheProbability: 0 })
    opened.track(cacheA)
    opened.track(cacheB)
    cacheA.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => (seenA.push(key), reference(key)) })
    cacheB.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => reference(key) })

    const app = new Hono<{ Bindings: HttpBindings }>()
    const middleware: string[] = []
    app.use(async (c, next) => {
      middleware.push(new URL(c.req.url).pathname)
      await next()
    })
    app.get('/hello', (c) => c.text('world'))
    aServer.on('request', mount(cacheA, app))
    bServer.on('request', cacheB.handler())

    const group = cacheB.getGroup('kv')!
    const [key, ...batch] = keysOwnedBy(peers, a, 'hono key/ü', 5) as [string, ...string[]]
    expect(await group.getString(key)).toBe(reference(key))
    const found = await group.getMany(batch)
    expect([...found.keys()].sort()).toEqual([...batch].sort())
    expect(seenA.sort()).toEqual([key, ...batch].sort())

    await group.set(key, 'new value')
    expect(Buffer.from(cacheA.getGroup('kv')!.peek(key) as Uint8Array).toString('utf8')).toBe('new value')
    expect((await group.remove(key)).unreachable).toEqual([])
    expect(cacheA.getGroup('kv')!.peek(key)).toBeUndefined()
    expect(group.stats().peerErrors).toBe(0)
    expect(group.stats().peerLoads).toBeGreaterThanOrEqual(2)

    expect(await get(a, '/hello')).toEqual({ status: 200, text: 'world' })
    expect((await get(a, '/nope')).status).toBe(404)
    // Hono's middleware saw the app's requests; inside hono routes it saw the peer requests too.
    expect(middleware).toContain('/hello')
    expect(middleware.some((path) => path.startsWith('/_groupcache/'))).toBe(mount === inside)
  })
})
