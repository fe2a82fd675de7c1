/**
 * writes: how a write travels through the cluster. A group's `set`,
 * `remove` and `clear` change the owner first and then drop every other
 * peer's copy; each peer applies it to its own caches through the group's
 * local operations (`setLocal`, `removeLocal`, `clearLocal`), which also
 * detach the loads in flight so that a load that started before the write
 * cannot store its older value after it.
 *
 * A write that races a get is closed the same way everywhere: the writer
 * drops its own copy before sending and again after the owner answered,
 * because a get here may have fetched the old value while the request
 * travelled.
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
  /** Drops every entry of main and hot, detaching every load in flight. */
  clearLocal(): void
}

/** GroupWrites runs one group's writes across the cluster. */
export class GroupWrites {
  readonly #local: LocalStore
  readonly #picker: PeerPicker

  constructor(local: LocalStore, picker: PeerPicker) {
    this.#local = local
    this.#picker = picker
  }

  /**
   * set stores entry at key's owner (PUT, mailgun-compatible), then drops
   * every other peer's copy. Rejects if the owner cannot be reached.
   */
  async set(key: string, entry: CacheEntry, signal: AbortSignal | undefined): Promise<WriteReport> {
    const owner = this.#picker.pickPeer(key)
    this.#local.removeLocal(key)
    if (owner === null) this.#local.setLocal(key, entry)
    else {
      await owner.set(this.#local.name, key, entry, signalOption(signal))
      this.#local.removeLocal(key)
    }
    return this.#removeElsewhere(key, owner?.url, signal)
  }

  /** remove drops key at its owner, then at every other peer (DELETE), and reports the peers it could not reach. */
  async remove(key: string, signal: AbortSignal | undefined): Promise<WriteReport> {
    this.#local.removeLocal(key)
    const owner = this.#picker.pickPeer(key)
    const unreachable: WriteReport['unreachable'] = []
    if (owner !== null) {
      await owner.remove(this.#local.name, key, signalOption(signal)).catch((error: unknown) => {
        unreachable.push({ peer: owner.url, error: error as Error })
      })
      this.#local.removeLocal(key)
    }
    const rest = await this.#removeElsewhere(key, owner?.url, signal)
    return { unreachable: [...unreachable, ...rest.unreachable] }
  }

  /**
   * clear drops every entry of the group here and at every other peer
   * (peercache-only POST; a Go peer is reported, not cleared) and reports the
   * peers it could not reach. Loads in flight anywhere it reached do not
   * store their results.
   */
  async clear(signal: AbortSignal | undefined): Promise<WriteReport> {
    this.#local.clearLocal()
    const report = await reportEach(this.#picker.others(), (peer) => peer.clear(this.#local.name, signalOption(signal)))
    // A get here may have fetched an old value while the clears travelled: drop it and its flight.
    this.#local.clearLocal()
    return report
  }

  #removeElsewhere(key: string, skip: string | undefined, signal: AbortSignal | undefined): Promise<WriteReport> {
    const peers = this.#picker.others().filter((peer) => peer.url !== skip)
    return reportEach(peers, (peer) => peer.remove(this.#local.name, key, signalOption(signal)))
  }
}

/** reportEach runs send on every peer at once and reports the peers whose request failed. */
export async function reportEach(peers: readonly Peer[], send: (peer: Peer) => Promise<void>): Promise<WriteReport> {
  const results = await Promise.allSettled(peers.map(send))
  const unreachable: WriteReport['unreachable'] = []
  results.forEach((result, i) => {
    if (result.status === 'rejected') unreachable.push({ peer: (peers[i] as Peer).url, error: result.reason as Error })
  })
  return { unreachable }
}

function signalOption(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal === undefined ? {} : { signal }
}
