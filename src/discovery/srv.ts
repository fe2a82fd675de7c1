/**
 * srv: peers from SRV records, each a peer at its target's addresses and its
 * port, so the URLs have the same form (an address) as `self` derived from
 * POD_IP. A target whose name does not resolve in time (no address record,
 * NXDOMAIN, no answer) is left out and the others are the peers: one pod
 * whose record lags must not hide the whole cluster. Each target left out
 * is logged once per streak, and once more when it resolves again.
 */
import type { Resolver } from 'node:dns/promises'
import { isIP } from 'node:net'
import { DiscoveryError } from '../errors.js'
import type { Logger } from '../logger.js'
import { resolveAddresses } from './addresses.js'
import { answersOf, firstError, gather, type Outcome } from './gather.js'
import { peerUrl } from './self.js'

/** SrvLookup asks for the SRV records of one name and remembers which targets it left out. */
export class SrvLookup {
  readonly #name: string
  readonly #protocol: string
  readonly #logger: Logger
  /** Targets left out by the last good lookup: warned once, until they resolve again. */
  #missing = new Set<string>()

  constructor(name: string, protocol: string, logger: Logger) {
    this.#name = name
    this.#protocol = protocol
    this.#logger = logger
  }

  /** peers returns the URLs of every SRV target that resolved in time; rejects when none did. */
  async peers(resolver: Resolver, patience: Promise<void>): Promise<string[]> {
    const records = await resolver.resolveSrv(this.#name)
    const outcomes = await gather(
      records.map(async (record) => {
        const addresses = isIP(record.name) === 0 ? await resolveAddresses(resolver, record.name, patience) : [record.name]
        return addresses.map((address) => peerUrl(this.#protocol, address, record.port))
      }),
      patience,
    )
    const peers = answersOf(outcomes)
    if (records.length > 0 && peers.length === 0) {
      throw new DiscoveryError(`no SRV target of ${this.#name} resolved (${records.map((r) => r.name).join(', ')})`, { cause: firstError(outcomes, 'SRV targets') })
    }
    this.#report(records.map((record) => record.name), outcomes)
    return peers
  }

  /** #report logs the targets newly left out (warn) and the ones back (info). */
  #report(targets: readonly string[], outcomes: ReadonlyArray<Outcome<string>>): void {
    const missing = new Map<string, unknown>()
    targets.forEach((target, i) => {
      const outcome = outcomes[i]
      if (outcome === undefined) missing.set(target, 'no answer in time')
      else if ('error' in outcome) missing.set(target, outcome.error)
      else if (outcome.answer.length === 0) missing.set(target, 'no address')
    })
    for (const [target, err] of missing) {
      if (!this.#missing.has(target)) this.#logger.warn({ target, err, source: this.#name }, 'SRV target has no address in time; left out of the peer list')
    }
    for (const target of this.#missing) {
      if (!missing.has(target) && targets.includes(target)) this.#logger.info({ target, source: this.#name }, 'SRV target resolves again')
    }
    this.#missing = new Set(missing.keys())
  }
}
