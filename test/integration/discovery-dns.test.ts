/**
 * DNS discovery against a real DNS server (test/helpers/dns-server.ts: dnsmasq
 * when installed, else a pure-JS server; PEERCACHE_TEST_DNS forces either):
 * child-process peers on 127.0.0.2, 127.0.0.3, … share one port and find
 * each other through the A records of one name, as pods behind a Kubernetes
 * headless Service do. The cluster scales 3 → 4 → 2 by rewriting the DNS
 * answer alone; owners, values and origin loads are checked at each step.
 * The test process is a member that DNS does not list: it asks the peers and
 * owns nothing (its loader throws if it is ever called).
 */
import { createSocket } from 'node:dgram'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { HashRing, Peercache, type Logger } from '../../src/index.js'
import { DnsChild, freeSharedPort, waitForPeers } from '../helpers/dns-cluster.js'
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js'
import { recordingLogger } from '../helpers/recording-logger.js'

const NAME = 'peers.test'
const ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']

let dns: TestDnsServer
/** The same server, by a name that does not clash with the option field `dns`. */
let server: TestDnsServer
let port: number
let client: Peercache | undefined
const children = new Map<string, DnsChild>()

beforeAll(async () => {
  dns = await startDnsServer()
  server = dns
  port = await freeSharedPort(ADDRESSES)
})

afterAll(async () => {
  await client?.close()
  await Promise.all([...children.values()].map((child) => child.stop('SIGKILL')))
  await dns?.stop()
})

const urlOf = (address: string): string => `http://${address}:${port}`

async function startChildren(addresses: readonly string[]): Promise<void> {
  await Promise.all(
    addresses.map(async (address, i) => {
      const child = await DnsChild.start({ tag: `p${address.split('.')[3]}`, address, port, dnsName: NAME, dnsServer: dns.server })
      children.set(urlOf(address), child)
      return i
    }),
  )
}

/** setDns makes the name answer `addresses` and waits until every running member and the client see exactly that list. */
async function setDns(addresses: readonly string[]): Promise<string[]> {
  await dns.setHosts({ [NAME]: addresses })
  const urls = addresses.map(urlOf)
  const running = [...children.values()].filter((child) => child.process.exitCode === null && child.process.signalCode === null)
  await Promise.all(running.map((child) => child.waitForPeers(urls)))
  if (client !== undefined) await waitForPeers(client, urls)
  return urls
}

function totalLoads(): number {
  return [...children.values()].reduce((sum, child) => sum + child.loads.length, 0)
}

/**
 * loadsReported waits until the children have reported at least n loads: a
 * child writes its LOAD line before it answers, but the answer can reach us
 * before the line does (different pipes).
 */
async function loadsReported(n: number): Promise<void> {
  const running = [...children.values()].filter((child) => child.process.exitCode === null && child.process.signalCode === null)
  await Promise.any(running.map((child) => child.until(() => totalLoads() >= n, `${n} loads reported`)))
}

/** peekAt asks a peer's peek endpoint whether it holds key (cache only). */
async function holds(url: string, key: string): Promise<boolean> {
  const response = await fetch(`${url}/_peercache/peek/kv/${encodeURIComponent(key)}`)
  await response.arrayBuffer()
  return response.status === 200
}

