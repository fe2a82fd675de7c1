/**
 * cluster: runs a whole peercache cluster inside the test process.
 *
 * Each member is a real `node:http` server listening on 127.0.0.1 port 0 and
 * a `Peercache` whose `self` is that server's URL and whose `peers` are every
 * member's URL; the server answers peers through `cache.handler()`. The
 * servers are created first, so every URL is known before any Peercache is
 * constructed (a Peercache needs `self` up front).
 *
 * Loaders wrapped with `member.track()` count their calls per member and per
 * key in `cluster.loads`, which is how tests check where (and how often) the
 * origin was hit.
 *
 * ```ts
 * const cluster = await startCluster(3, kvGroup())
 * const value = await cluster.group(1).getString('k')   // 'v(k)'
 * expect(cluster.loads[cluster.ownerOf('k')]!.get('k')).toBe(1)
 * await cluster.close()                                  // in afterEach
 * ```
 */
import { createServer, type Server, type ServerOptions } from 'node:http'
import { Peercache, serverUrl, type PeercacheOptions } from '../../src/index.js'
import { HashRing, type Group, type GroupOptions, type Loader } from '../../src/index.js'

/** MemberOptions are Peercache options the helper passes through (it sets `self` and, unless given, `peers`). */
export type MemberOptions = Omit<PeercacheOptions, 'self'>

/** ClusterMember is what a GroupFactory receives for each member. */
export interface ClusterMember {
  /** The member's position, 0-based, in `urls`, `caches`, `servers` and `loads`. */
  readonly index: number
  /** The member's base URL (`http://127.0.0.1:<port>`). */
  readonly url: string
  /** The member's Peercache: create the group(s) on it. */
  readonly cache: Peercache
  /** Wraps a loader so that each of its calls counts in `loads[index]` (before it runs, so failing calls count too). */
  track(load: Loader): Loader
}

/** GroupFactory creates the same group(s) on every member (called once per member, in order). */
export type GroupFactory = (member: ClusterMember) => void

/** ClusterOptions tune startCluster. */
export interface ClusterOptions {
  /**
   * Extra Peercache options, the same for every member, or computed per member
   * (e.g. a different `hash` or `peers` on each). `self` is always the
   * member's URL; `peers` defaults to every URL (none with `discovery`); `env` defaults to `{}` so
   * the runner's PEERCACHE_* variables never leak in.
   */
  options?: MemberOptions | ((index: number, urls: readonly string[]) => MemberOptions)
  /** node:http server options of every member (e.g. a raised `maxHeaderSize` for 64 KiB keys). */
  serverOptions?: ServerOptions
}

/** Cluster is a running in-process cluster. */
export interface Cluster {
  /** Every member's base URL, in member order. */
  readonly urls: readonly string[]
  /** Every member's Peercache. */
  readonly caches: readonly Peercache[]
  /** Every member's http server. */
  readonly servers: readonly Server[]
  /** loads[i] counts the calls of member i's tracked loaders, by key. */
  readonly loads: ReadonlyArray<Map<string, number>>
  /** group returns member i's group by name (default `kv`); throws if it is missing. */
  group(index: number, name?: string): Group
  /**
   * ownerOf returns the index of the member the ring names for key: the ring
   * over `urls` (or the shared `peers`) with the shared `ring`/`replicas`/
   * `hash` options, Peercache's defaults otherwise (the balanced ring).
   * Per-member options are not looked at.
   */
  ownerOf(key: string): number
  /** loadsOf sums the tracked loader calls for key over every member. */
  loadsOf(key: string): number
  /** totalLoads sums every tracked loader call of every member. */
  totalLoads(): number
  /** stop closes member i's Peercache and server (its URL then refuses connections). Idempotent. */
  stop(index: number): Promise<void>
  /** close stops every member still running. Idempotent; call it in afterEach. */
  close(): Promise<void>
}

