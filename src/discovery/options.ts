/**
 * options: the shapes of the `discovery` option. Peers find each other
 * through what the platform already runs — DNS (a Kubernetes headless
 * Service, a Compose service name, Consul) — or through any function that
 * returns the peer URLs, instead of a membership protocol of our own.
 */

/** DnsDiscovery names the DNS records that list the peers. */
export interface DnsDiscovery {
  /** The name to resolve: A/AAAA records of a service, or with `srv`, its SRV records. */
  dns: string
  /** The peers' port (A/AAAA), and this process's own port when `self` is derived. */
  port?: number
  /** Scheme of the peer URLs. @default 'http' */
  protocol?: 'http' | 'https'
  /** Read SRV records (host and port each) instead of A/AAAA. @default false */
  srv?: boolean
  /** Milliseconds between the end of one refresh and the start of the next. @default 5000 */
  intervalMs?: number
  /** Longest refresh, in ms: a slower answer counts as a failure. @default 2000 */
  timeoutMs?: number
  /** DNS servers to ask, e.g. `['127.0.0.1:5353']`. @default the system's */
  servers?: readonly string[]
}

/** PeerLookup is any source of peer base URLs (the Kubernetes API, Consul's HTTP API, a config service). */
export type PeerLookup = (context: { signal: AbortSignal }) => Promise<readonly string[]> | readonly string[]

/** LookupDiscovery is a PeerLookup with its own refresh timing. */
export interface LookupDiscovery {
  lookup: PeerLookup
  /** @default 5000 */
  intervalMs?: number
  /** @default 2000 */
  timeoutMs?: number
}

/** DiscoveryOption is the `discovery` option of a Peercache. */
export type DiscoveryOption = DnsDiscovery | PeerLookup | LookupDiscovery

/** isDnsDiscovery tells the DNS form from the lookup forms. */
export function isDnsDiscovery(option: DiscoveryOption): option is DnsDiscovery {
  return typeof option === 'object' && option !== null && 'dns' in option
}
