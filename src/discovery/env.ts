/**
 * env: the environment form of the `discovery` option, for deployments that
 * configure through variables (a Kubernetes Deployment, a Compose file):
 *
 *   PEERCACHE_DNS=peercache.default.svc.cluster.local:8080   A/AAAA records, peers on port 8080
 *   PEERCACHE_DNS_SRV=_peercache._tcp.peercache.default.svc.cluster.local   SRV records
 */
import { ConfigError } from '../errors.js'
import type { DnsDiscovery } from './options.js'

/** discoveryFromEnv reads PEERCACHE_DNS / PEERCACHE_DNS_SRV; undefined when neither is set. */
export function discoveryFromEnv(env: Record<string, string | undefined>): DnsDiscovery | undefined {
  const dns = env.PEERCACHE_DNS?.trim()
  const srv = env.PEERCACHE_DNS_SRV?.trim()
  if (dns && srv) throw new ConfigError('set PEERCACHE_DNS or PEERCACHE_DNS_SRV, not both')
  if (srv) return { dns: srv, srv: true }
  if (!dns) return undefined
  return parseNameAndPort(dns)
}

/** parseNameAndPort splits `name:port`, as PEERCACHE_DNS is written. */
function parseNameAndPort(value: string): DnsDiscovery {
  const colon = value.lastIndexOf(':')
  const name = value.slice(0, colon)
  const port = Number(value.slice(colon + 1))
  if (colon <= 0 || !isPort(port)) throw new ConfigError(`PEERCACHE_DNS must be name:port, got ${JSON.stringify(value)}`)
  return { dns: name, port }
}

/** isPort is true for a TCP port number, 1..65535. */
export function isPort(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535
}
