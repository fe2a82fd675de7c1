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
 * Rolling deploys: after a change, the previous generation (its ring and its
 * clients, also those of peers that left and may still be draining) is kept
 * for `peekWindowMs`, so that a new owner can peek a key's previous owner
 * (previous.ts). Its clients are closed when the window ends or the next
 * change replaces it.
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
  /** How long after a change the previous owners are peeked, in ms. @default 60000 */
  peekWindowMs?: number
  /** Monotonic clock in ms. @default performance.now */
  now?: () => number
}

/** Previous is the generation a change replaced, kept for peeking until `until`. */
interface Previous extends Routing {
  until: number
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
  #previous: Previous | undefined
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

  /**
   * previousOwner returns the key's owner in the generation before the last
   * change, while the change is recent, if that owner is another live peer
   * and not the key's current owner (which was asked already); else null.
   */
  previousOwner(key: string): Peer | null {
    const previous = this.#previous
    if (previous === undefined) return null
    if (this.#now() >= previous.until) {
      this.#dropPrevious()
      return null
    }
    const owner = previous.ring.pick(key)
    if (owner === undefined || owner === this.self || owner === this.#routing.ring.pick(key)) return null
    const peer = previous.peers.get(owner)
    return peer !== undefined && peer.health.up ? peer : null
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
    // The same list again (a discovery refresh) is no change: it must not replace the generation peeks read.
    if (sameList(previous.ring.peers, peers)) return
    this.#dropPrevious()
    this.#routing = this.#build(peers, previous.peers)
    this.#previous = { ...previous, until: this.#now() + (this.#options.peekWindowMs ?? 60_000) }
  }

  /** close closes every client. Idempotent. */
  async close(): Promise<void> {
    const previous = [...(this.#previous?.peers.values() ?? [])]
    await Promise.all([...this.others(), ...previous].map((peer) => peer.close()))
  }

  /** #dropPrevious forgets the previous generation and closes its clients that the current one does not use. */
  #dropPrevious(): void {
    const previous = this.#previous
    this.#previous = undefined
    for (const [url, peer] of previous?.peers ?? []) {
      if (this.#routing.peers.get(url) !== peer) void peer.close()
    }
  }

  #now(): number {
    return this.#options.now === undefined ? performance.now() : this.#options.now()
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

/** sameList tells whether peers, sorted and deduplicated, equal the ring's (sorted) list. */
function sameList(sorted: readonly string[], peers: readonly string[]): boolean {
  const other = [...new Set(peers)].sort()
  return other.length === sorted.length && other.every((peer, i) => peer === sorted[i])
}
