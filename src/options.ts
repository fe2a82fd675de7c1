/**
 * options: every option of peercache — its type, its default and its check
 * — in one place, resolved into the shape the internals use. Conventions:
 * every duration is in milliseconds and every duration option of a
 * Peercache ends in `Ms`; sizes are in bytes; one name means one thing.
 * Options are grouped by concern (transport, health, server, auth, deploy);
 * the ones most users set stay at the top level. An unknown name is refused
 * with the closest valid one (option-names.ts), and so is a bad value,
 * where it is given (InvalidArgumentError), never on the first request.
 */
import type { Logger } from './logger.js'
import { noopLogger, stderrLogger } from './logger.js'
import type { DiscoveryOption } from './discovery/options.js'
import type { HashFn, RingKind } from './ring.js'
import type { PeerClientOptions, PeerTlsOptions } from './peers/client.js'
import type { PeerAuth } from './auth.js'
import { InvalidArgumentError } from './errors.js'
import { checkInteger, checkProbability, checkTimerMs, describeValue } from './inputs.js'
import { checkOptionNames, type OptionSchema } from './option-names.js'

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
   * keeps the last good list. @default env PEERCACHE_DNS=name:port or PEERCACHE_DNS_SRV=name, when `peers` is not set
   */
  discovery?: DiscoveryOption
  /** Where PEERCACHE_* variables are read. @default process.env */
  env?: Record<string, string | undefined>
  /** Path prefix of the peer endpoint; must start and end with `/`. @default '/_groupcache/' */
  basePath?: string
  /** Ring placement: `balanced`, or `groupcache` (Go's, for clusters with Go peers). The same everywhere. @default env PEERCACHE_RING, or 'balanced' */
  ring?: RingKind
  /** Ring points per peer. @default 1024 (balanced), 50 (groupcache, Go's) */
  replicas?: number
  /** Hash of the `groupcache` ring (refused with `balanced`). @default CRC-32 IEEE (Go groupcache's) */
  hash?: HashFn
  /** Shared secret(s) that sign peer requests; the first signs, any verifies. @default env PEERCACHE_SECRET */
  secret?: string | readonly string[]
  /** Mirror owners' values into hot by a coin of this probability (groupcache's way); unset, by frequency. @default unset */
  hotCacheProbability?: number
  /** Coalesce remote gets issued in one tick to one owner into one batch request (groups may override). @default true */
  coalesce?: boolean
  /** Serve Prometheus metrics at this path from handler()/listen() (opt-in), e.g. '/metrics'. */
  metricsPath?: string
  /** A pino-shaped logger, or `false` for none. @default warnings and errors to stderr, each repeat once per streak */
  logger?: Logger | false
  /** Clock in epoch ms (TTL). @default Date.now */
  clock?: () => number
  /** Random source in [0, 1) (hot-cache sampling, jitter, probe backoff). @default Math.random */
  random?: () => number
  /** How this process asks its peers. */
  transport?: TransportOptions
  /** When a peer counts as down, and how it is probed back. */
  health?: HealthOptions
  /** The peer endpoint (handler(), listen(), the fastify plugin) and the server listen() makes. */
  server?: ServerOptions
  /** Signed requests (with `secret`). */
  auth?: AuthOptions
  /** Leaving and joining: drain, close, previous-owner peeks. */
  deploy?: DeployOptions
}

/** TransportOptions bound this process's requests to its peers. */
export interface TransportOptions {
  /** Deadline to connect and for the peer to start answering, queueing included; a peer silent past it is probed (alive: busy, not dead). @default 2000 */
  timeoutMs?: number
  /** Longest wait for an owner that is alive but still loading the key; then the asker loads it itself. @default 30000 */
  loadTimeoutMs?: number
  /** Connect timeout. @default timeoutMs */
  connectTimeoutMs?: number
  /** Time to a peer's response headers. @default timeoutMs */
  headersTimeoutMs?: number
  /** Longest gap between a peer's body chunks. @default timeoutMs */
  bodyTimeoutMs?: number
  /** Largest peer response accepted, in bytes. @default 64 MiB */
  maxResponseBytes?: number
  /** Connections per peer. @default 16 */
  connections?: number
  /** Requests pipelined per connection. @default 1 */
  pipelining?: number
  /** TLS toward https:// peers (a CA for self-signed clusters, a client certificate). */
  tls?: PeerTlsOptions
}

