/**
 * pool: PeerPool is the PeerPicker of a clustered Peercache. It holds the
 * ring over the static peer list and one HttpPeer per other peer, and routes
 * around peers marked down.
 *
 * Failover choice: a key whose owner is down goes to the next live peer on
 * the ring, not to a local load. Every survivor walks the same ring and skips
 * the same dead peer, so they still agree on one owner per key and the
 * cluster still loads each key once (a local load would cost one origin load
 * per process). A peer that disagrees about who is down at worst sends the
 * key to a peer that serves it by loading locally (servers never forward).
 *
 * Rolling deploys: after a change, the replaced generations (their rings and
 * clients, also those of peers that left and may still be draining) are
 * kept for `peekWindowMs` (generations.ts), so that a new owner can peek a
 * key's previous owner (previous.ts).
 */
import type { Peer, PeerPicker } from '../peer.js'
import { HashRing, type RingOptions } from '../ring.js'
import { HttpPeer, type HealthListener, type PeerClientOptions } from './client.js'
import { PastGenerations, type Generation } from './generations.js'
import { DEFAULTS } from '../options.js'

/** PeerPoolOptions configure a pool. */
export interface PeerPoolOptions {
  self: string
  peers: readonly string[]
  ring: RingOptions
  client: PeerClientOptions
  listener: HealthListener
  random: () => number
  /** How long after a change the previous owners are peeked, in ms. @default 60000 */
  peekWindowMs?: number
  /** Monotonic clock in ms. @default performance.now */
  now?: () => number
}


/** Routing is one immutable generation of the peer list: swapped whole by setPeers. */
type Routing = Generation

/** PeerPool picks the owner of a key among the configured peers. */
export class PeerPool implements PeerPicker {
  readonly self: string
  readonly #options: PeerPoolOptions
  #routing: Routing
  readonly #past: PastGenerations
  readonly #accept = (url: string): boolean => url === this.self || (this.#routing.peers.get(url)?.health.up ?? false)

  constructor(options: PeerPoolOptions) {
    this.self = options.self
    this.#options = options
    this.#past = new PastGenerations(options.peekWindowMs ?? DEFAULTS.deploy.peekWindowMs)
    this.#routing = this.#build(options.peers, undefined)
  }

  /** pickPeer returns the live owner of key, or null when this process owns it. */
  pickPeer(key: string): Peer | null {
    const routing = this.#routing
    const owner = routing.ring.pick(key)
    if (owner === undefined || owner === this.self) return null
    const peer = routing.peers.get(owner)
    if (peer !== undefined && peer.health.up) return peer
    const fallback = routing.ring.pickWhere(key, this.#accept)
    if (fallback === undefined || fallback === this.self) return null
    return routing.peers.get(fallback) ?? null
  }

  /**
   * previousOwner returns the peer most likely to hold key in cache when
   * this process is about to load it, or null:
   *  - when our ring names another owner (a peer whose ring is ahead of or
   *    behind ours asked us), that owner;
   *  - else the key's owner in the newest recent past generation that names another peer (generations.ts).
   * Only another live peer qualifies: a peek must not wait on a dead one.
   */
  previousOwner(key: string): Peer | null {
    const routing = this.#routing
    const owner = routing.ring.pick(key)
    if (owner !== undefined && owner !== this.self) {
      const peer = routing.peers.get(owner)
      return peer !== undefined && peer.health.up ? peer : null
    }
    return this.#past.ownerBefore(key, this.self, owner, routing, this.#now())
  }

  /** ring is the current generation's ring (immutable: a change swaps in a new one), for status reports. */
  get ring(): HashRing {
    return this.#routing.ring
  }

  /** pastOwners lists key's owners in the past generations still peeked (generations.ts), whatever their health. */
  pastOwners(key: string): HttpPeer[] {
    return this.#past.ownersBefore(key, this.self, this.#routing, this.#now())
  }

  /** peekable lists the peers only the past generations still peeked name (left, perhaps draining). */
  peekable(): HttpPeer[] {
    return this.#past.departed(this.#routing, this.#now())
  }

  /** peers lists every other peer of the current generation. */
  others(): HttpPeer[] {
    return [...this.#routing.peers.values()]
  }

  /** peerList is the whole current peer list, self included, sorted. */
  peerList(): readonly string[] {
    return this.#routing.ring.peers
  }

  /**
   * setPeers swaps in a new ring atomically. Gets in flight keep the peer
   * they picked; clients of peers that stay are reused (their connections and
   * health carry over), clients of peers that left are closed.
   */
  setPeers(peers: readonly string[]): void {
    const previous = this.#routing
    // The same list again (a discovery refresh) is no change: it must not push a generation.
    if (sameList(previous.ring.peers, peers)) return
    this.#routing = this.#build(peers, previous)
    this.#past.push(previous, this.#routing, this.#now())
  }

  /** close closes every client. Idempotent. */
  async close(): Promise<void> {
    await Promise.all([...this.others(), ...this.#past.clients()].map((peer) => peer.close()))
  }

  #now(): number {
    return this.#options.now === undefined ? performance.now() : this.#options.now()
  }

  /** #build makes the routing of `peers`, reusing what the previous generation has for the peers that stay: their clients and their ring points. */
  #build(peers: readonly string[], previous: Routing | undefined): Routing {
    const ring = new HashRing(peers, this.#options.ring, previous?.ring)
    const clients = new Map<string, HttpPeer>()
    for (const url of ring.peers) {
      if (url === this.self) continue
      clients.set(url, previous?.peers.get(url) ?? new HttpPeer(url, this.#options.client, this.#options.listener, this.#options.random))
    }
    return { ring, peers: clients }
  }
}

/** sameList tells whether peers, sorted and deduplicated, equal the ring's (sorted) list. */
function sameList(sorted: readonly string[], peers: readonly string[]): boolean {
  const other = [...new Set(peers)].sort()
  return other.length === sorted.length && other.every((peer, i) => peer === sorted[i])
}