/**
 * startCluster starts n members on 127.0.0.1 port 0, builds each member's
 * Peercache (self = its URL, peers = all URLs unless overridden), lets
 * `groups` create the groups on each, and mounts `cache.handler()` on each
 * server. On a failure half-way, whatever started is closed again.
 */
export async function startCluster(n: number, groups: GroupFactory, clusterOptions: ClusterOptions = {}): Promise<Cluster> {
  const servers: Server[] = []
  const caches: Peercache[] = []
  const stopped = new Set<number>()
  const stopping = new Map<number, Promise<void>>()

  const stop = (index: number): Promise<void> => {
    let done = stopping.get(index)
    if (done === undefined) {
      stopped.add(index)
      done = (async () => {
        await caches[index]?.close()
        const server = servers[index]
        if (server !== undefined) await closeServer(server)
      })()
      stopping.set(index, done)
    }
    return done
  }
  const closeAll = async (): Promise<void> => {
    await Promise.all(servers.map((_, index) => stop(index)))
  }

  try {
    for (let i = 0; i < n; i++) servers.push(await listenLocal(clusterOptions.serverOptions ?? {}))
    const urls = servers.map((server) => serverUrl(server))
    const loads = urls.map(() => new Map<string, number>())
    for (let i = 0; i < n; i++) {
      const given = typeof clusterOptions.options === 'function' ? clusterOptions.options(i, urls) : (clusterOptions.options ?? {})
      const cache = new Peercache({ env: {}, ...(given.discovery === undefined ? { peers: urls } : {}), ...given, self: urls[i]! })
      caches.push(cache)
      const counts = loads[i]!
      groups({
        index: i,
        url: urls[i]!,
        cache,
        track: (load) => (key, context) => {
          counts.set(key, (counts.get(key) ?? 0) + 1)
          return load(key, context)
        },
      })
      servers[i]!.on('request', cache.handler())
    }
    const shared = typeof clusterOptions.options === 'object' ? clusterOptions.options : {}
    const ring = new HashRing(shared.peers ?? urls, {
      ...(shared.ring === undefined ? {} : { ring: shared.ring }),
      ...(shared.replicas === undefined ? {} : { replicas: shared.replicas }),
      ...(shared.hash === undefined ? {} : { hash: shared.hash }),
    })
    return {
      urls,
      caches,
      servers,
      loads,
      group(index, name = 'kv') {
        const group = caches[index]?.getGroup(name)
        if (group === undefined) throw new Error(`member ${index} has no group ${name}`)
        return group
      },
      ownerOf(key) {
        return urls.indexOf(ring.pick(key)!)
      },
      loadsOf(key) {
        return loads.reduce((sum, counts) => sum + (counts.get(key) ?? 0), 0)
      },
      totalLoads() {
        return loads.reduce((sum, counts) => sum + [...counts.values()].reduce((a, b) => a + b, 0), 0)
      },
      stop,
      close: closeAll,
    }
  } catch (err) {
    await closeAll()
    throw err
  }
}

/** reference is the vectors' reference getter: key → `v(key)`. */
export function reference(key: string): string {
  return `v(${key})`
}

/**
 * kvGroup is a GroupFactory for group `kv` (64 MiB) whose tracked loader
 * returns `v(key)`; `overrides` replace any group option but `load`.
 */
export function kvGroup(overrides: Partial<Omit<GroupOptions, 'load'>> = {}): GroupFactory {
  return ({ cache, track }) => {
    cache.group({ name: 'kv', cacheBytes: 64 << 20, ...overrides, load: track((key) => reference(key)) })
  }
}

/** listenLocal creates an http server and resolves once it listens on 127.0.0.1, port 0. */
export async function listenLocal(options: ServerOptions = {}): Promise<Server> {
  const server = createServer(options)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  return server
}

/** closeServer closes a server and every connection it holds (keep-alive ones included). */
export async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  server.closeAllConnections()
  await closed
}