/** HealthOptions decide when a peer is down and how soon it is probed back. */
export interface HealthOptions {
  /** Consecutive transport failures that mark a peer down (one timeout with a failed probe always does). @default 3 */
  failureThreshold?: number
  /** First probe delay of a down peer (then exponential, jittered). @default 250 */
  probeMinMs?: number
  /** Longest probe delay. @default 10000 */
  probeMaxMs?: number
}

/** ServerOptions bound what the peer endpoint accepts and how long listen()'s server waits on a client. */
export interface ServerOptions {
  /** Key and certificate: `listen()` then serves https. */
  tls?: { key: string | Buffer; cert: string | Buffer; ca?: string | Buffer | Array<string | Buffer> }
  /** Largest request body (PUT value, batch keys) the endpoint accepts, in bytes. @default 64 MiB */
  maxRequestBytes?: number
  /** Most connections listen()'s server accepts at once. @default 1024 */
  maxConnections?: number
  /** Time to receive a request's headers (slowloris bound). @default 10000 */
  headersTimeoutMs?: number
  /** Time to receive a whole request. @default 30000 */
  requestTimeoutMs?: number
  /** How long an idle keep-alive connection stays open. @default 5000 */
  keepAliveTimeoutMs?: number
  /** How often the server checks the two timeouts above. @default 1000 */
  checkIntervalMs?: number
  /** Bytes one answer may hold queued for a client that does not read them (one value more at most); past it a batch answer waits for the client. @default 4 MiB */
  maxQueuedBytes?: number
  /** Bytes all answers together may hold queued; past it value answers are refused with a 503 marked busy (the asker loads locally, the owner is not marked down). @default 64 MiB */
  maxTotalQueuedBytes?: number
  /** Longest an answer's queued bytes wait for the client to take any of them; then its connection is reset, freeing them. @default 10000 */
  writeStallMs?: number
}

/** AuthOptions tune how signed requests are verified. */
export interface AuthOptions {
  /** Accepted clock skew of a signed request. @default 30000 */
  windowMs?: number
}

/** DeployOptions tune leaving (close) and what a new owner does after the ring changed. */
export interface DeployOptions {
  /** How long close() keeps serving peers before it stops: the time they need to drop it and peek its keys. @default 0 */
  drainMs?: number
  /** How long close() lets gets in flight finish. @default 5000 */
  closeTimeoutMs?: number
  /** How long after a peer-list change a key's new owner peeks its previous owner before loading; 0 = off. @default 60000 */
  peekWindowMs?: number
}

const MiB = 1024 * 1024

/** DEFAULTS is every Peercache option's default. */
export const DEFAULTS = {
  basePath: '/_groupcache/',
  coalesce: true,
  transport: { timeoutMs: 2000, loadTimeoutMs: 30_000, maxResponseBytes: 64 * MiB, connections: 16, pipelining: 1 },
  health: { failureThreshold: 3, probeMinMs: 250, probeMaxMs: 10_000 },
  server: { maxRequestBytes: 64 * MiB, maxConnections: 1024, headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5000, checkIntervalMs: 1000, maxQueuedBytes: 4 * MiB, maxTotalQueuedBytes: 64 * MiB, writeStallMs: 10_000 },
  auth: { windowMs: 30_000 },
  deploy: { drainMs: 0, closeTimeoutMs: 5000, peekWindowMs: 60_000 },
  discovery: { intervalMs: 5000, timeoutMs: 2000 },
  /** forkPeerWorkers' restart backoff (cluster/backoff.ts). */
  restartBackoff: { minMs: 1000, maxMs: 30_000, stableMs: 10_000 },
  /** The default logger (logger.ts): warn and error to stderr, debug and info silent; streaks remembered for this many peers/groups. */
  logger: { levels: ['warn', 'error'], maxSubjects: 1024 },
  /** The handshake (peers/handshake.ts): its answer's size cap, and how long a differing peer list may last before it is reported. */
  handshake: { maxResponseBytes: 16 * 1024, listGraceMs: 1000 },
} as const

/** StatusHandlerOptions bound the gathering `cache.statusHandler()` makes of every peer's status. */
export interface StatusHandlerOptions {
  /** Longest wait for one peer's status; a peer silent past it shows as unreachable. @default 2000 */
  timeoutMs?: number
  /** Peers asked at once. @default 8 */
  concurrency?: number
  /** Largest status answer accepted from one peer, in bytes. @default 1 MiB */
  maxBodyBytes?: number
}

