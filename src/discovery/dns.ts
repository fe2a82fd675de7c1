/**
 * dns: a PeerLookup that reads the peer list from DNS, through one node:dns
 * Resolver per Peercache (its own servers, its own timeout, nothing shared
 * with the rest of the process).
 *
 *  - A/AAAA: every address of the name is a peer at `port`.
 *  - SRV: every record is a peer at its target's addresses and its port, so
 *    the URLs have the same form (an address) as `self` derived from POD_IP.
 *
 * Refreshes never overlap (refresher.ts), which is what makes cancelling the
 * Resolver's queries on abort safe: they are all this refresh's.
 */
import { Resolver } from 'node:dns/promises'
import { isIP } from 'node:net'
import { ConfigError } from '../errors.js'
import type { DnsDiscovery, PeerLookup } from './options.js'
import { peerUrl } from './self.js'

/** Per-query timeout of the Resolver (ms) and its tries: a refresh's whole deadline is the refresher's. */
const QUERY_TIMEOUT_MS = 1000
const QUERY_TRIES = 2

/** dnsLookup returns the PeerLookup of a DNS discovery option. */
export function dnsLookup(options: DnsDiscovery): PeerLookup {
  const resolver = new Resolver({ timeout: QUERY_TIMEOUT_MS, tries: QUERY_TRIES })
  if (options.servers !== undefined) resolver.setServers([...options.servers])
  const protocol = options.protocol ?? 'http'
  if (options.srv === true) return (ctx) => cancelling(resolver, ctx.signal, () => srvPeers(resolver, options.dns, protocol))
  const port = options.port
  if (port === undefined) throw new ConfigError('discovery by A/AAAA records needs a port')
  return (ctx) => cancelling(resolver, ctx.signal, () => addressPeers(resolver, options.dns, protocol, port))
}

async function addressPeers(resolver: Resolver, name: string, protocol: string, port: number): Promise<string[]> {
  const addresses = await resolveAddresses(resolver, name)
  return addresses.map((address) => peerUrl(protocol, address, port))
}

async function srvPeers(resolver: Resolver, name: string, protocol: string): Promise<string[]> {
  const records = await resolver.resolveSrv(name)
  const lists = await Promise.all(
    records.map(async (record) => {
      const addresses = isIP(record.name) === 0 ? await resolveAddresses(resolver, record.name) : [record.name]
      return addresses.map((address) => peerUrl(protocol, address, record.port))
    }),
  )
  return lists.flat()
}

/**
 * resolveAddresses returns the A and AAAA addresses of name. One family
 * missing is normal (ENODATA); both failing is a failed lookup.
 */
export async function resolveAddresses(resolver: Resolver, name: string): Promise<string[]> {
  const [v4, v6] = await Promise.allSettled([resolver.resolve4(name), resolver.resolve6(name)])
  if (v4.status === 'rejected' && v6.status === 'rejected') throw v4.reason
  return [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])]
}

/** cancelling runs the queries and cancels them all if the signal aborts first. */
async function cancelling<T>(resolver: Resolver, signal: AbortSignal, run: () => Promise<T>): Promise<T> {
  const cancel = (): void => resolver.cancel()
  signal.addEventListener('abort', cancel, { once: true })
  try {
    return await run()
  } finally {
    signal.removeEventListener('abort', cancel)
  }
}
