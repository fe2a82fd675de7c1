/**
 * config: turns the `discovery` option (or PEERCACHE_DNS / PEERCACHE_DNS_SRV)
 * into what a Peercache runs: this process's URL, and the refresh loop's
 * source and timing. A static peer list and discovery exclude each other.
 */
import { ConfigError } from '../errors.js'
import { normalizePeerUrl } from '../config.js'
import { checkInteger } from '../inputs.js'
import type { Logger } from '../logger.js'
import { DEFAULTS } from '../options.js'
import { dnsLookup } from './dns.js'
import { discoveryFromEnv, isPort } from './env.js'
import { isDnsDiscovery, type DiscoveryOption, type PeerLookup } from './options.js'
import { deriveSelf } from './self.js'

/** DiscoveryInput is the part of the Peercache options discovery reads. */
export interface DiscoveryInput {
  discovery?: DiscoveryOption | undefined
  self?: string | undefined
  peers?: readonly string[] | undefined
  env?: Record<string, string | undefined>
  /** Hears what a lookup leaves out (SRV targets without an address). */
  logger?: Logger | undefined
}

/** ResolvedDiscovery is a discovery ready to run. */
export interface ResolvedDiscovery {
  self: string
  lookup: PeerLookup
  intervalMs: number
  timeoutMs: number
  /** What the logs call the source. */
  source: string
}

/** resolveDiscovery returns the discovery to run, or undefined when the peers are static. */
export function resolveDiscovery(input: DiscoveryInput): ResolvedDiscovery | undefined {
  const env = input.env ?? process.env
  const option = input.discovery ?? (input.peers === undefined ? discoveryFromEnv(env) : undefined)
  if (option === undefined) return undefined
  if (input.peers !== undefined) throw new ConfigError('set `peers` or `discovery`, not both')
  if (typeof option === 'function') return withTiming(option, {}, 'lookup function', givenSelf(input, env))
  if (option === null || typeof option !== 'object') throw new ConfigError('discovery must be { dns, port }, { lookup } or a function')
  if (!isDnsDiscovery(option)) {
    if (typeof option.lookup !== 'function') throw new ConfigError('discovery.lookup must be a function')
    return withTiming(option.lookup, option, 'lookup function', givenSelf(input, env))
  }
  checkDns(option.dns, option.port)
  const self = selfOf(input, env, option.port, option.protocol ?? 'http')
  return withTiming(dnsLookup(option, input.logger), option, option.dns, self)
}

function withTiming(lookup: PeerLookup, timing: { intervalMs?: number; timeoutMs?: number }, source: string, self: string): ResolvedDiscovery {
  const intervalMs = timing.intervalMs ?? DEFAULTS.discovery.intervalMs
  const timeoutMs = timing.timeoutMs ?? DEFAULTS.discovery.timeoutMs
  checkInteger('discovery.intervalMs', intervalMs, 1)
  checkInteger('discovery.timeoutMs', timeoutMs, 1)
  return { self, lookup, intervalMs, timeoutMs, source }
}

function checkDns(name: unknown, port: unknown): void {
  if (typeof name !== 'string' || name.trim() === '') throw new ConfigError('discovery.dns must be a DNS name')
  if (port !== undefined && !isPort(port)) throw new ConfigError(`discovery.port must be a port number, got ${String(port)}`)
}

/** givenSelf is the self a function-form discovery needs given: it has no port to derive one from. */
function givenSelf(input: DiscoveryInput, env: Record<string, string | undefined>): string {
  const raw = input.self ?? env.PEERCACHE_SELF?.trim()
  if (raw === undefined || raw === '') {
    throw new ConfigError('the function form of discovery needs `self` (or PEERCACHE_SELF): it has no port to derive one from')
  }
  return normalizePeerUrl(raw, 'discovery')
}

function selfOf(input: DiscoveryInput, env: Record<string, string | undefined>, port: number | undefined, protocol: 'http' | 'https'): string {
  const raw = input.self ?? deriveSelf({ env, port, protocol })
  return normalizePeerUrl(raw, 'discovery')
}