/** STATUS_DEFAULTS are statusHandler()'s defaults. */
export const STATUS_DEFAULTS = { timeoutMs: 2000, concurrency: 8, maxBodyBytes: MiB } as const

/** resolveStatusHandlerOptions checks statusHandler()'s options (InvalidArgumentError) and fills in the defaults. */
export function resolveStatusHandlerOptions(options: StatusHandlerOptions): Required<StatusHandlerOptions> {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('statusHandler options must be an object')
  checkOptionNames(options, { names: ['timeoutMs', 'concurrency', 'maxBodyBytes'] }, 'statusHandler options')
  const resolved = { ...STATUS_DEFAULTS, ...defined(options) }
  checkTimerMs('timeoutMs', resolved.timeoutMs, 1)
  checkInteger('concurrency', resolved.concurrency, 1)
  checkInteger('maxBodyBytes', resolved.maxBodyBytes, 1)
  return resolved
}

/** GROUP_DEFAULTS is every group option's default (the options themselves: group/options.ts). */
export const GROUP_DEFAULTS = {
  maxKeyBytes: 64 * 1024,
  hotCacheRatio: 8,
  ttl: 0,
  ttlJitter: 0,
  notFoundTtl: 0,
  staleWhileRevalidate: 0,
  staleIfError: 0,
} as const

/** GROUP_SCHEMA names every group option. */
export const GROUP_SCHEMA: OptionSchema = {
  names: ['name', 'cacheBytes', 'load', 'codec', 'maxKeyBytes', 'hotCacheRatio', 'hotCacheProbability', 'ttl', 'ttlJitter', 'coalesce', 'notFoundTtl', 'staleWhileRevalidate', 'staleIfError'],
  aliases: { maxAge: 'ttl (milliseconds)', ttlMs: 'ttl', max: 'cacheBytes (a byte budget)', maxSize: 'cacheBytes', loader: 'load', fetchMethod: 'load' },
}

/** PEERCACHE_SCHEMA names every Peercache option, and where the options 0.1.0 had at the top level went. */
export const PEERCACHE_SCHEMA: OptionSchema = {
  names: ['self', 'peers', 'discovery', 'env', 'basePath', 'ring', 'replicas', 'hash', 'secret', 'hotCacheProbability', 'coalesce', 'metricsPath', 'logger', 'clock', 'random', 'transport', 'health', 'server', 'auth', 'deploy'],
  nested: {
    transport: { names: ['timeoutMs', 'loadTimeoutMs', 'connectTimeoutMs', 'headersTimeoutMs', 'bodyTimeoutMs', 'maxResponseBytes', 'connections', 'pipelining', 'tls'] },
    health: { names: ['failureThreshold', 'probeMinMs', 'probeMaxMs'] },
    server: { names: ['tls', 'maxRequestBytes', 'maxConnections', 'headersTimeoutMs', 'requestTimeoutMs', 'keepAliveTimeoutMs', 'checkIntervalMs', 'maxQueuedBytes', 'maxTotalQueuedBytes', 'writeStallMs'] },
    auth: { names: ['windowMs'] },
    deploy: { names: ['drainMs', 'closeTimeoutMs', 'peekWindowMs'] },
  },
  renamed: {
    timeout: 'transport.timeoutMs',
    loadTimeout: 'transport.loadTimeoutMs',
    connectTimeout: 'transport.connectTimeoutMs',
    headersTimeout: 'transport.headersTimeoutMs',
    bodyTimeout: 'transport.bodyTimeoutMs',
    maxResponseBytes: 'transport.maxResponseBytes',
    connections: 'transport.connections',
    pipelining: 'transport.pipelining',
    tls: 'transport.tls',
    failureThreshold: 'health.failureThreshold',
    probeMinMs: 'health.probeMinMs',
    probeMaxMs: 'health.probeMaxMs',
    serverTls: 'server.tls',
    maxRequestBytes: 'server.maxRequestBytes',
    maxConnections: 'server.maxConnections',
    serverTimeouts: 'server.headersTimeoutMs, server.requestTimeoutMs, server.keepAliveTimeoutMs and server.checkIntervalMs',
    authWindowMs: 'auth.windowMs',
    drainMs: 'deploy.drainMs',
    closeTimeout: 'deploy.closeTimeoutMs',
    peekWindowMs: 'deploy.peekWindowMs',
  },
}

