/**
 * peercache: a Peercache is one process's member of the cache cluster. It
 * holds the groups by name, the peer pool (ring + HTTP clients), and the
 * handler that answers other peers. Nothing is global: a process may hold
 * many instances (tests run whole clusters in one process), and everything a
 * test needs to control — clock, random source, environment, logger — is an
 * option.
 */
import type { Server } from 'node:http'
import { authFrom, type PeerAuth } from './auth.js'
import { checkSchemes, discoveryRingKind, normalizePeerUrl, resolvePeerConfig, ringOptions, validatePeerConfig, type PeerConfig } from './config.js'
import { resolveDiscovery, type ResolvedDiscovery } from './discovery/config.js'
import { PeerRefresher } from './discovery/refresher.js'
import { ClosedError, ConfigError, InvalidArgumentError } from './errors.js'
import { Notifier, createEmitter, type PeercacheEmitter } from './events.js'
import type { Group } from './group/group.js'
import { createGroup, type GroupInternals } from './group/create.js'
import type { GroupContext } from './group/state.js'
import type { GroupOptions, TypedGroupOptions } from './group/options.js'
import type { Logger } from './logger.js'
import { NO_PEERS } from './peer.js'
import { createHandler, type HandlerContext, type PeerHandler } from './endpoint/handler.js'
import { SendQueue } from './endpoint/send-queue.js'
import type { PeercacheInternals } from './internals.js'
import { Tracer } from './tracing.js'
import { PeerPool } from './peers/pool.js'
import type { RingOptions } from './ring.js'
import type { GroupStats } from './stats.js'
import { renderMetrics, type MetricsSnapshot } from './metrics.js'
import { helloOf, type LocalIdentity } from './proto/hello.js'
import { DEFAULTS, GROUP_DEFAULTS, clientOptions, resolveOptions, type PeercacheOptions, type ResolvedOptions, type StatusHandlerOptions } from './options.js'
import { bind, checkServerScheme, closeServer, createPeerServer } from './server.js'
import { StatusService } from './status/service.js'
import type { StatusHandler } from './status/handler.js'
import type { PeercacheStatus } from './status/types.js'

/** readInternals is set once, by Peercache's static block, to read a cache's private internals. */
let readInternals: (cache: Peercache) => PeercacheInternals

/**
 * internalsOf gives peercache's own adapters (fastify, prom-client, the
 * OpenTelemetry metrics, tests) what they need of a cache; not exported
 * from the package root.
 */
export function internalsOf(cache: Peercache): PeercacheInternals {
  return readInternals(cache)
}

/** Peercache is one process's member of a peercache cluster. */
export class Peercache {
  /** events is a typed mitt emitter: `cache.events.on('peer-down', …)`. */
  readonly events: PeercacheEmitter = createEmitter()
  /** logger is the logger this instance reports to: the option, the default stderr logger, or a silent one (`logger: false`). */
  readonly logger: Logger
  /** basePath is the peer endpoint's path prefix. */
  readonly basePath: string
  /** Every group by name: the public face the user holds, and the internals only peercache's own code uses. */
  readonly #groups = new Map<string, { group: Group<unknown>; internals: GroupInternals }>()
  readonly #options: ResolvedOptions
  readonly #config: PeerConfig
  readonly #pool: PeerPool | undefined
  readonly #context: GroupContext
  readonly #notify: Notifier
  readonly #auth: PeerAuth | undefined
  readonly #status: StatusService
  readonly #servers = new Set<Server>()
  /** listen() calls whose server is still binding. */
  readonly #binding = new Set<Promise<Server>>()
  #handler: PeerHandler | undefined
  #refresher: PeerRefresher | undefined
  #endpointContext: HandlerContext | undefined
  #closing = false
  /** Set by close(): no new groups or peer lists; peers are still served until the drain ends. */
  #draining = false
  #closed: Promise<void> | undefined
  #longestKey: number = GROUP_DEFAULTS.maxKeyBytes
  #drained: Promise<void> | undefined
  /** Set once the drain is over (at once when drainMs is 0). */
  #drainDone = false

