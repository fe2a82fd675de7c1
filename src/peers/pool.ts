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
 */
import type { Peer, PeerPicker } from '../peer.js'
import { HashRing, type RingOptions } from '../ring.js'
import { HttpPeer, type HealthListener, type PeerClientOptions } from './client.js'

/** PeerPoolOptions configure a pool. */
export interface PeerPoolOptions {
  self: string
  peers: readonly string[]
  ring: RingOptions
  client: PeerClientOptions
  listener: HealthListener
  random: () => number
}

/** Routing is one immutable generation of the peer list: swapped whole by setPeers. */
interface Routing {
  ring: HashRing
  peers: Map<string, HttpPeer>
}

/** PeerPool picks the owner of a key among the configured peers. */
export class PeerPool implements PeerPicker {
  readonly self: string
  readonly #options: PeerPoolOptions
  #routing: Routing
  readonly #accept = (url: string): boolean => url === this.self || (this.#routing.peers.get(url)?.health.up ?? false)

  constructor(options: PeerPoolOptions) {
    this.self = options.self
    this.#options = options
    this.#routing = this.#build(options.peers, new Map())
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
    this.#routing = this.#build(peers, previous.peers)
    for (const [url, peer] of previous.peers) {
      if (!this.#routing.peers.has(url)) void peer.close()
    }
  }

  /** close closes every client. Idempotent. */
  async close(): Promise<void> {
    await Promise.all(this.others().map((peer) => peer.close()))
  }

  #build(peers: readonly string[], reuse: Map<string, HttpPeer>): Routing {
    const ring = new HashRing(peers, this.#options.ring)
    const clients = new Map<string, HttpPeer>()
    for (const url of ring.peers) {
      if (url === this.self) continue
      clients.set(url, reuse.get(url) ?? new HttpPeer(url, this.#options.client, this.#options.listener, this.#options.random))
    }
    return { ring, peers: clients }
  }
}