/** FinerTimeouts are the transport timeouts that default to timeoutMs, per request kind. */
type FinerTimeouts = 'connectTimeoutMs' | 'headersTimeoutMs' | 'bodyTimeoutMs'

/** ResolvedOptions are the options with every default filled in, in the shape the internals use. */
export interface ResolvedOptions {
  readonly basePath: string
  readonly metricsPath: string | undefined
  readonly env: Record<string, string | undefined>
  readonly logger: Logger
  readonly clock: () => number
  readonly random: () => number
  readonly hotCacheProbability: number | undefined
  readonly coalesce: boolean
  /**
   * The finer timeouts stay undefined unless given: the client derives them
   * from timeoutMs per request kind (a request that may wait on a busy owner
   * gets a longer headers timeout than the transport deadline: peers/client.ts).
   */
  readonly transport: Required<Omit<TransportOptions, 'tls' | FinerTimeouts>> & Pick<TransportOptions, 'tls' | FinerTimeouts>
  readonly health: Required<HealthOptions>
  readonly server: Required<Omit<ServerOptions, 'tls'>> & Pick<ServerOptions, 'tls'>
  readonly auth: Required<AuthOptions>
  readonly deploy: Required<DeployOptions>
}

/** resolveOptions checks options (InvalidArgumentError) and fills in every default. */
export function resolveOptions(options: PeercacheOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options must be an object')
  checkOptionNames(options, PEERCACHE_SCHEMA, 'options')
  checkValues(options)
  const transport = { ...DEFAULTS.transport, ...defined(options.transport) }
  return {
    basePath: options.basePath ?? DEFAULTS.basePath,
    metricsPath: options.metricsPath,
    env: options.env ?? process.env,
    logger: resolveLogger(options.logger),
    clock: options.clock ?? Date.now,
    random: options.random ?? Math.random,
    hotCacheProbability: options.hotCacheProbability,
    coalesce: options.coalesce ?? DEFAULTS.coalesce,
    transport,
    health: { ...DEFAULTS.health, ...defined(options.health) },
    server: { ...DEFAULTS.server, ...defined(options.server) },
    auth: { ...DEFAULTS.auth, ...defined(options.auth) },
    deploy: { ...DEFAULTS.deploy, ...defined(options.deploy) },
  }
}

/** resolveLogger picks the logger: the user's, none for `false`, else the default (warnings and errors to stderr). */
function resolveLogger(logger: Logger | false | undefined): Logger {
  if (logger === false) return noopLogger()
  if (logger === undefined) return stderrLogger()
  return logger
}

/** The timer options, by group: each must be an integer from 1 ms to 2^31 - 1 (Node fires a larger timer at once). */
const TIMERS = {
  transport: ['timeoutMs', 'loadTimeoutMs', 'connectTimeoutMs', 'headersTimeoutMs', 'bodyTimeoutMs'],
  health: ['probeMinMs', 'probeMaxMs'],
  server: ['headersTimeoutMs', 'requestTimeoutMs', 'keepAliveTimeoutMs', 'checkIntervalMs', 'writeStallMs'],
  deploy: ['closeTimeoutMs'],
} as const

/** COUNTS are the integer options that must be at least 1. */
const COUNTS = {
  transport: ['maxResponseBytes', 'connections', 'pipelining'],
  health: ['failureThreshold'],
  server: ['maxConnections', 'maxRequestBytes', 'maxQueuedBytes', 'maxTotalQueuedBytes'],
} as const

