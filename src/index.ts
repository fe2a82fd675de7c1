/**
 * peercache: groupcache for Node.js. Public exports only: no logic, no side
 * effects, no top-level await.
 */
export { Peercache } from './peercache.js'
export { serverUrl } from './server.js'
export type { PeercacheOptions, TransportOptions, HealthOptions, ServerOptions, AuthOptions, DeployOptions, StatusHandlerOptions } from './options.js'
export { Group, type ReadonlyBytes } from './group/group.js'
export type { GroupOptions, TypedGroupOptions, TypedLoader, SetValue, GetOptions, SetOptions, Loader, LoaderContext, LoadResult } from './group/options.js'
export type { WriteReport } from './group/writes.js'
export {
  PeercacheError,
  InvalidArgumentError,
  ConfigError,
  LoadError,
  NotFoundError,
  AbortError,
  TimeoutError,
  ClosedError,
  PeerError,
  PeerUnavailableError,
  PeerTimeoutError,
  PeerLoadTimeoutError,
  PeerBusyError,
  PeerResponseError,
  ResponseTooLargeError,
  AuthError,
  DiscoveryError,
  CodecError,
  type PeercacheErrorOptions,
} from './errors.js'
export type { PeercacheEvents, PeercacheEmitter } from './events.js'
export type { Logger, LogFn } from './logger.js'
export type { GroupStats, GroupCounters } from './stats.js'
export { ENTRY_OVERHEAD_BYTES, OFF_HEAP_OVERHEAD_BYTES, type CacheStats, type CacheEntry, type CacheName } from './cache.js'
export type { Peer, PeerEntry, PeerGetOptions, PeerPicker, PeerRequestOptions } from './peer.js'
export type { PeerHandler } from './endpoint/handler.js'
export type { StatusHandler } from './status/handler.js'
export type {
  PeercacheStatus,
  PeerStatus,
  GroupStatus,
  CacheStatus,
  HitRatioPeriod,
  RingArc,
  ClusterStatus,
  ClusterMemberStatus,
  MemberState,
} from './status/types.js'
export type { PeerTlsOptions } from './peers/client.js'
export type { DiscoveryOption, DnsDiscovery, LookupDiscovery, PeerLookup } from './discovery/options.js'
export { clusterPeers, type ClusterPeers, type ClusterPeersOptions } from './cluster/worker.js'
export { forkPeerWorkers, type ForkOptions, type PeerWorkers } from './cluster/primary.js'
export type { RestartBackoffOptions, RestartClock } from './cluster/backoff.js'
export { codecs, type Codec } from './codecs.js'
export { HashRing, type HashFn, type RingKind, type RingOptions } from './ring.js'
