/**
 * generations: the last few peer lists a pool replaced, kept for peeking
 * (rolling deploys). A key's new owner asks the key's owner in the most
 * recent past generation that named another live peer: during a rolling
 * restart a key can change hands twice before anyone asks for it (a peer
 * leaves, then another one), and its value still sits in the cache of the
 * owner two generations back.
 *
 * A generation is kept for `windowMs` after it was replaced, and at most
 * MAX_GENERATIONS are kept. The clients of peers that left stay open while a
 * generation that names them is kept (a leaving peer drains: it still answers
 * peeks), and are closed when the last such generation goes.
 */
import type { HashRing } from '../ring.js'
import type { HttpPeer } from './client.js'

/** Generation is one peer list: its ring and the clients of its peers (self excluded). */
export interface Generation {
  ring: HashRing
  peers: Map<string, HttpPeer>
}

interface Past extends Generation {
  /** Monotonic ms after which this generation is no longer peeked. */
  until: number
}

const MAX_GENERATIONS = 3

/** PastGenerations is the history a pool peeks into. */
export class PastGenerations {
  readonly #windowMs: number
  /** Newest first. */
  #past: Past[] = []

  constructor(windowMs: number) {
    this.#windowMs = windowMs
  }

  /** push records the generation `current` just replaced, and drops what falls out of the history. */
  push(replaced: Generation, current: Generation, now: number): void {
    this.#past.unshift({ ...replaced, until: now + this.#windowMs })
    this.#trim(current, now)
  }

  /**
   * ownerBefore returns the live client of key's owner in the newest past
   * generation whose owner is neither self nor `skip` (the current owner,
   * asked already), or null.
   */
  ownerBefore(key: string, self: string, skip: string | undefined, current: Generation, now: number): HttpPeer | null {
    this.#trim(current, now)
    for (const past of this.#past) {
      const owner = past.ring.pick(key)
      if (owner === undefined || owner === self || owner === skip) continue
      const peer = past.peers.get(owner)
      if (peer !== undefined && peer.health.up) return peer
    }
    return null
  }

  /**
   * ownersBefore lists the clients of key's owners in every kept past
   * generation, self excluded, whatever their health: the peers a load of
   * key may still peek, which a write of key must reach first.
   */
  ownersBefore(key: string, self: string, current: Generation, now: number): HttpPeer[] {
    this.#trim(current, now)
    const owners = new Set<HttpPeer>()
    for (const past of this.#past) {
      const owner = past.ring.pick(key)
      const peer = owner === undefined || owner === self ? undefined : past.peers.get(owner)
      if (peer !== undefined) owners.add(peer)
    }
    return [...owners]
  }

  /** departed lists the clients of the peers only the kept past generations name (they may be draining: still peeked). */
  departed(current: Generation, now: number): HttpPeer[] {
    this.#trim(current, now)
    const gone = new Set<HttpPeer>()
    for (const past of this.#past) for (const [url, peer] of past.peers) if (!current.peers.has(url)) gone.add(peer)
    return [...gone]
  }

  /** clients lists every client the history holds (to close them with the pool). */
  clients(): HttpPeer[] {
    return this.#past.flatMap((past) => [...past.peers.values()])
  }

  /** #trim drops expired and surplus generations and closes the clients nobody uses any more. */
  #trim(current: Generation, now: number): void {
    const kept = this.#past.filter((past, i) => i < MAX_GENERATIONS && past.until > now)
    if (kept.length === this.#past.length) return
    const dropped = this.#past.filter((past) => !kept.includes(past))
    this.#past = kept
    const inUse = new Set([...current.peers.values(), ...this.clients()])
    for (const past of dropped) for (const peer of past.peers.values()) if (!inUse.has(peer)) void peer.close()
  }
}
