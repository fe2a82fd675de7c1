/**
 * self: which URL this process has in its peers' answers, when it is not
 * given. Peers are listed by the addresses DNS answers, so self must be this
 * process's address in the same form: `POD_IP` (Kubernetes' downward API),
 * else the address the hosts file gives `HOSTNAME` (Docker and Kubernetes
 * both write the container's own address there), with the discovery port.
 */
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { ConfigError } from '../errors.js'

/** SelfInput is what self derivation reads. */
export interface SelfInput {
  env: Record<string, string | undefined>
  port: number | undefined
  protocol: 'http' | 'https'
  /** The hosts file HOSTNAME is looked up in. @default '/etc/hosts' */
  hostsFile?: string
}

const MAX_HOSTS_BYTES = 1024 * 1024

/** deriveSelf returns this process's peer URL from PEERCACHE_SELF, POD_IP or HOSTNAME, or throws ConfigError. */
export function deriveSelf(input: SelfInput): string {
  const given = input.env.PEERCACHE_SELF?.trim()
  if (given) return given
  const address = ownAddress(input)
  if (input.port === undefined) throw new ConfigError('discovery needs a port (or PEERCACHE_SELF) to name this process')
  return peerUrl(input.protocol, address, input.port)
}

/** peerUrl writes a base URL, an IPv6 address in brackets. */
export function peerUrl(protocol: string, host: string, port: number): string {
  return `${protocol}://${isIP(host) === 6 ? `[${host}]` : host}:${port}`
}

function ownAddress(input: SelfInput): string {
  const podIp = input.env.POD_IP?.trim()
  if (podIp) return podIp
  const hostname = input.env.HOSTNAME?.trim()
  if (hostname) {
    if (isIP(hostname) !== 0) return hostname
    const file = input.hostsFile ?? '/etc/hosts'
    const hosts = readHosts(file)
    const found = addressInHosts(hosts, hostname)
    if (found !== undefined) return found
    const loopback = loopbackInHosts(hosts, hostname)
    if (loopback.length > 0) {
      throw new ConfigError(
        `discovery cannot name this process: HOSTNAME ${hostname} maps only to loopback (${loopback.join(', ')}) in ${file}, ` +
          'which other peers cannot reach, so it was skipped: set PEERCACHE_SELF (e.g. http://10.0.0.5:8080) or POD_IP to this machine\'s address',
      )
    }
  }
  throw new ConfigError('discovery cannot name this process: set PEERCACHE_SELF or POD_IP, or a HOSTNAME listed in the hosts file')
}

function readHosts(file: string): string {
  try {
    return readFileSync(file).subarray(0, MAX_HOSTS_BYTES).toString('utf8')
  } catch {
    return ''
  }
}

/** addressInHosts returns the first non-loopback address the hosts text gives name, or undefined. */
export function addressInHosts(hosts: string, name: string): string | undefined {
  return addressesInHosts(hosts, name).find((address) => !isLoopback(address))
}

/** loopbackInHosts lists the loopback addresses the hosts text gives name (skipped: other peers cannot reach them). */
function loopbackInHosts(hosts: string, name: string): string[] {
  return addressesInHosts(hosts, name).filter(isLoopback)
}

/** addressesInHosts lists every IP address the hosts text gives name, in order. */
function addressesInHosts(hosts: string, name: string): string[] {
  const found: string[] = []
  for (const line of hosts.split('\n')) {
    const [address, ...names] = line.replace(/#.*/, '').trim().split(/\s+/)
    if (address !== undefined && names.includes(name) && isIP(address) !== 0) found.push(address)
  }
  return found
}

function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1'
}
