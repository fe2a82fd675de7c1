/**
 * writes: how a write travels through the cluster. Each peer applies it to
 * its own caches through the group's local operations (`setLocal`,
 * `removeLocal`, `clearLocal`), which also detach the loads in flight, so a
 * load that started before the write cannot store its older value after it.
 *
 * The rule (a resolved write is a fence): once `set`, `delete` or `clear`
 * resolves, no process it reached answers a value older than the write —
 * not from a hot copy, not from a previous owner's peek, not from a load
 * that started before the write and lands after it. How each write keeps it:
 *
 * set and delete go against the flow of values. A key's value flows from
 * its previous owners (peeked by the new owner's loads during a deploy: the
 * pool keeps them, draining ones included, for `deploy.peekWindowMs`) into
 * its owner, and from the owner into every other process (gets, hot copies).
 * So the write reaches, each step after the one before has answered: the
 * key's past owners, then its owner, then every other peer (the current
 * list and the peers only past lists name, which may still be asked). When
 * a process drops the key, every process it could take the key from has
 * already dropped it and detached its loads, so a flight it starts
 * afterwards can only meet a load that started after the write. The writer
 * drops its own copy first and again once the owner answered (a get here may
 * have fetched the old value while the request travelled). This holds while
 * the processes agree on the peer list; a process whose list differs may
 * fetch the key from a peer the write has not reached yet.
 *
 * clear cannot go against the flow: every process owns some keys and asks
 * for others. It is fenced by a generation instead. Each group keeps a
 * clear generation (GroupState.generation); the clearer takes a new one,
 * above every generation it knows and at least its clock (ms), applies it,
 * and sends it with the clear to every peer (current and past lists). Every
 * request about the group carries the sender's generation (the `gen` query
 * parameter, peercache-only: Go peers route by the path and never read it),
 * and a process that sees a newer generation than its own applies that
 * clear before it answers (OwnerSide.fence). So a process that applied the
 * clear can fetch a value only from a process that applied it too, whose
 * loads in flight from before were detached and whose caches were dropped:
 * whatever reaches it was loaded after the clear, and the answer to a
 * request that left before this process applied the clear lands in a flight
 * the clear detached. The chain holds through any number of hops (a peek of
 * a draining peer, a hot copy answered on), and also for a process the
 * clearer could not reach, from the moment a cleared one asks it.
 * Generations follow the clearers' clocks, so two clears from different
 * processes at once are ordered as their clocks order them.
 */
import type { CacheEntry } from '../cache.js'
import type { Peer, PeerPicker } from '../peer.js'

/** WriteReport tells which peers a set or remove could not reach (they may still serve the old value until it expires or is evicted). */
export interface WriteReport {
  unreachable: Array<{ peer: string; error: Error }>
}

/** LocalStore is the part of a group a write changes in this process. */
export interface LocalStore {
  readonly name: string
  /** Stores entry in main (this process owns the key), detaching loads in flight. */
  setLocal(key: string, entry: CacheEntry): void
  /** Drops key from main and hot, detaching loads in flight. */
  removeLocal(key: string): void
  /** Drops every entry of main and hot, detaching every load in flight; adopts `generation` when it is newer. */
  clearLocal(generation?: number): void
  /** The group's clear generation here (GroupState.generation). */
  readonly generation: number
}

/** GroupWrites runs one group's writes across the cluster. */
export class GroupWrites {
  readonly #local: LocalStore
  readonly #picker: PeerPicker
  /** Epoch ms: the floor of a new clear generation. */
  readonly #clock: () => number

  constructor(local: LocalStore, picker: PeerPicker, clock: () => number) {
    this.#local = local
    this.#picker = picker
    this.#clock = clock
  }

  /**
   * set stores entry at key's owner (PUT, mailgun-compatible) after dropping
   * the key at its past owners, then drops every other peer's copy (the
   * order: file comment). Rejects if the owner cannot be reached.
   */
  async set(key: string, entry: CacheEntry, signal: AbortSignal | undefined): Promise<WriteReport> {
    const owner = this.#picker.pickPeer(key)
    this.#local.removeLocal(key)
    const past = this.#pastOwners(key, owner)
    const first = await this.#removeAt(past, key, signal)
    if (owner === null) this.#local.setLocal(key, entry)
    else {
      await owner.set(this.#local.name, key, entry, signalOption(signal))
      this.#local.removeLocal(key)
    }
    const rest = await this.#removeAt(this.#rest(owner, past), key, signal)
    return joined(first, rest)
  }

  /** remove drops key at its past owners, then its owner, then every other peer (DELETE), and reports the peers it could not reach. */
  async remove(key: string, signal: AbortSignal | undefined): Promise<WriteReport> {
    const owner = this.#picker.pickPeer(key)
    this.#local.removeLocal(key)
    const past = this.#pastOwners(key, owner)
    const first = await this.#removeAt(past, key, signal)
    const atOwner = await this.#removeAt(owner === null ? [] : [owner], key, signal)
    this.#local.removeLocal(key)
    const rest = await this.#removeAt(this.#rest(owner, past), key, signal)
    return joined(first, atOwner, rest)
  }

  /**
   * clear drops every entry of the group here and at every other peer
   * (peercache-only POST; a Go peer is reported, not cleared) under a new
   * clear generation (the fence: file comment), and reports the peers it
   * could not reach.
   */
  async clear(signal: AbortSignal | undefined): Promise<WriteReport> {
    this.#local.clearLocal(Math.max(this.#local.generation + 1, this.#clock()))
    const report = await reportEach(this.#everyPeer(), (peer) => peer.clear(this.#local.name, signalOption(signal)))
    // A get here may have fetched an old value while the clears travelled: drop it and its flight.
    this.#local.clearLocal()
    return report
  }

  /** key's owners in the past peer lists still peeked, but the current owner. */
  #pastOwners(key: string, owner: Peer | null): readonly Peer[] {
    const past = this.#picker.pastOwners?.(key) ?? []
    return owner === null ? past : past.filter((peer) => peer.url !== owner.url)
  }

  /** Every other peer a write reaches after the owner: the current list and the peers only past lists name, but those done. */
  #rest(owner: Peer | null, done: readonly Peer[]): Peer[] {
    const skip = new Set([owner?.url, ...done.map((peer) => peer.url)])
    return this.#everyPeer().filter((peer) => !skip.has(peer.url))
  }

  /** Every other peer that may still be asked: the current list, then the peers only past lists name. */
  #everyPeer(): Peer[] {
    const current = this.#picker.others()
    const urls = new Set(current.map((peer) => peer.url))
    return [...current, ...(this.#picker.peekable?.() ?? []).filter((peer) => !urls.has(peer.url))]
  }

  #removeAt(peers: readonly Peer[], key: string, signal: AbortSignal | undefined): Promise<WriteReport> {
    return reportEach(peers, (peer) => peer.remove(this.#local.name, key, signalOption(signal)))
  }
}

/** reportEach runs send on every peer at once and reports the peers whose request failed. */
export async function reportEach(peers: readonly Peer[], send: (peer: Peer) => Promise<void>): Promise<WriteReport> {
  if (peers.length === 0) return { unreachable: [] }
  const results = await Promise.allSettled(peers.map(send))
  const unreachable: WriteReport['unreachable'] = []
  results.forEach((result, i) => {
    if (result.status === 'rejected') unreachable.push({ peer: (peers[i] as Peer).url, error: result.reason as Error })
  })
  return { unreachable }
}

function joined(...reports: WriteReport[]): WriteReport {
  return { unreachable: reports.flatMap((report) => report.unreachable) }
}

function signalOption(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal === undefined ? {} : { signal }
}
