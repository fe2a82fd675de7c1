/**
 * cluster-caches: the three ways an app process of the cluster benchmark
 * caches items in front of its origin, behind one interface so the app's
 * request path is the same in every mode:
 *  - `peercache`: the apps are one peercache cluster (defaults; the peer
 *    endpoint on its own 127.0.0.1 port);
 *  - `redis`: cache-aside on a shared redis-server through ioredis (GET; on a
 *    miss, load and SET the same value);
 *  - `map`: an in-process Map per process, loads deduplicated per key: the
 *    ceiling, no network at all.
 */
import { createServer, type Server } from 'node:http'
import type { Redis } from 'ioredis'
import { Peercache, serverUrl, type Group, type GroupStats } from '../dist/index.js'
import type { Origin } from './cluster-origin.js'

/** MODES are the cluster benchmark's modes, in their default order. */
export const MODES = ['peercache', 'redis', 'map'] as const
export type Mode = (typeof MODES)[number]

/** The peercache group's budget: far more than the ~2.5 MB of items, so nothing is evicted. */
const CACHE_BYTES = 64 << 20

/** ItemCache is what an app reads items through. */
export interface ItemCache {
  /** peerUrl is this process's peer endpoint (peercache mode only). */
  readonly peerUrl: string | undefined
  /** get returns the item's JSON: a string when it is at hand, else a promise. */
  get(id: string): string | Promise<string>
  /** setPeers gives the cache the cluster's peer list (peercache mode only). */
  setPeers(peers: readonly string[]): void
  /** remoteIds lists the ids in 1..keys another process owns (peercache mode only). */
  remoteIds(keys: number): number[]
  /** stats are the group's stats (peercache mode only). */
  stats(): GroupStats | undefined
  close(): Promise<void>
}

/** createItemCache builds the cache of `mode` in front of `origin`. */
export async function createItemCache(mode: Mode, origin: Origin, redisUrl: string | undefined): Promise<ItemCache> {
  if (mode === 'map') return new MapItemCache(origin)
  if (mode === 'redis') return RedisItemCache.connect(origin, redisUrl)
  return PeercacheItemCache.start(origin)
}

/** NoPeers is the part of ItemCache only peercache fills. */
abstract class NoPeers {
  readonly peerUrl: string | undefined = undefined
  setPeers(): void {}
  remoteIds(): number[] {
    return []
  }
  stats(): GroupStats | undefined {
    return undefined
  }
}

/** MapItemCache is the ceiling: a Map per process; concurrent misses of a key share one load. */
class MapItemCache extends NoPeers implements ItemCache {
  readonly #values = new Map<string, string>()
  readonly #loading = new Map<string, Promise<string>>()
  readonly #origin: Origin

  constructor(origin: Origin) {
    super()
    this.#origin = origin
  }

  get(id: string): string | Promise<string> {
    return this.#values.get(id) ?? this.#loading.get(id) ?? this.#load(id)
  }

  async #load(id: string): Promise<string> {
    const loading = this.#origin.load(id)
    this.#loading.set(id, loading)
    try {
      const value = await loading
      this.#values.set(id, value)
      return value
    } finally {
      this.#loading.delete(id)
    }
  }

  async close(): Promise<void> {}
}

/** RedisItemCache is cache-aside on redis-server, as an app without peercache does it. */
class RedisItemCache extends NoPeers implements ItemCache {
  readonly #redis: Redis
  readonly #origin: Origin

  static async connect(origin: Origin, url: string | undefined): Promise<RedisItemCache> {
    if (url === undefined) throw new Error('redis mode needs --redis <url>')
    const { Redis } = await import('ioredis')
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 5_000 })
    await redis.connect()
    return new RedisItemCache(redis, origin)
  }

  private constructor(redis: Redis, origin: Origin) {
    super()
    this.#redis = redis
    this.#origin = origin
  }

  async get(id: string): Promise<string> {
    const key = `item:${id}`
    const cached = await this.#redis.get(key)
    if (cached !== null) return cached
    const value = await this.#origin.load(id)
    await this.#redis.set(key, value)
    return value
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect())
  }
}

/** PeercacheItemCache is the apps as one peercache cluster, with peercache's defaults. */
class PeercacheItemCache implements ItemCache {
  readonly peerUrl: string
  readonly #cache: Peercache
  readonly #group: Group
  readonly #server: Server

  /** start listens for peers on a free 127.0.0.1 port first: the peer's own URL (`self`) names that port. */
  static async start(origin: Origin): Promise<PeercacheItemCache> {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return new PeercacheItemCache(server, origin)
  }

  private constructor(server: Server, origin: Origin) {
    this.#server = server
    this.peerUrl = serverUrl(server)
    this.#cache = new Peercache({ self: this.peerUrl, peers: [this.peerUrl] })
    this.#group = this.#cache.group({ name: 'items', cacheBytes: CACHE_BYTES, load: (key) => origin.load(key) })
    server.on('request', this.#cache.handler())
  }

  get(id: string): Promise<string> {
    return this.#group.getString(id)
  }

  setPeers(peers: readonly string[]): void {
    this.#cache.setPeers(peers)
  }

  remoteIds(keys: number): number[] {
    const ids: number[] = []
    for (let id = 1; id <= keys; id++) if (this.#cache.ownerOf(String(id)) !== this.#cache.self) ids.push(id)
    return ids
  }

  stats(): GroupStats {
    return this.#group.stats()
  }

  async close(): Promise<void> {
    await this.#cache.close()
    this.#server.closeAllConnections()
    await new Promise((resolve) => this.#server.close(resolve))
  }
}