describe('discovery through DNS', () => {
  it('scales a 3-process cluster to 4 and back to 2 through DNS alone', { timeout: 240_000 }, async () => {
    const three = ADDRESSES.slice(0, 3)
    await dns.setHosts({ [NAME]: three })
    await startChildren(three)
    const urls3 = await setDns(three)
    client = new Peercache({ env: {}, self: 'http://127.0.0.1:1', discovery: { dns: NAME, port, servers: [dns.server], intervalMs: 100 }, hotCacheProbability: 0, transport: { timeoutMs: 10_000 } })
    const group = client.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => Promise.reject(new Error(`the client owns nothing, yet loaded ${key}`)) })
    await waitForPeers(client, urls3)

    // 3 peers: every key comes from its owner's loader, loaded once.
    const ring3 = new HashRing(urls3)
    const keysA = Array.from({ length: 60 }, (_, i) => `a-${i}`)
    const valuesA = await Promise.all(keysA.map((key) => group.getString(key)))
    keysA.forEach((key, i) => expect(valuesA[i]).toBe(`${children.get(ring3.pick(key)!)!.tag}:${key}`))
    await loadsReported(keysA.length)
    for (const [url, child] of children) expect(new Set(child.loads)).toEqual(new Set(keysA.filter((key) => ring3.pick(key) === url)))
    expect(totalLoads()).toBe(keysA.length)

    // A fourth process starts before DNS lists it: it serves, sees the others, owns nothing.
    await startChildren([ADDRESSES[3]!])
    const fourth = children.get(urlOf(ADDRESSES[3]!))!
    await fourth.waitForPeers(urls3)

    // DNS lists it: the ring has 4 peers everywhere; the keys it now owns move without an origin query.
    const urls4 = await setDns(ADDRESSES)
    const ring4 = new HashRing(urls4)
    const moved = keysA.filter((key) => ring4.pick(key) === fourth.url)
    expect(moved.length).toBeGreaterThan(0)
    expect(await Promise.all(keysA.map((key) => group.getString(key)))).toEqual(valuesA)
    expect(totalLoads()).toBe(keysA.length)
    for (const key of moved) expect(await holds(fourth.url, key)).toBe(true)
    const keysB = Array.from({ length: 60 }, (_, i) => `b-${i}`)
    const valuesB = await Promise.all(keysB.map((key) => group.getString(key)))
    keysB.forEach((key, i) => expect(valuesB[i]).toBe(`${children.get(ring4.pick(key)!)!.tag}:${key}`))
    await loadsReported(keysA.length + keysB.length)
    expect(fourth.loads).toEqual(expect.arrayContaining(keysB.filter((key) => ring4.pick(key) === fourth.url)))
    expect(totalLoads()).toBe(keysA.length + keysB.length)

    // Back to 2: the two processes DNS drops stop owning keys; the survivors take them over from their caches.
    const two = [ADDRESSES[0]!, ADDRESSES[3]!]
    const urls2 = await setDns(two)
    const ring2 = new HashRing(urls2)
    const all = [...keysA, ...keysB]
    expect(await Promise.all(all.map((key) => group.getString(key)))).toEqual([...valuesA, ...valuesB])
    expect(totalLoads()).toBe(all.length)
    // The dropped processes stop (their loads stay counted).
    await Promise.all(urls4.filter((url) => !urls2.includes(url)).map((url) => children.get(url)!.stop()))
    for (const key of all) expect(await holds(ring2.pick(key)!, key)).toBe(true)
    const keysC = Array.from({ length: 40 }, (_, i) => `c-${i}`)
    const valuesC = await Promise.all(keysC.map((key) => group.getString(key)))
    keysC.forEach((key, i) => expect(valuesC[i]).toBe(`${children.get(ring2.pick(key)!)!.tag}:${key}`))
    await loadsReported(all.length + keysC.length)
    expect(totalLoads()).toBe(all.length + keysC.length)
    expect(group.stats().peerErrors).toBe(0)
  })
})

