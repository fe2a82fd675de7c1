/**
 * metrics: a Peercache's metric families — groupcache's counters, the cache
 * sizes, the load-duration histogram, peer health — defined once and read
 * two ways: rendered as Prometheus text (version 0.0.4) by `renderMetrics`,
 * so any scraper can read them without a client library, and collected into
 * a prom-client registry by `peercache/prom-client`. Series of a group carry
 * a `group` label; `peercache_peer_up` is per instance, so it has only `peer`.
 */
import type { GroupObservations, GroupStats, Histogram } from './stats.js'

/** MetricsSource is one group's numbers as the families read them. */
export interface MetricsSource {
  name: string
  stats: GroupStats
  observations: Readonly<GroupObservations>
}

/** PeerState is one other peer's health for `peercache_peer_up`. */
export interface PeerState {
  peer: string
  up: boolean
}

/** MetricsSnapshot is everything the families read, taken once per scrape. */
export interface MetricsSnapshot {
  groups: readonly MetricsSource[]
  /** Every peer but self. */
  peers: readonly PeerState[]
}

/** Labels are a series' label names and values. */
export type Labels = Record<string, string>

/** Sample is one line of a family: its full name (a histogram's carries _bucket, _sum or _count), labels, value. */
export interface Sample {
  name: string
  labels: Labels
  value: number
}

/** MetricFamily is one metric: its description and how to read its samples from a snapshot. */
export interface MetricFamily {
  name: string
  type: 'counter' | 'gauge' | 'histogram'
  help: string
  /** Label names of its series (a histogram's `le` not included). */
  labelNames: readonly string[]
  samples(snapshot: MetricsSnapshot): Sample[]
}

type Counter = Exclude<keyof GroupStats, 'main' | 'hot' | 'peerErrors'>
type CacheField = keyof GroupStats['main']

const CACHES = ['main', 'hot'] as const
const SOURCES = ['local', 'peer'] as const

/** groupCounter is a family with one series per group, mirroring a field of group.stats(). */
function groupCounter(field: Counter, name: string, help: string): MetricFamily {
  return {
    name,
    type: 'counter',
    help,
    labelNames: ['group'],
    samples: ({ groups }) => groups.map((g) => ({ name, labels: { group: g.name }, value: g.stats[field] })),
  }
}

/** perCache is a family with one series per group and cache (main, hot). */
function perCache(type: 'counter' | 'gauge', field: CacheField, name: string, help: string): MetricFamily {
  return {
    name,
    type,
    help,
    labelNames: ['group', 'cache'],
    samples: ({ groups }) => groups.flatMap((g) => CACHES.map((cache) => ({ name, labels: { group: g.name, cache }, value: g.stats[cache][field] }))),
  }
}

/**
 * Peer errors by group and peer. Rule: a series for every peer in the
 * current list (0 until it fails), none for a peer that left: its series
 * ends at once (its count is dropped when it leaves, stats.ts), so peers
 * coming and going never pile up series. A peer listed again starts at 0
 * (a counter reset, which Prometheus's rate() handles).
 */
const peerErrors: MetricFamily = {
  name: 'peercache_peer_errors_total',
  type: 'counter',
  help: 'Peer requests that failed (then loaded locally), by peer in the current list.',
  labelNames: ['group', 'peer'],
  samples: ({ groups, peers }) =>
    groups.flatMap((g) => {
      const failed = g.observations.peerErrors
      return peers.map(({ peer }) => ({ name: 'peercache_peer_errors_total', labels: { group: g.name, peer }, value: failed.get(peer) ?? 0 }))
    }),
}

const loadDuration: MetricFamily = {
  name: 'peercache_load_duration_seconds',
  type: 'histogram',
  help: 'Duration of loads: the local loader (source="local") or a fetch from the owner (source="peer").',
  labelNames: ['group', 'source'],
  samples: ({ groups }) =>
    groups.flatMap((g) =>
      SOURCES.flatMap((source) => histogramSamples('peercache_load_duration_seconds', { group: g.name, source }, g.observations.loadDurations[source])),
    ),
}

/** peerUp: once per peer (peer health belongs to the instance, not to a group). */
const peerUp: MetricFamily = {
  name: 'peercache_peer_up',
  type: 'gauge',
  help: '1 while the peer is considered up, 0 while marked down.',
  labelNames: ['peer'],
  samples: ({ peers }) => peers.map((p) => ({ name: 'peercache_peer_up', labels: { peer: p.peer }, value: p.up ? 1 : 0 })),
}

/** METRIC_FAMILIES lists every family, in exposition order. */
export const METRIC_FAMILIES: readonly MetricFamily[] = [
  groupCounter('gets', 'peercache_gets_total', 'Gets, including those served from a cache.'),
  groupCounter('loads', 'peercache_loads_total', 'Gets that missed the caches (before deduplication).'),
  groupCounter('loadsDeduped', 'peercache_loads_deduped_total', 'Loads after deduplication: flights that ran.'),
  groupCounter('localLoads', 'peercache_local_loads_total', 'Successful runs of this process\u2019s loader.'),
  groupCounter('localLoadErrs', 'peercache_local_load_errors_total', 'Failed runs of this process\u2019s loader.'),
  groupCounter('peerLoads', 'peercache_peer_loads_total', 'Values fetched from the owning peer.'),
  peerErrors,
  groupCounter('serverRequests', 'peercache_server_requests_total', 'Requests served to other peers.'),
  groupCounter('notFoundHits', 'peercache_not_found_hits_total', 'Loads answered not-found from memory (notFoundTtl), without the loader.'),
  groupCounter('staleHits', 'peercache_stale_hits_total', 'Gets answered with a stale value (staleWhileRevalidate, staleIfError).'),
  perCache('counter', 'hits', 'peercache_cache_hits_total', 'Lookups answered by the cache.'),
  perCache('gauge', 'bytes', 'peercache_cache_bytes', 'Bytes held by the cache (keys + values).'),
  perCache('gauge', 'items', 'peercache_cache_items', 'Entries held by the cache.'),
  perCache('counter', 'evictions', 'peercache_cache_evictions_total', 'Entries evicted to make room.'),
  loadDuration,
  peerUp,
]

/** histogramSamples are one histogram's series: cumulative buckets, +Inf, _sum and _count. */
export function histogramSamples(name: string, labels: Labels, h: Readonly<Histogram>): Sample[] {
  const samples: Sample[] = h.bounds.map((bound, i) => ({ name: `${name}_bucket`, labels: { ...labels, le: String(bound) }, value: h.counts[i] as number }))
  samples.push({ name: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: h.count })
  samples.push({ name: `${name}_sum`, labels, value: h.sum }, { name: `${name}_count`, labels, value: h.count })
  return samples
}

/** renderMetrics returns the Prometheus text of every family for the snapshot. */
export function renderMetrics(snapshot: MetricsSnapshot): string {
  const out: string[] = []
  for (const family of METRIC_FAMILIES) {
    out.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`)
    for (const sample of family.samples(snapshot)) out.push(renderSample(sample))
  }
  return out.join('\n') + '\n'
}

function renderSample({ name, labels, value }: Sample): string {
  const rendered = Object.entries(labels)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(',')
  return `${name}{${rendered}} ${formatValue(value)}`
}

/** escapeLabel escapes a label value as the exposition format requires (\\, ", newline). */
export function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Infinity) return '+Inf'
  if (value === -Infinity) return '-Inf'
  return String(value)
}
