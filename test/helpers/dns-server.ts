/**
 * dns-server: the real DNS server the discovery tests run against, behind one
 * interface with two implementations:
 *
 *  - Debian's dnsmasq (test/helpers/dnsmasq.ts), when it is installed;
 *  - a pure-JS server on the npm package dns2 (test/helpers/js-dns-server.ts)
 *    otherwise, so `npm test` passes on a machine without dnsmasq.
 *
 * `PEERCACHE_TEST_DNS=js` or `=dnsmasq` forces one (dnsmasq forced but
 * missing is a failure that says how to install it, never a skip). Both
 * answer only what the test set, on a free 127.0.0.1 port, over UDP and TCP.
 */
import { Dnsmasq, dnsmasqInstalled } from './dnsmasq.js'
import { JsDnsServer } from './js-dns-server.js'

/** SrvRecord is one SRV answer: a target host (name or address) and its port. */
export interface SrvRecord {
  target: string
  port: number
}

/** TestDnsServer is a running DNS server a test controls: what it answers, whether it answers at all, what it was asked. */
export interface TestDnsServer {
  /** The UDP and TCP port it listens on (127.0.0.1); it stays the same across pause() and resume(). */
  readonly port: number
  /** The address to hand to discovery's `servers`. */
  readonly server: string
  /** setHosts makes name → addresses the A/AAAA answers (every other name: NXDOMAIN); resolves once they are served. */
  setHosts(records: Record<string, readonly string[]>): Promise<void>
  /** setSrv makes `records` the SRV answer of name (first = most preferred); resolves once it is served. */
  setSrv(name: string, records: readonly SrvRecord[]): Promise<void>
  /** waitForQueries resolves once the server has received `count` more A queries of name (from now). */
  waitForQueries(name: string, count: number): Promise<void>
  /** pause stops the server as if it was killed: its port refuses (lookups fail) until resume(). */
  pause(): Promise<void>
  /** resume starts it again on the same port with the same answers. */
  resume(): Promise<void>
  /** stop stops it for good and leaves no handle or file behind. Idempotent. */
  stop(): Promise<void>
}

/** DnsServerKind names the implementations `PEERCACHE_TEST_DNS` can force. */
export type DnsServerKind = 'dnsmasq' | 'js'

/**
 * startDnsServer starts the DNS server for a test: the one PEERCACHE_TEST_DNS
 * forces, else dnsmasq when it is installed, else the pure-JS one.
 */
export async function startDnsServer(env: NodeJS.ProcessEnv = process.env): Promise<TestDnsServer> {
  const kind = dnsServerKind(env)
  return kind === 'dnsmasq' ? Dnsmasq.start() : JsDnsServer.start()
}

/** dnsServerKind is the implementation startDnsServer picks under env. */
export function dnsServerKind(env: NodeJS.ProcessEnv = process.env): DnsServerKind {
  const forced = env.PEERCACHE_TEST_DNS
  if (forced === 'js' || forced === 'dnsmasq') return forced
  if (forced !== undefined && forced !== '') throw new Error(`PEERCACHE_TEST_DNS must be "js" or "dnsmasq" (or unset: dnsmasq when installed, else js), got "${forced}"`)
  return dnsmasqInstalled() ? 'dnsmasq' : 'js'
}