describe('DNS answers and failures', () => {
  const SELF = 'http://127.0.0.1:1'
  let cache: Peercache | undefined
  afterEach(async () => {
    await cache?.close()
    cache = undefined
  })

  function watch(dns: { dns: string; port?: number; srv?: boolean }, logger?: Logger): Peercache {
    cache = new Peercache({ env: {}, self: SELF, discovery: { ...dns, servers: [server.server], intervalMs: 50, timeoutMs: 500 }, ...(logger ? { logger } : {}) })
    return cache
  }

  it('A and AAAA records: IPv6 peers are written in brackets', async () => {
    await server.setHosts({ 'mixed.test': ['127.0.0.2', '::1'] })
    const c = watch({ dns: 'mixed.test', port: 8080 })
    await waitForPeers(c, ['http://127.0.0.2:8080', 'http://[::1]:8080'])
  })

  it('SRV records give each peer its host and port', async () => {
    await server.setHosts({ 'p1.srv.test': ['127.0.0.2'], 'p2.srv.test': ['127.0.0.3'] })
    await server.setSrv('_peercache._tcp.srv.test', [{ target: 'p1.srv.test', port: 7001 }, { target: 'p2.srv.test', port: 7002 }])
    const c = watch({ dns: '_peercache._tcp.srv.test', srv: true })
    await waitForPeers(c, ['http://127.0.0.2:7001', 'http://127.0.0.3:7002'])
    await server.setSrv('_peercache._tcp.srv.test', [{ target: 'p2.srv.test', port: 7002 }])
    await waitForPeers(c, ['http://127.0.0.3:7002'])
  })

  it('SRV targets without an address are left out, warned once; the others are the peers, and a target that resolves again joins', async () => {
    const name = '_peercache._tcp.part.test'
    await server.setHosts({ 'p1.part.test': ['127.0.0.2'], 'p2.part.test': ['127.0.0.3'] })
    await server.setSrv(name, [{ target: 'p1.part.test', port: 7001 }, { target: 'p2.part.test', port: 7002 }, { target: 'p3.part.test', port: 7003 }])
    const { warns, infos, logger } = recordingLogger()
    const c = watch({ dns: name, srv: true }, logger)
    await waitForPeers(c, ['http://127.0.0.2:7001', 'http://127.0.0.3:7002'])
    await server.waitForQueries('p3.part.test', 3)
    expect(c.peers).toEqual(['http://127.0.0.2:7001', 'http://127.0.0.3:7002'])
    expect(warns.filter((m) => m.includes('discovery failed'))).toEqual([])
    expect(warns.filter((m) => m.includes('SRV target'))).toHaveLength(1)
    await server.setHosts({ 'p1.part.test': ['127.0.0.2'], 'p2.part.test': ['127.0.0.3'], 'p3.part.test': ['127.0.0.4'] })
    await waitForPeers(c, ['http://127.0.0.2:7001', 'http://127.0.0.3:7002', 'http://127.0.0.4:7003'])
    expect(infos.filter((m) => m.includes('SRV target'))).toHaveLength(1)
  })

  it('a failed lookup, an empty answer or a dead server keeps the last good list, logged once per streak', async () => {
    await server.setHosts({ 'flaky.test': ['127.0.0.2', '127.0.0.3'] })
    const { warns, infos, logger } = recordingLogger()
    const c = watch({ dns: 'flaky.test', port: 8080 }, logger)
    const good = ['http://127.0.0.2:8080', 'http://127.0.0.3:8080']
    await waitForPeers(c, good)
    // The name disappears: several refreshes fail, the list stays.
    await server.setHosts({})
    await server.waitForQueries('flaky.test', 3)
    expect(c.peers).toEqual(good)
    // The server goes silent: a socket on its port takes the queries and never answers (timeouts).
    await server.pause()
    const silent = createSocket('udp4')
    await new Promise<void>((resolve) => silent.bind(server.port, '127.0.0.1', resolve))
    await new Promise<void>((resolve) => {
      let queries = 0
      silent.on('message', () => ++queries === 3 && resolve())
    })
    await new Promise<void>((resolve) => silent.close(resolve))
    expect(c.peers).toEqual(good)
    await server.resume()
    await server.waitForQueries('flaky.test', 2)
    expect(c.peers).toEqual(good)
    expect(warns.filter((m) => m.includes('discovery failed'))).toHaveLength(1)
    // Answers again, with a change.
    await server.setHosts({ 'flaky.test': ['127.0.0.4'] })
    await waitForPeers(c, ['http://127.0.0.4:8080'])
    expect(infos.filter((m) => m.includes('answers again'))).toHaveLength(1)
  })
})