function checkValues(options: PeercacheOptions): void {
  checkBasePath(options.basePath)
  for (const [group, names] of Object.entries(TIMERS)) checkEach(options, group, names, (name, value) => checkTimerMs(name, value, 1))
  for (const [group, names] of Object.entries(COUNTS)) checkEach(options, group, names, (name, value) => checkInteger(name, value, 1))
  checkEach(options, 'deploy', ['drainMs', 'peekWindowMs'], (name, value) => checkTimerMs(name, value, 0))
  checkEach(options, 'auth', ['windowMs'], (name, value) => checkInteger(name, value, 0))
  const { probeMinMs, probeMaxMs } = options.health ?? {}
  // Only both given can contradict: a probeMinMs alone above the default cap means "probe no sooner than that".
  if (probeMinMs !== undefined && probeMaxMs !== undefined && probeMinMs > probeMaxMs) {
    throw new InvalidArgumentError(`health.probeMinMs (${probeMinMs}) must not exceed health.probeMaxMs (${probeMaxMs})`)
  }
  checkMetricsPath(options.metricsPath, options.basePath ?? DEFAULTS.basePath)
  if (options.hotCacheProbability !== undefined) checkProbability('hotCacheProbability', options.hotCacheProbability)
  for (const name of ['clock', 'random'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function') throw new InvalidArgumentError(`${name} must be a function, got ${describeValue(options[name])}`)
  }
  checkLogger(options.logger)
  if (options.coalesce !== undefined && typeof options.coalesce !== 'boolean') throw new InvalidArgumentError(`coalesce must be a boolean, got ${describeValue(options.coalesce)}`)
}

/** checkEach runs check on each given option `names` of the nested group (`transport.timeoutMs`, …). */
function checkEach(options: PeercacheOptions, group: string, names: readonly string[], check: (name: string, value: unknown) => void): void {
  const nested = (options as Record<string, unknown>)[group]
  if (nested === undefined) return
  if (nested === null || typeof nested !== 'object') throw new InvalidArgumentError(`${group} must be an object, got ${describeValue(nested)}`)
  for (const name of names) {
    const value = (nested as Record<string, unknown>)[name]
    if (value !== undefined) check(`${group}.${name}`, value)
  }
}

/** checkLogger refuses a logger that is not `false` or an object with the four level functions. */
function checkLogger(logger: unknown): void {
  if (logger === undefined || logger === false) return
  const levels = ['debug', 'info', 'warn', 'error'] as const
  const missing = levels.filter((level) => typeof (logger as Partial<Logger> | null)?.[level] !== 'function')
  if (missing.length > 0) {
    throw new InvalidArgumentError(`logger must be false or a pino-shaped object with debug, info, warn and error functions; ${describeValue(logger)} lacks ${missing.join(', ')}`)
  }
}

function checkBasePath(basePath: unknown): void {
  if (basePath === undefined) return
  if (typeof basePath !== 'string' || !basePath.startsWith('/') || !basePath.endsWith('/') || basePath.length < 2) {
    throw new InvalidArgumentError(`basePath must start and end with "/", got ${JSON.stringify(basePath)}`)
  }
}

/** checkMetricsPath refuses a metrics path that is not absolute or that lies under the peer endpoint. */
function checkMetricsPath(path: unknown, basePath: string): void {
  if (path === undefined) return
  if (typeof path !== 'string' || !path.startsWith('/')) throw new InvalidArgumentError(`metricsPath must be a path starting with "/", got ${describeValue(path)}`)
  if (path.startsWith(basePath) || path.startsWith('/_peercache/')) {
    throw new InvalidArgumentError(`metricsPath ${JSON.stringify(path)} must lie outside the peer endpoint (${basePath}, /_peercache/)`)
  }
}

/** defined drops the keys whose value is undefined (so they do not override a default when spread). */
function defined<T extends object>(options: T | undefined): Partial<T> {
  if (options === undefined) return {}
  const out: Partial<T> = {}
  for (const [key, value] of Object.entries(options)) if (value !== undefined) (out as Record<string, unknown>)[key] = value
  return out
}

/** clientOptions is the peer client's shape of the resolved options (peers/client.ts), signing with auth. */
export function clientOptions(options: ResolvedOptions, auth: PeerAuth | undefined): PeerClientOptions {
  const t = options.transport
  return {
    basePath: options.basePath,
    timeout: t.timeoutMs,
    loadTimeout: t.loadTimeoutMs,
    ...(t.connectTimeoutMs === undefined ? {} : { connectTimeout: t.connectTimeoutMs }),
    ...(t.headersTimeoutMs === undefined ? {} : { headersTimeout: t.headersTimeoutMs }),
    ...(t.bodyTimeoutMs === undefined ? {} : { bodyTimeout: t.bodyTimeoutMs }),
    maxResponseBytes: t.maxResponseBytes,
    connections: t.connections,
    pipelining: t.pipelining,
    ...(t.tls === undefined ? {} : { tls: t.tls }),
    auth,
    health: options.health,
  }
}
