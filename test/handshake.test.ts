/**
 * handshake: the reporting rules of peers/handshake.ts — one warning per
 * peer and kind of mismatch, again only once it changes or went away and
 * came back, a differing peer list only once it lasted — against a real
 * node:http server on 127.0.0.1 whose hello the test changes between
 * handshakes, asked over real undici exchanges.
 */
import type { Server } from 'node:http'
import { Pool } from 'undici'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { serverUrl, type Logger } from '../src/index.js'
import { Handshake } from '../src/peers/handshake.js'
import { exchange } from '../src/peers/exchange.js'
import { helloOf, type Hello, type LocalIdentity } from '../src/proto/hello.js'
import { HELLO_PATH } from '../src/proto/paths.js'
import { closeServer, listenLocal } from './helpers/cluster.js'

const LOCAL: LocalIdentity = { ring: 'balanced', peers: ['http://a:1', 'http://b:2'], basePath: '/_groupcache/', signed: false }

let server: Server
let pool: Pool
/** What the server answers to the hello now: a hello, or a bare status. */
let answer: Hello | number
let url: string

beforeEach(async () => {
  server = await listenLocal()
  server.on('request', (req, res) => {
    if (req.url !== HELLO_PATH || typeof answer === 'number') {
      res.statusCode = typeof answer === 'number' ? answer : 404
      res.end('peer authentication failed: missing\n')
      return
    }
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(answer))
  })
  url = serverUrl(server)
  pool = new Pool(url)
})

afterEach(async () => {
  await pool.close()
  await closeServer(server)
})

/** handshake makes a Handshake toward the server, logging warnings and completed handshakes. */
function handshake(listGraceMs = 0): { shake: Handshake; warns: string[]; done: () => number } {
  const warns: string[] = []
  let done = 0
  const noop = (): void => {}
  const logger: Logger = {
    info: noop,
    error: noop,
    warn: (_fields, message = '') => void warns.push(message),
    debug: (_fields, message) => {
      if (message === 'handshake done') done++
    },
  }
  const send = (signal: AbortSignal) => exchange(pool, { method: 'GET', path: HELLO_PATH, headers: undefined, body: undefined, peer: url, timeout: 2000, maxResponseBytes: 16 * 1024, signal })
  return { shake: new Handshake(url, { identity: () => LOCAL, logger, listGraceMs }, send), warns, done: () => done }
}

/** shakeOnce runs one handshake and waits until it is done. */
async function shakeOnce(h: ReturnType<typeof handshake>): Promise<void> {
  const before = h.done()
  h.shake.run()
  for (let waited = 0; h.done() === before && waited < 5000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10))
  expect(h.done()).toBe(before + 1)
}

describe('Handshake', () => {
  it('warns once per kind, again once the mismatch changes or went away and came back', async () => {
    const h = handshake()
    answer = { ...helloOf(LOCAL), ring: 'groupcache' }
    await shakeOnce(h)
    await shakeOnce(h)
    expect(h.warns).toEqual([`peer ${url} uses ring groupcache, this process balanced: set PEERCACHE_RING (the ring option) the same everywhere`])
    answer = helloOf(LOCAL)
    await shakeOnce(h)
    expect(h.warns).toHaveLength(1)
    answer = { ...helloOf(LOCAL), ring: 'groupcache', basePath: '/a/' }
    await shakeOnce(h)
    answer = { ...helloOf(LOCAL), ring: 'groupcache', basePath: '/b/' }
    await shakeOnce(h)
    expect(h.warns.slice(1)).toEqual([
      `peer ${url} uses ring groupcache, this process balanced: set PEERCACHE_RING (the ring option) the same everywhere`,
      `peer ${url} serves base path /a/, this process /_groupcache/: set basePath the same everywhere`,
      `peer ${url} serves base path /b/, this process /_groupcache/: set basePath the same everywhere`,
    ])
    h.shake.close()
  })

  it('reports a differing peer list only once it lasted listGraceMs (it rechecks by itself)', async () => {
    const h = handshake(150)
    answer = { ...helloOf(LOCAL), peersHash: 'aaaaaaaaaaaa', peerCount: 3 }
    await shakeOnce(h)
    expect(h.warns).toEqual([])
    for (let waited = 0; h.done() < 2 && waited < 5000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10))
    expect(h.warns).toEqual([`peer ${url} has another peer list: aaaaaaaaaaaa vs ${helloOf(LOCAL).peersHash} here (3 peers vs 2): check PEERCACHE_PEERS / discovery (every process must list the same peers, written the same way)`])
    h.shake.close()
  })

  it('takes a 401 to an unsigned hello as a secret only the peer has, and a bare 404 as a peer that cannot handshake', async () => {
    const h = handshake()
    answer = 404
    await shakeOnce(h)
    expect(h.warns).toEqual([])
    answer = 401
    await shakeOnce(h)
    expect(h.warns).toEqual([`peer ${url} requires signed requests and this process has no secret: PEERCACHE_SECRET differs (set the same secret everywhere)`])
    h.shake.close()
  })
})
