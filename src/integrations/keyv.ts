/**
 * peercache/keyv: a Keyv storage adapter whose keys live spread over the
 * cluster, each in its owner's memory, so `new Keyv({ store })` (and
 * cache-manager and @nestjs/cache-manager, which sit on Keyv) share one
 * cache across every instance of the app without a Redis:
 *
 *   const store = new PeercacheStore(cache, { name: 'sessions', cacheBytes: 64 << 20 })
 *   const keyv = new Keyv({ store })
 *
 * It is a group without a loader: values come only from writes. `get` asks
 * the key's owner, which answers what it holds or not found (it loads
 * nothing); `set`, `delete` and `clear` reach the owner and drop the copies
 * elsewhere, as the group's own writes do. An owner that dies loses its keys,
 * as a Redis without persistence does: use it for what can be recomputed
 * (or use a loader-backed group, which recomputes it itself).
 *
 * Keyv's contract as this store keeps it: `ttl` in milliseconds (the owner
 * drops the entry then; Keyv also checks its own `expires`); values stored
 * as Keyv hands them (keyv-values.ts); Keyv's namespace is the `namespace:`
 * prefix Keyv puts on every key, so namespaces never collide, but `clear()`
 * drops the whole group, every namespace in it: give each namespace that
 * needs its own clear a group of its own. Failures that leave an old copy
 * somewhere (a peer the write did not reach) are emitted as `error` events,
 * which Keyv passes on; a write its owner did not take rejects. `setMany`
 * is left to Keyv (one `set` per entry, a boolean each), and so is
 * `iterator` (Keyv offers none for a third-party store; owners cannot list
 * their keys to each other). Keyv's calls take no signal: each wait is
 * bounded by the cache's transport timeouts.
 *
 * keyv is an optional peer dependency, used here for its types only.
 */
import { EventEmitter } from 'node:events'
import type { KeyvStoreAdapter, StoredData } from 'keyv'
import { InvalidArgumentError, NotFoundError, PeerError } from '../errors.js'
import type { Group } from '../group/group.js'
import type { GroupOptions } from '../group/options.js'
import type { WriteReport } from '../group/writes.js'
import type { Peercache } from '../peercache.js'
import { decodeKeyvValue, encodeKeyvValue } from './keyv-values.js'

/**
 * PeercacheStoreOptions make the store's group: a group without a loader
 * (its values come only from Keyv's writes). `ttl` is the default for a
 * `set` without one; Keyv's own `ttl` option is usually what you want.
 */
export type PeercacheStoreOptions = Omit<GroupOptions, 'load' | 'codec' | 'notFoundTtl' | 'staleWhileRevalidate' | 'staleIfError'>

/**
 * PeercacheStoreGroup names a group the store uses as it is: one made with
 * `cache.group({ name, cacheBytes })` and no `load`, shared by several
 * stores (one per Keyv instance: Keyv sets its namespace on the store it is
 * given, so two namespaces need two stores).
 */
export interface PeercacheStoreGroup {
  group: Group
}

/** PeercacheStoreAdapterOptions is the store's `opts`, as Keyv adapters expose theirs. */
export interface PeercacheStoreAdapterOptions {
  /** The group the store reads and writes. */
  group: string
  dialect: 'peercache'
  [option: string]: unknown
}

/**
 * PeercacheStore is a Keyv storage adapter over a peercache group (see the
 * file comment). Make one per Keyv instance.
 */
export class PeercacheStore extends EventEmitter implements KeyvStoreAdapter {
  /** opts names the store's group; Keyv and its test suite read and write adapters' opts. */
  opts: PeercacheStoreAdapterOptions
  /** namespace is set by Keyv; its keys arrive already prefixed with it (`namespace:key`). */
  namespace: string | undefined
  readonly #cache: Peercache
  readonly #group: Group

