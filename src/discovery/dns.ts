/**
 * dns: a PeerLookup that reads the peer list from DNS, through one node:dns
 * Resolver per Peercache (its own servers, its own timeout, nothing shared
 * with the rest of the process).
 *
 *  - A/AAAA: every address of the name is a peer at `port` (addresses.ts:
 *    each family's answer counts on its own);
 *  - SRV: every target that resolves is a peer at its port (srv.ts).
 *
 * A lookup waits for every answer until its patience (3/4 of the refresh
 * deadline) is over, then uses what answered: a family or a target that is
 * silent must not fail a refresh that has peers to give.
 *
 * Refreshes never overlap (refresher.ts), which is what makes cancelling the
 * Resolver's queries safe, on abort and at the end of each lookup (a family
 * left unanswered): they are all this refresh's.
 */
import { Resolver } from 'node:dns/promises'
import { ConfigError } from '../errors.js'
import { noopLogger, type Logger } from '../logger.js'
import { resolveAddresses } from './addresses.js'
import type { DnsDiscovery, PeerLookup } from './options.js'
import { DEFAULTS } from '../options.js'
import { peerUrl } from './self.js'
import { SrvLookup } from './srv.js'

/** Per-query timeout of the Resolver (ms) and its tries: a refresh's whole deadline is the refresher's. */
const QUERY_TIMEOUT_MS = 1000
const QUERY_TRIES = 2
/** Share of the refresh deadline a lookup waits for every answer before it uses the ones it has. */
const PATIENCE_SHARE = 0.75

/** dnsLookup returns the PeerLookup of a DNS discovery option; `logger` hears of SRV targets left out. */
export function dnsLookup(options: DnsDiscovery, logger: Logger = noopLogger()): PeerLookup {
  const resolver = new Resolver({ timeout: QUERY_TIMEOUT_MS, tries: QUERY_TRIES })
  if (options.servers !== undefined) resolver.setServers([...options.servers])
  const protocol = options.protocol ?? 'http'
  const patienceMs = Math.floor((options.timeoutMs ?? DEFAULTS.discovery.timeoutMs) * PATIENCE_SHARE)
  if (options.srv === true) {
    const srv = new SrvLookup(options.dns, protocol, logger)
    return (ctx) => bounded(resolver, ctx.signal, patienceMs, (patience) => srv.peers(resolver, patience))
  }
  const port = options.port
  if (port === undefined) throw new ConfigError('discovery by A/AAAA records needs a port')
  return (ctx) =>
    bounded(resolver, ctx.signal, patienceMs, async (patience) => {
      const addresses = await resolveAddresses(resolver, options.dns, patience)
      return addresses.map((address) => peerUrl(protocol, address, port))
    })
}

/**
 * bounded runs one lookup's queries with its patience timer, cancels them
 * all if the signal aborts first, and cancels whatever is still unanswered
 * when the lookup ends. The timer is unref'd and cleared: nothing of a
 * lookup outlives it or keeps a process alive.
 */
async function bounded<T>(resolver: Resolver, signal: AbortSignal, patienceMs: number, run: (patience: Promise<void>) => Promise<T>): Promise<T> {
  signal.throwIfAborted()
  const cancel = (): void => resolver.cancel()
  let timer: NodeJS.Timeout | undefined
  const patience = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, patienceMs)
    timer.unref()
  })
  signal.addEventListener('abort', cancel, { once: true })
  try {
    return await run(patience)
  } finally {
    signal.removeEventListener('abort', cancel)
    clearTimeout(timer)
    resolver.cancel()
  }
}
