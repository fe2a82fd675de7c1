/**
 * peercache: a Peercache is one process's member of the cache cluster. It
 * holds the groups by name, the peer pool (ring + HTTP clients), and the
 * handler that answers other peers. Nothing is global: a process may hold
 * many instances (tests run whole clusters in one process), and everything a
 * test needs to control — clock, random source, environment, logger — is an
 * option.
 */
import { createServer, type Server } from 'node:http'
import { createServer as createTlsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { PeerAuth, parseSecrets } from './auth.js'
import { normalizePeerUrl, resolvePeerConfig, validatePeerConfig, type PeerConfig } from './config.js'
import { resolveDiscovery, type ResolvedDiscovery } from './discovery/config.js'
import type { DiscoveryOption } from './discovery/options.js'
import { PeerRefresher } from './discovery/refresher.js'
import { ClosedError, ConfigError, InvalidArgumentError } from './errors.js'
import { Notifier, createEmitter, type PeercacheEmitter } from './events.js'
import { Group, type GroupContext } from './group.js'
import { checkInteger, checkProbability, type GroupOptions, type TypedGroupOptions } from './group-options.js'
import { noopLogger, type Logger } from './logger.js'
import { NO_PEERS, type PeerPicker } from './peer.js'
import type { PeerTlsOptions } from './peers/client.js'
import { createHandler, type HandlerContext, type PeerHandler } from './peers/handler.js'
import { internals, type PeercacheInternals } from './internals.js'
import { Tracer } from './tracing.js'
import { DEFAULT_BASE_PATH } from './peers/paths.js'
import { PeerPool } from './peers/pool.js'
import { HashRing, type HashFn, type RingKind, type RingOptions } from './ring.js'
import type { GroupStats } from './stats.js'
import { renderMetrics, type MetricsSnapshot } from './metrics.js'
import { checkCombinations } from './option-checks.js'
import { checkTimerMs } from './inputs.js'

/** PeercacheOptions configure one cluster member. Every option has a working default. */
export interface PeercacheOptions {
  /** This process's base URL, as it appears in `peers`. @default env PEERCACHE_SELF */
  self?: string
  /** Every peer's base URL, self included. @default env PEERCACHE_PEERS, or the PEERCACHE_CONFIG file, or none */
  peers?: readonly string[]
  /**
   * Find the peers at run time instead: `{ dns, port }` (A/AAAA records),
   * `{ dns, srv: true }` (SRV records), or a function returning the peer
   * URLs. A changed answer rebuilds the ring as setPeers does; a failed one
   * keeps the last good list. `self` then defaults to PEERCACHE_SELF, or
   * POD_IP / HOSTNAME with the discovery port.
   * @default env PEERCACHE_DNS=name:port or PEERCACHE_DNS_SRV=name, when `peers` is not set
   */
  discovery?: DiscoveryOption
  /** Where PEERCACHE_* variables are read. @default process.env */
  env?: Record<string, string | undefined>
  /** Path prefix of the peer endpoint; must start and end with `/`. @default '/_groupcache/' */
  basePath?: string
  /**
   * Ring placement: `balanced` spreads keys evenly; `groupcache` is Go
   * groupcache's ring, required when the cluster includes Go peers. Every
   * process must use the same. @default env PEERCACHE_RING, or the PEERCACHE_CONFIG file's "ring", or 'balanced'
   */
  ring?: RingKind
  /** Ring points per peer. @default 1024 (balanced), 50 (groupcache, Go's) */
  replicas?: number
  /** Hash of the `groupcache` ring (refused with `balanced`). @default CRC-32 IEEE (Go groupcache's) */
  hash?: HashFn
  /**
   * Transport deadline of one peer request, queueing included, in ms: the
   * time to connect and for the peer to start answering. A peer silent past
   * it is asked whether it is alive; alive, it is busy loading, and the get
   * waits up to `loadTimeout`. @default 2000
   */
  timeout?: number
  /** Longest wait for an owner that is alive but still loading the key, in ms; then the asker loads it itself. @default 30000 */
  loadTimeout?: number
  /** Connect timeout toward peers, in ms. @default timeout */
  connectTimeout?: number
  /** Time to a peer's response headers, in ms. @default timeout */
  headersTimeout?: number
  /** Longest gap between a peer's body chunks, in ms. @default timeout */
  bodyTimeout?: number
  /** Largest peer response accepted, in bytes. @default 64 MiB */
  maxResponseBytes?: number
  /** Connections per peer. @default 16 */
  connections?: number
  /** Requests pipelined per connection. @default 1 */
  pipelining?: number
  /**
   * Set it to mirror values fetched from their owners into the hot cache by a
   * coin of this probability (groupcache's way; groups may override). Unset,
   * the hot cache admits by frequency. @default unset (frequency-aware)
   */
  hotCacheProbability?: number
  /** Coalesce remote gets issued in one tick to one owner into one batch request (groups may override). @default true */
  coalesce?: boolean
  /** Largest request body (PUT value, batch keys) the peer endpoint accepts, in bytes. @default 64 MiB */
  maxRequestBytes?: number
  /** Serve Prometheus metrics at this path from handler()/listen() (opt-in), e.g. '/metrics'. */
  metricsPath?: string
  /** Consecutive transport failures that mark a peer down (one timeout always does). @default 3 */
  failureThreshold?: number
  /** First probe delay of a down peer, in ms (then exponential, jittered). @default 250 */
  probeMinMs?: number
  /** Longest probe delay, in ms. @default 10000 */
  probeMaxMs?: number
  /** Shared secret(s) that sign peer requests; the first signs, any verifies. @default env PEERCACHE_SECRET */
  secret?: string | readonly string[]
  /** Accepted clock skew of signed requests, in ms. @default 30000 */
  authWindowMs?: number
  /** TLS options toward https:// peers (a CA for self-signed clusters). */
  tls?: PeerTlsOptions
  /** Key and certificate: `listen()` then serves https. */
  serverTls?: { key: string | Buffer; cert: string | Buffer; ca?: string | Buffer | Array<string | Buffer> }
  /**
   * How long close() keeps serving peers before it stops, in ms: the time
   * its peers need to drop it from their rings (a discovery interval and a
   * refresh) and to peek the keys it owned. @default 0
   */
  drainMs?: number
  /**
   * How long after a peer-list change a key's new owner peeks the key's
   * previous owner (cache only) before loading it from the origin, in ms;
   * 0 turns peeking off. @default 60000
   */
  peekWindowMs?: number
  /** How long close() lets gets in flight finish, in ms. @default 5000 */
  closeTimeout?: number
  /** Most connections the server from listen() accepts at once. @default 1024 */
  maxConnections?: number
  /** Timeouts of the server from listen(), in ms: a slow or idle client is cut off after them. */
  serverTimeouts?: ServerTimeouts
  /** A pino-shaped logger. @default no-op */
  logger?: Logger
  /** Clock in epoch ms (TTL). @default Date.now */
  clock?: () => number
  /** Random source in [0, 1) (hot-cache sampling, jitter, probe backoff). @default Math.random */
  random?: () => number
}

const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024

/** ServerTimeouts bound how long the server from listen() waits on a client. */
export interface ServerTimeouts {
  /** Time to receive the request headers (slowloris bound). @default 10000 */
  headersTimeout?: number
  /** Time to receive the whole request. @default 30000 */
  requestTimeout?: number
  /** How long an idle keep-alive connection stays open. @default 5000 */
  keepAliveTimeout?: number
  /** How often the server checks the two timeouts above. @default 1000 */
  checkInterval?: number
}

/** Peercache is one process's member of a peercache cluster. */
export class Peercache {
  /** events is a typed mitt emitter: `cache.events.on('peer-down', …)`. */
  readonly events: PeercacheEmitter = createEmitter()
  readonly logger: Logger
  readonly basePath: string
  readonly #groups = new Map<string, Group<unknown>>()
  readonly #config: PeerConfig
  readonly #ring: RingOptions
  readonly #pool: PeerPool | undefined
  readonly #context: GroupContext
  readonly #notify: Notifier
  readonly #auth: PeerAuth | undefined
  readonly #options: PeercacheOptions
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
  #drained: Promise<void> | undefined
  /** Set once the drain is over (at once when drainMs is 0). */
  #drainDone = false

  constructor(options: PeercacheOptions = {}) {
    validateOptions(options)
    this.#options = options
    this.logger = options.logger ?? noopLogger()
    this.basePath = options.basePath ?? DEFAULT_BASE_PATH
    const discovery = resolveDiscovery(options)
    this.#config = discovery === undefined ? resolvePeerConfig(options) : { self: discovery.self, peers: [], ring: discoveryRingKind(options) }
    this.#ring = ringOptions(this.#config.ring, options)
    this.#auth = makeAuth(options)
    this.#notify = new Notifier(this.events, this.logger)
    const random = options.random ?? Math.random
    this.#pool = this.#config.self === undefined ? undefined : this.#makePool(this.#config.self, random)
    this.#context = {
      picker: this.#pool ?? NO_PEERS,
      notify: this.#notify,
      logger: this.logger,
      clock: options.clock ?? Date.now,
      random,
      hotCacheProbability: options.hotCacheProbability,
      coalesce: options.coalesce ?? true,
      tracer: new Tracer(),
    }
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

  /** picker is the owner lookup groups use (exposed for tools and tests). */
  get picker(): PeerPicker {
    return this.#context.picker
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
    const group = Group.create<T>(options, this.#context)
    this.#groups.set(group.name, group as Group<unknown>)
    return group
  }

  /** getGroup returns the named group, or undefined; T is the caller's claim of its value type (Buffer for an untyped group). */
  getGroup<T = Buffer>(name: string): Group<T> | undefined {
    return this.#groups.get(name) as Group<T> | undefined
  }

  /** stats returns every group's stats by name. */
  stats(): Record<string, GroupStats> {
    const out: Record<string, GroupStats> = {}
    for (const [name, group] of this.#groups) out[name] = group.stats()
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

  #metricsSnapshot(): MetricsSnapshot {
    const groups = [...this.#groups.values()].map((g) => ({ name: g.name, stats: g.stats(), observations: g.observations }))
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

  /**
   * For peercache's own adapters (peercache/fastify, peercache/prom-client); not public API.
   * @internal
   */
  [internals](): PeercacheInternals {
    return { endpoint: this.#endpoint(), metricsSnapshot: () => this.#metricsSnapshot(), drain: () => this.#drain() }
  }

  #endpoint(): HandlerContext {
    this.#endpointContext ??= {
      basePath: this.basePath,
      group: (name) => this.#groups.get(name),
      maxKeyBytes: () => this.#maxKeyBytes(),
      auth: this.#auth,
      closing: () => this.#closing,
      logger: this.logger,
      maxRequestBytes: this.#options.maxRequestBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
      metricsPath: this.#options.metricsPath,
      metrics: () => this.metrics(),
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
    const server = this.#createServer()
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
    for (const group of this.#groups.values()) group.observations.forgetPeersBut(listed)
    this.logger.info({ added, removed }, 'peer list changed')
    if (this.#notify.wants('peers-changed')) this.#notify.emit('peers-changed', { added, removed, peers: after })
  }

  /** #startDiscovery runs the refresh loop; its answers may leave self out (it then owns nothing). */
  #startDiscovery(discovery: ResolvedDiscovery): void {
    this.#refresher = new PeerRefresher({
      ...discovery,
      validate: (peers) => peers.map((peer) => normalizePeerUrl(peer, `discovery ${discovery.source}`)),
      apply: (peers) => this.#replacePeers(peers),
      logger: this.logger,
    })
    this.#refresher.start()
  }

  /**
   * close stops answering peers (they get a 503 they treat as a transport
   * failure), lets gets in flight finish for up to `closeTimeout`, then
   * aborts the rest with ClosedError, closes the peer connections and any
   * server listen() made. Idempotent; every call resolves when it is done.
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
    const drainMs = this.#options.drainMs ?? 0
    if (drainMs > 0) await delay(drainMs)
    this.#drainDone = true
  }

  async #close(): Promise<void> {
    const drained = this.#drain()
    // Invariant: without a drain to wait for, close() stops the groups synchronously, so a get made right after close() is refused.
    if (!this.#drainDone) await drained
    this.#closing = true
    const timeout = this.#options.closeTimeout ?? 5000
    await Promise.all([...this.#groups.values()].map((group) => group.close(timeout)))
    await this.#pool?.close()
    // Invariant: once #closing is set no listen() adds a server, so after the bindings settle #servers is complete.
    await Promise.allSettled([...this.#binding])
    await Promise.all([...this.#servers].map((server) => closeServer(server, timeout)))
  }

  #createServer(): Server {
    const keyBytes = this.#maxKeyBytes()
    const timeouts = this.#options.serverTimeouts ?? {}
    const headersTimeout = timeouts.headersTimeout ?? 10_000
    const options = {
      // A key of maxKeyBytes may triple when percent-encoded; leave room for the other headers.
      maxHeaderSize: Math.max(16 * 1024, 3 * keyBytes + 3 * 255 + 16 * 1024),
      headersTimeout,
      // Node requires requestTimeout >= headersTimeout (0 would mean none).
      requestTimeout: Math.max(headersTimeout, timeouts.requestTimeout ?? 30_000),
      keepAliveTimeout: timeouts.keepAliveTimeout ?? 5_000,
      connectionsCheckingInterval: timeouts.checkInterval ?? 1_000,
    }
    const tls = this.#options.serverTls
    const server = tls === undefined ? createServer(options, this.handler()) : createTlsServer({ ...options, ...tls }, this.handler())
    server.maxConnections = this.#options.maxConnections ?? 1024
    return server
  }

  #maxKeyBytes(): number {
    let max = 64 * 1024
    for (const group of this.#groups.values()) max = Math.max(max, group.maxKeyBytes)
    return max
  }

  #makePool(self: string, random: () => number): PeerPool {
    const o = this.#options
    return new PeerPool({
      self,
      peers: this.#config.peers,
      ring: this.#ring,
      random,
      ...(o.peekWindowMs === undefined ? {} : { peekWindowMs: o.peekWindowMs }),
      client: {
        basePath: this.basePath,
        timeout: o.timeout ?? 2000,
        maxResponseBytes: o.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
        auth: this.#auth,
        ...pick(o, ['connectTimeout', 'headersTimeout', 'bodyTimeout', 'connections', 'pipelining', 'tls', 'loadTimeout']),
        health: pick(o, ['failureThreshold', 'probeMinMs', 'probeMaxMs']),
      },
      listener: {
        down: (peer, error) => {
          this.logger.warn({ peer, err: error }, 'peer marked down')
          if (this.#notify.wants('peer-down')) this.#notify.emit('peer-down', { peer, error })
        },
        up: (peer) => {
          this.logger.info({ peer }, 'peer marked up')
          if (this.#notify.wants('peer-up')) this.#notify.emit('peer-up', { peer })
        },
      },
    })
  }

  #assertOpen(): void {
    if (this.#draining) throw new ClosedError('peercache is closed')
  }
}

/** serverUrl returns the base URL a listening server answers on (for tests and demos). */
export function serverUrl(server: Server, protocol: 'http' | 'https' = 'http'): string {
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return `${protocol}://${host}:${address.port}`
}

/**
 * ringOptions resolves the ring kind and checks the ring options by building
 * an empty ring, so a bad combination (a `hash` with the balanced ring) is
 * refused at construction even in a process without peers.
 */
function ringOptions(kind: RingKind, options: PeercacheOptions): RingOptions {
  const ring: RingOptions = { ring: kind, ...pick(options, ['replicas', 'hash']) }
  void new HashRing([], ring)
  return ring
}

function makeAuth(options: PeercacheOptions): PeerAuth | undefined {
  const secrets = parseSecrets(options.secret ?? (options.env ?? process.env).PEERCACHE_SECRET)
  if (secrets === undefined) return undefined
  return new PeerAuth({
    secrets,
    ...(options.authWindowMs === undefined ? {} : { windowMs: options.authWindowMs }),
    ...(options.clock === undefined ? {} : { now: options.clock }),
  })
}

function validateOptions(options: PeercacheOptions): void {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options must be an object')
  const basePath = options.basePath
  if (basePath !== undefined && (typeof basePath !== 'string' || !basePath.startsWith('/') || !basePath.endsWith('/') || basePath.length < 2)) {
    throw new InvalidArgumentError(`basePath must start and end with "/", got ${JSON.stringify(basePath)}`)
  }
  for (const name of ['maxResponseBytes', 'connections', 'pipelining', 'failureThreshold', 'maxConnections', 'maxRequestBytes'] as const) {
    if (options[name] !== undefined) checkInteger(name, options[name], 1)
  }
  checkCombinations(options)
  if (options.hotCacheProbability !== undefined) checkProbability('hotCacheProbability', options.hotCacheProbability)
  if (options.authWindowMs !== undefined) checkInteger('authWindowMs', options.authWindowMs, 0)
  if (options.drainMs !== undefined) checkTimerMs('drainMs', options.drainMs, 0)
  if (options.peekWindowMs !== undefined) checkInteger('peekWindowMs', options.peekWindowMs, 0)
}

function pick<T extends object, K extends keyof T>(source: T, keys: readonly K[]): { [P in K]?: NonNullable<T[P]> } {
  const out: { [P in K]?: NonNullable<T[P]> } = {}
  for (const key of keys) if (source[key] !== undefined) out[key] = source[key] as NonNullable<T[typeof key]>
  return out
}

/** bind makes server listen on port/host and resolves once it does (rejects on a bind error). */
function bind(server: Server, port: number, host: string | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

async function closeServer(server: Server, timeoutMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  server.closeIdleConnections()
  const timer = setTimeout(() => server.closeAllConnections(), timeoutMs)
  timer.unref()
  await closed
  clearTimeout(timer)
}

/** discoveryRingKind is the ring kind of a Peercache whose peers come from discovery: the option, else PEERCACHE_RING, else balanced. */
function discoveryRingKind(options: PeercacheOptions): RingKind {
  return resolvePeerConfig({ ring: options.ring, env: { PEERCACHE_RING: (options.env ?? process.env).PEERCACHE_RING } }).ring
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
