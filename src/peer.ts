/**
 * peer: what a Group needs from the network, and nothing more. A group asks
 * a PeerPicker who owns a key and, when another process does, asks that
 * Peer for the value. The HTTP implementation lives in src/peers/; tests and
 * embedders may plug in their own.
 */
import type { CacheEntry } from './cache.js'

/**
 * PeerEntry is a value as a peer answered it: the entry, and the key's
 * request rate at its owner (`minute_qps`, requests per second) when the
 * owner told it (peercache owners do, Go peers do not).
 */
export interface PeerEntry extends CacheEntry {
  readonly minuteQps?: number
}

/** PeerRequestOptions bound one request to a peer. */
export interface PeerRequestOptions {
  /** Aborts the request (the client adds its own timeout on top). */
  signal?: AbortSignal
}

/**
 * PeerGetOptions are a get's: its bounds; `coalesce` lets gets of the same
 * tick share a batch; `fresh` (a revalidation: this process holds an expired
 * copy) asks the owner for a fresh value, never its stale copy (it is sent
 * alone); `headers` are extra request headers (trace context, tracing.ts).
 */
export interface PeerGetOptions extends PeerRequestOptions {
  coalesce?: boolean
  fresh?: boolean
  /** Extra request headers (trace context, tracing.ts); a Peer may ignore them. */
  headers?: Readonly<Record<string, string>>
}

/** Peer is another process that owns part of the key space. */
export interface Peer {
  /** The peer's base URL, as it stands in the peer list. */
  readonly url: string
  /**
   * get fetches key of group from this peer. It rejects with NotFoundError or
   * LoadError when the owner's loader gave that final answer, and with a
   * PeerError for anything that is the transport's fault.
   */
  get(group: string, key: string, options: PeerGetOptions): Promise<PeerEntry>
  /** getMany fetches several keys at once; the map holds each key's entry or its (final) error. */
  getMany(group: string, keys: readonly string[], options: PeerRequestOptions): Promise<Map<string, CacheEntry | Error>>
  /** set stores an entry at this peer (it owns the key). */
  set(group: string, key: string, entry: CacheEntry, options: PeerRequestOptions): Promise<void>
  /** remove drops key from this peer's caches. */
  remove(group: string, key: string, options: PeerRequestOptions): Promise<void>
  /** peek returns key's entry if this peer holds it in cache (never loading), else undefined. Optional: Go peers cannot. */
  peek?(group: string, key: string, options: PeerRequestOptions): Promise<CacheEntry | undefined>
  /** clear drops every entry of group from this peer's caches (peercache-only). */
  clear(group: string, options: PeerRequestOptions): Promise<void>
}

/** PeerPicker chooses the peer that owns a key. */
export interface PeerPicker {
  /** pickPeer returns the owner of key, or null when this process owns it (or has no peers). */
  pickPeer(key: string): Peer | null
  /** others lists every other peer (to spread removals). */
  others(): readonly Peer[]
  /**
   * previousOwner returns the live peer most likely to hold key in cache when this process must load it (the
   * owner before the last ring change, or the owner our ring names when a peer with another ring asked us); else null.
   */
  previousOwner?(key: string): Peer | null
  /**
   * pastOwners lists key's owners in the past peer lists still peeked (self excluded, whatever their health): a
   * write of key reaches them before its owner, whose loads may peek them (group/writes.ts).
   */
  pastOwners?(key: string): readonly Peer[]
  /**
   * peekable lists the peers that only past peer lists still name (a peer that left may be draining): they may
   * still be peeked or asked, so writes reach them too.
   */
  peekable?(): readonly Peer[]
}

/** NO_PEERS is the picker of a process that runs alone: it owns every key. */
export const NO_PEERS: PeerPicker = { pickPeer: () => null, others: () => [] }