  /**
   * Makes a group without a loader on cache (a duplicate name throws
   * InvalidArgumentError: pass `{ group }` to share one), or uses the group
   * given, which must belong to cache.
   */
  constructor(cache: Peercache, options: PeercacheStoreOptions | PeercacheStoreGroup) {
    super()
    this.#cache = cache
    this.#group = 'group' in options ? ownGroup(cache, options.group) : cache.group(groupOptions(options))
    this.opts = { group: this.#group.name, dialect: 'peercache' }
  }

  /** group is the peercache group the store keeps its keys in (its stats, its name). */
  get group(): Group {
    return this.#group
  }

  /** get resolves to what Keyv stored under key, or undefined when no one holds it (never loaded from anywhere). */
  async get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    try {
      return decodeKeyvValue(await this.#group.get(key)) as StoredData<Value>
    } catch (err) {
      if (err instanceof NotFoundError) return undefined
      // Keyv's get swallows a store's rejection: say it here, where Keyv listens.
      this.#report(err)
      throw err
    }
  }

  /** getMany resolves to one entry per key, in order: what is stored, or undefined (one batch request per owner). */
  async getMany<Value>(keys: string[]): Promise<Array<StoredData<Value | undefined>>> {
    const found = await this.#group.getMany(keys)
    return keys.map((key) => {
      const bytes = found.get(key)
      return (bytes === undefined ? undefined : decodeKeyvValue(bytes)) as StoredData<Value | undefined>
    })
  }

  /** has tells whether the key's owner holds key. */
  async has(key: string): Promise<boolean> {
    return (await this.hasMany([key]))[0] === true
  }

  /** hasMany tells, per key in order, whether its owner holds it. */
  async hasMany(keys: string[]): Promise<boolean[]> {
    const found = await this.#group.getMany(keys)
    return keys.map((key) => found.has(key))
  }

  /**
   * set stores value at key's owner (expiring after ttl milliseconds, when
   * given) and drops every other copy. Rejects when the owner did not take
   * it; a peer whose copy could not be dropped is an `error` event.
   */
  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    const report = await this.#group.set(key, encodeKeyvValue(value), ttlOption(ttl))
    this.#reportUnreachable(report, 'set', key)
    return true
  }

  /**
   * delete drops key at its owner and everywhere else; resolves to whether
   * the owner held it just before (asked first: a write between the two is
   * not seen). Rejects when the owner could not be reached.
   */
  async delete(key: string): Promise<boolean> {
    const held = await this.has(key)
    await this.#remove(key)
    return held
  }

  /** deleteMany drops every key (see delete); resolves to true when the owners held them all, as Keyv's own fallback does. */
  async deleteMany(keys: string[]): Promise<boolean> {
    const held = await this.hasMany(keys)
    await Promise.all([...new Set(keys)].map((key) => this.#remove(key)))
    return held.every(Boolean)
  }

  /**
   * clear drops every key of the group on every peer — every Keyv namespace
   * in it, not only this store's. Rejects when a peer was not reached: its
   * keys are still there.
   */
  async clear(): Promise<void> {
    const { unreachable } = await this.#group.clear()
    const first = unreachable[0]
    if (first === undefined) return
    const peers = unreachable.map(({ peer }) => peer).join(', ')
    throw new PeerError(first.peer, `clear of group ${this.#group.name} did not reach ${peers}: the keys they own are still there`, { cause: first.error })
  }

  /** Drops key at its owner (rejecting when the owner was not reached) and elsewhere (an `error` event per peer missed). */
  async #remove(key: string): Promise<void> {
    const owner = this.#cache.ownerOf(key)
    const report = await this.#group.delete(key)
    const missed = report.unreachable.find(({ peer }) => peer === owner)
    if (missed !== undefined) throw new PeerError(missed.peer, `delete of key in group ${this.#group.name} did not reach its owner`, { cause: missed.error })
    this.#reportUnreachable(report, 'delete', key)
  }

  /** Emits one `error` per peer a write did not reach (it may serve its old copy until that expires or is evicted). */
  #reportUnreachable(report: WriteReport, write: string, key: string): void {
    for (const { peer, error } of report.unreachable) {
      this.#report(new PeerError(peer, `${write} of ${JSON.stringify(key)} in group ${this.#group.name} did not reach this peer: it may keep an old copy`, { cause: error }))
    }
  }

  /** Emits err as an `error` event when someone listens (Keyv does); an EventEmitter would throw it otherwise. */
  #report(err: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', err)
  }
}

/** groupOptions checks the store's options and makes them a group's (no loader, no loader-only option). */
function groupOptions(options: PeercacheStoreOptions): GroupOptions {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('PeercacheStore options must be an object: { name, cacheBytes } or { group }')
  if ('load' in options) throw new InvalidArgumentError('PeercacheStore makes a group without load (values come only from Keyv): drop load, or use the group directly')
  return { ...options }
}

/** ownGroup checks that group is cache's own, and returns it. */
function ownGroup(cache: Peercache, group: Group): Group {
  if (cache.getGroup(group?.name) !== group) throw new InvalidArgumentError('PeercacheStore { group } must be a group of the Peercache it is given')
  return group
}

/** ttlOption turns Keyv's ttl (ms, possibly fractional; undefined: none) into a set's options. */
function ttlOption(ttl: number | undefined): { ttl?: number } {
  if (ttl === undefined) return {}
  return { ttl: Number.isFinite(ttl) && ttl > 0 ? Math.ceil(ttl) : ttl }
}