  constructor(options: PeercacheOptions = {}) {
    const resolved = resolveOptions(options)
    this.#options = resolved
    this.logger = resolved.logger
    this.basePath = resolved.basePath
    const discovery = resolveDiscovery({ ...options, logger: resolved.logger })
    this.#config = discovery === undefined ? resolvePeerConfig(options) : { self: discovery.self, peers: [], ring: discoveryRingKind(options) }
    const ring = ringOptions(this.#config.ring, options)
    this.#auth = authFrom(options.secret ?? resolved.env.PEERCACHE_SECRET, resolved.auth.windowMs, resolved.clock)
    this.#notify = new Notifier(this.events, this.logger)
    this.#pool = this.#config.self === undefined ? undefined : this.#makePool(this.#config.self, ring, listGraceMs(discovery))
    this.#context = {
      picker: this.#pool ?? NO_PEERS,
      notify: this.#notify,
      logger: this.logger,
      clock: resolved.clock,
      random: resolved.random,
      hotCacheProbability: resolved.hotCacheProbability,
      coalesce: resolved.coalesce,
      tracer: new Tracer(),
    }
    const transport = { auth: this.#auth, tls: resolved.transport.tls }
    const groups = (): GroupInternals[] => [...this.#groups.values()].map(({ internals: g }) => g)
    this.#status = new StatusService({ self: this.#config.self, clock: resolved.clock, pool: () => this.#pool, groups, ...transport, logger: this.logger })
    if (discovery !== undefined) this.#startDiscovery(discovery)
  }

  /** self is this process's base URL, or undefined when it runs without peers. */
  get self(): string | undefined {
    return this.#config.self
  }

  /** peers is the current peer list (sorted, self included). */
  get peers(): readonly string[] {
    return this.#pool?.peerList() ?? []
  }

  /**
   * ownerOf returns the URL of the process a get of key here asks now: the
   * key's owner on the ring, or the next live peer when the owner is marked
   * down; `self` when this process owns it; undefined when it runs without
   * peers. For status tools, debugging and tests.
   */
  ownerOf(key: string): string | undefined {
    if (typeof key !== 'string') throw new InvalidArgumentError(`key must be a string, got ${typeof key}`)
    if (this.#pool === undefined) return undefined
    return this.#pool.pickPeer(key)?.url ?? this.#pool.self
  }

  /**
   * group creates a group; a duplicate or invalid name throws
   * InvalidArgumentError. With a `codec` the group is typed: `load` returns
   * T and `get` resolves to T (`cache.group<Product>({ …, codec:
   * codecs.json() })`); without one, values are bytes and `get` resolves to a
   * Buffer.
   */
  group(options: GroupOptions): Group
  group<T>(options: TypedGroupOptions<T>): Group<T>
  group<T>(options: GroupOptions | TypedGroupOptions<T>): Group<T> | Group {
    this.#assertOpen()
    const name = (options as Partial<GroupOptions> | null)?.name
    if (typeof name === 'string' && this.#groups.has(name)) throw new InvalidArgumentError(`duplicate group name ${JSON.stringify(name)}`)
    const created = createGroup<T>(options, this.#context)
    this.#groups.set(created.internals.name, created as { group: Group<unknown>; internals: GroupInternals })
    this.#longestKey = Math.max(this.#longestKey, created.internals.served.maxKeyBytes)
    return created.group
  }

  /** getGroup returns the named group, or undefined; T is the caller's claim of its value type (Buffer for an untyped group). */
  getGroup<T = Buffer>(name: string): Group<T> | undefined {
    return this.#groups.get(name)?.group as Group<T> | undefined
  }

  /** stats returns every group's stats by name. */
  stats(): Record<string, GroupStats> {
    const out: Record<string, GroupStats> = {}
    for (const [name, { internals }] of this.#groups) out[name] = internals.stats()
    return out
  }

  /**
   * metrics returns every group's counters, cache sizes, load-duration
   * histogram and peer health in Prometheus text format. Serve it yourself,
   * or set `metricsPath` to have handler()/listen() serve it.
   */
  metrics(): string {
    return renderMetrics(this.#metricsSnapshot())
  }

  /**
   * status returns this process's view of the cluster (ring, peers, groups;
   * no key), which peers ask each other for: see docs/api.md#status.
   */
  status(): PeercacheStatus {
    return this.#status.report()
  }

  /**
   * statusHandler returns a node:http handler serving the whole cluster's
   * status gathered from every peer, as a page or JSON (docs/api.md#status).
   * Not part of the peer endpoint: mount it where operators reach it.
   */
  statusHandler(options: StatusHandlerOptions = {}): StatusHandler {
    return this.#status.handler(options)
  }

  #metricsSnapshot(): MetricsSnapshot {
    const groups = [...this.#groups.values()].map(({ internals: g }) => ({ name: g.name, stats: g.stats(), observations: g.observations }))
    const peers = (this.#pool?.others() ?? []).map((p) => ({ peer: p.url, up: p.health.up }))
    return { groups, peers }
  }

  /**
   * handler returns the node:http listener of the peer endpoint. It answers
   * under basePath and hands anything else to `next` (express/connect) or
   * answers 404. A server you build yourself keeps Node's default 16 KiB
   * header limit: keys over ~5 KiB need `listen()` or your own maxHeaderSize.
   */
  handler(): PeerHandler {
    this.#handler ??= createHandler(this.#endpoint())
    return this.#handler
  }

  static {
    // The one way in for peercache's own adapters (internals.ts): a private field, read here, set once.
    readInternals = (cache) => cache.#internals
  }

  /** What peercache's own adapters use (internals.ts): the endpoint context (made once) and the snapshots. */
  get #internals(): PeercacheInternals {
    return { endpoint: this.#endpoint(), metricsSnapshot: () => this.#metricsSnapshot(), drain: () => this.#drain() }
  }

  #endpoint(): HandlerContext {
    this.#endpointContext ??= {
      basePath: this.basePath,
      group: (name) => this.#groups.get(name)?.internals.served,
      maxKeyBytes: () => this.#maxKeyBytes(),
      auth: this.#auth,
      closing: () => this.#closing,
      logger: this.logger,
      maxRequestBytes: this.#options.server.maxRequestBytes,
      metricsPath: this.#options.metricsPath,
      metrics: () => this.metrics(),
      hello: () => helloOf(this.#identity()),
      status: () => this.status(),
      tracer: this.#context.tracer,
      sendQueue: new SendQueue(this.#options.server),
    }
    return this.#endpointContext
  }

  /**
   * listen starts a hardened HTTP(S) server for the peer endpoint on port
   * (0 = any free port) and resolves to it once it listens. close() closes it,
   * also while it is still binding: listen then rejects with ClosedError.
   */
  async listen(port: number, host?: string): Promise<Server> {
    this.#assertOpen()
    const listening = this.#listen(port, host)
    // close() waits for every listen() still binding (see #close).
    this.#binding.add(listening)
    try {
      return await listening
    } finally {
      this.#binding.delete(listening)
    }
  }

  async #listen(port: number, host: string | undefined): Promise<Server> {
    checkServerScheme(this.#config.self, this.#options.server.tls !== undefined)
    const server = createPeerServer(this.#options.server, this.handler(), this.#maxKeyBytes())
    await bind(server, port, host)
    if (this.#closing) {
      // close() ran while the server was binding: it could not close a server that was not listening yet.
      await closeServer(server, 0)
      throw new ClosedError('peercache closed while listen() was binding')
    }
    this.#servers.add(server)
    return server
  }

  /**
   * setPeers replaces the peer list and rebuilds the ring atomically; gets in
   * flight finish with the peer they picked. Self must stay in the list.
   */
  setPeers(peers: readonly string[]): void {
    this.#assertOpen()
    if (this.#pool === undefined) throw new ConfigError('setPeers needs `self`: this Peercache was created without peers')
    const config = validatePeerConfig(this.#pool.self, peers, 'setPeers')
    this.#replacePeers(config.peers)
  }

  /**
   * #replacePeers is the one path a new peer list takes (setPeers and
   * discovery): rebuild the ring, then tell listeners what changed.
   */
  #replacePeers(peers: readonly string[]): void {
    const pool = this.#pool
    if (pool === undefined || this.#closing) return
    const before = new Set(pool.peerList())
    pool.setPeers(peers)
    const after = pool.peerList()
    const added = after.filter((peer) => !before.has(peer))
    const removed = [...before].filter((peer) => !after.includes(peer))
    if (added.length === 0 && removed.length === 0) return
    // A peer that left loses its per-peer series at once (metrics.ts).
    const listed = new Set(after)
    for (const { internals } of this.#groups.values()) internals.observations.forgetPeersBut(listed)
    this.logger.info({ added, removed }, 'peer list changed')
    if (this.#notify.wants('peers-changed')) this.#notify.emit('peers-changed', { added, removed, peers: after })
  }

  /** #startDiscovery runs the refresh loop; its answers may leave self out (it then owns nothing). */
  #startDiscovery(discovery: ResolvedDiscovery): void {
    this.#refresher = new PeerRefresher({
      ...discovery,
      validate: (peers) => {
        const list = peers.map((peer) => normalizePeerUrl(peer, `discovery ${discovery.source}`))
        checkSchemes(discovery.self, list, `discovery ${discovery.source}`)
        return list
      },
      apply: (peers) => this.#replacePeers(peers),
      logger: this.logger,
    })
    this.#refresher.start()
  }

  /**
   * close stops answering peers (they get a 503 they treat as a transport
   * failure), lets gets in flight finish for up to `deploy.closeTimeoutMs`,
   * then aborts the rest with ClosedError, closes the peer connections and
   * any server listen() made. Idempotent; every call resolves when it is done.
   */
  close(): Promise<void> {
    this.#closed ??= this.#close()
    return this.#closed
  }

  /**
   * #drain is close()'s first step, once: stop taking peer lists and groups,
   * and keep serving peers for drainMs. The fastify plugin runs it while
   * fastify still routes requests (fastify.ts), then close() skips it.
   */
  #drain(): Promise<void> {
    this.#drained ??= this.#startDrain()
    return this.#drained
  }

  async #startDrain(): Promise<void> {
    this.#refresher?.close()
    this.#draining = true
    const { drainMs } = this.#options.deploy
    if (drainMs > 0) await delay(drainMs)
    this.#drainDone = true
  }

  async #close(): Promise<void> {
    const drained = this.#drain()
    // Invariant: without a drain to wait for, close() stops the groups synchronously, so a get made right after close() is refused.
    if (!this.#drainDone) await drained
    this.#closing = true
    const { closeTimeoutMs } = this.#options.deploy
    await Promise.all([...this.#groups.values()].map(({ internals: g }) => g.close(closeTimeoutMs)))
    await this.#pool?.close()
    // Invariant: once #closing is set no listen() adds a server, so after the bindings settle #servers is complete.
    await Promise.allSettled([...this.#binding])
    await Promise.all([...this.#servers].map((server) => closeServer(server, closeTimeoutMs)))
  }

  /** The longest key any group accepts: kept as groups are made, since every peer request checks its path against it. */
  #maxKeyBytes(): number {
    return this.#longestKey
  }

  /** #identity is what this process's handshake says and compares (peers/handshake.ts). */
  #identity(): LocalIdentity {
    return { ring: this.#config.ring, peers: this.#pool?.peerList() ?? [], basePath: this.basePath, signed: this.#auth !== undefined }
  }

  #makePool(self: string, ring: RingOptions, graceMs: number): PeerPool {
    const { deploy } = this.#options
    return new PeerPool({
      self,
      peers: this.#config.peers,
      ring,
      random: this.#options.random,
      peekWindowMs: deploy.peekWindowMs,
      client: {
        ...clientOptions(this.#options, this.#auth),
        handshake: { identity: () => this.#identity(), logger: this.logger, listGraceMs: graceMs },
        generation: (group) => this.#groups.get(group)?.internals.generation() ?? 0,
      },
      listener: this.#notify.healthListener(),
    })
  }

  #assertOpen(): void {
    if (this.#draining) throw new ClosedError('peercache is closed')
  }
}

/**
 * listGraceMs is how long a peer's differing peer list may last before the
 * handshake reports it: with discovery, two refreshes and a lookup (peers
 * refresh at different moments); with static lists, the default.
 */
function listGraceMs(discovery: ResolvedDiscovery | undefined): number {
  const grace = DEFAULTS.handshake.listGraceMs
  return discovery === undefined ? grace : Math.max(grace, 2 * discovery.intervalMs + discovery.timeoutMs)
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
