/**
 * peercache/fastify while the app closes: a get never fails because a peer
 * is closing. fastify answers its own 503 (JSON, no X-Peercache-Error) to
 * every request once `app.close()` has closed its routes; askers take that
 * for a transport failure and load locally, never for the loader's answer.
 * Real fastify apps, real servers on 127.0.0.1, real undici between them.
 */
import type { Server } from 'node:http'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { peercachePlugin } from '../../src/fastify.js'
import { Peercache, serverUrl, type PeercacheOptions } from '../../src/index.js'
import { listenLocal, reference } from '../helpers/cluster.js'
import { deferred } from '../helpers/core-helpers.js'
import { keysOwnedBy } from '../helpers/failover-servers.js'
import { Opened } from '../helpers/opened.js'

const opened = new Opened()

afterEach(() => opened.closeAll())

/** Member is one Peercache with group `kv`, and the keys its loader was asked for (its origin loads). */
interface Member {
  cache: Peercache
  url: string
  loads: string[]
}

/** member makes a Peercache with group `kv` whose loader records each key. */
function member(url: string, options: PeercacheOptions): Member {
  const cache = opened.track(new Peercache({ env: {}, self: url, hotCacheProbability: 0, ...options }))
  const loads: string[] = []
  cache.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => (loads.push(key), reference(key)) })
  return { cache, url, loads }
}

/** plainMember serves its peer endpoint with handler() on a server of its own. */
function plainMember(server: Server, peers: string[]): Member {
  const m = member(serverUrl(server), { peers })
  server.on('request', m.cache.handler())
  return m
}

/**
 * fastifyMember serves its peer endpoint through peercachePlugin; `setup`
 * adds the test's hooks before the app is ready.
 */
async function fastifyMember(server: Server, peers: string[], options: PeercacheOptions, setup: (app: FastifyInstance) => void): Promise<{ app: FastifyInstance } & Member> {
  const app = Fastify({ serverFactory: (handler) => server.on('request', handler) })
  opened.track(app)
  const m = member(serverUrl(server), { peers, ...options })
  setup(app)
  await app.register(peercachePlugin, { cache: m.cache })
  await app.ready()
  return { app, ...m }
}

async function servers(n: number): Promise<Server[]> {
  return Promise.all(Array.from({ length: n }, async () => opened.track(await listenLocal())))
}

describe('a fastify-mounted peer that is closing', () => {
  it("its fastify's own 503 (no marker) makes askers load locally: no get fails with LoadError", async () => {
    const [aServer, bServer] = await servers(2)
    const peers = [serverUrl(aServer!), serverUrl(bServer!)]
    const routesClosed = deferred()
    const release = deferred()
    const a = await fastifyMember(aServer!, peers, {}, (app) => {
      // preClose runs once fastify has closed its routes: every request now gets fastify's own 503.
      app.addHook('preClose', async () => {
        routesClosed.resolve()
        await release.promise
      })
    })
    const b = plainMember(bServer!, peers)
    const keys = keysOwnedBy(peers, a.url, 30, 'closing')

    const closing = a.app.close()
    await routesClosed.promise
    try {
      // One tick: a batch (answered 503 by fastify), then each key alone (503 again), then a local load.
      const results = await Promise.allSettled(keys.map((key) => b.cache.getGroup('kv')!.getString(key)))
      expect(results.filter((r) => r.status === 'rejected')).toEqual([])
      expect(results.map((r) => (r.status === 'fulfilled' ? r.value : undefined))).toEqual(keys.map(reference))
    } finally {
      release.resolve()
      await closing
    }
    expect([...b.loads].sort()).toEqual([...keys].sort())
    expect(a.loads).toEqual([])
    expect(b.cache.getGroup('kv')!.stats().peerErrors).toBe(keys.length)
  })

  it('drainMs: it keeps serving its peers while fastify still routes, so its keys move to the others without origin loads', async () => {
    const [aServer, bServer, cServer] = await servers(3)
    const peers = [aServer!, bServer!, cServer!].map((server) => serverUrl(server))
    const a = await fastifyMember(aServer!, peers, { deploy: { drainMs: 1500 } }, () => {})
    const b = plainMember(bServer!, peers)
    const c = plainMember(cServer!, peers)
    const keys = keysOwnedBy(peers, a.url, 30, 'leaving')
    const groupB = b.cache.getGroup('kv')!
    expect(await Promise.all(keys.map((key) => groupB.getString(key)))).toEqual(keys.map(reference))
    expect(a.loads).toHaveLength(keys.length)

    // A leaves: its app closes with drainMs, and its peers drop it from their lists.
    const closing = a.app.close()
    const survivors = peers.slice(1)
    b.cache.setPeers(survivors)
    c.cache.setPeers(survivors)
    // The keys' new owners (B, C) peek A, their previous owner, which still serves while it drains.
    expect(await Promise.all(keys.map((key) => groupB.getString(key)))).toEqual(keys.map(reference))
    const originLoads = [...b.loads, ...c.loads].filter((key) => keys.includes(key))
    expect(originLoads).toEqual([])
    expect(groupB.stats().peerErrors).toBe(0)
    await closing
    // The drain done, the cache is closed after fastify stopped routing.
    await expect(a.cache.getGroup('kv')!.getString(keys[0]!)).rejects.toThrow(/closed/)
  })
})
