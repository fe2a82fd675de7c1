/**
 * metrics: renders a Peercache's counters in the Prometheus text exposition
 * format (version 0.0.4), so any Prometheus-compatible scraper can read them
 * without a client library. Every series carries a `group` label.
 */
import type { Histogram } from './stats.js'
import type { GroupStats } from './stats.js'

/** MetricsSource is one group's numbers as the renderer reads them. */
export interface MetricsSource {
  name: string
  stats: GroupStats
  loadDurations: Readonly<Histogram>
}

/** PeerState is one peer's health for `peercache_peer_up`. */
export interface PeerState {
  peer: string
  up: boolean
}

type Labels = Record<string, string>

const COUNTERS: ReadonlyArray<[keyof GroupStats, string, string]> = [
  ['gets', 'peercache_gets_total', 'Gets, including those served from a cache.'],
  ['loads', 'peercache_loads_total', 'Gets that missed the caches (before deduplication).'],
  ['loadsDeduped', 'peercache_loads_deduped_total', 'Loads after deduplication: flights that ran.'],
  ['localLoads', 'peercache_local_loads_total', 'Successful runs of this process\u2019s loader.'],
  ['localLoadErrs', 'peercache_local_load_errors_total', 'Failed runs of this process\u2019s loader.'],
  ['peerLoads', 'peercache_peer_loads_total', 'Values fetched from the owning peer.'],
  ['peerErrors', 'peercache_peer_errors_total', 'Peer requests that failed (then loaded locally).'],
  ['serverRequests', 'peercache_server_requests_total', 'Requests served to other peers.'],
  ['notFoundHits', 'peercache_not_found_hits_total', 'Loads answered not-found from memory (notFoundTtl), without the loader.'],
  ['staleHits', 'peercache_stale_hits_total', 'Gets answered with a stale value (staleWhileRevalidate, staleIfError).'],
]

const CACHES = ['main', 'hot'] as const

/** renderMetrics returns the Prometheus text for the given groups and peers. */
export function renderMetrics(groups: readonly MetricsSource[], peers: readonly PeerState[]): string {
  const out: string[] = []
  for (const [field, name, help] of COUNTERS) {
    family(out, name, 'counter', help)
    for (const g of groups) sample(out, name, { group: g.name }, g.stats[field] as number)
  }
  family(out, 'peercache_cache_hits_total', 'counter', 'Lookups answered by the cache.')
  perCache(out, groups, 'peercache_cache_hits_total', (s) => s.hits)
  family(out, 'peercache_cache_bytes', 'gauge', 'Bytes held by the cache (keys + values).')
  perCache(out, groups, 'peercache_cache_bytes', (s) => s.bytes)
  family(out, 'peercache_cache_items', 'gauge', 'Entries held by the cache.')
  perCache(out, groups, 'peercache_cache_items', (s) => s.items)
  family(out, 'peercache_cache_evictions_total', 'counter', 'Entries evicted to make room.')
  perCache(out, groups, 'peercache_cache_evictions_total', (s) => s.evictions)
  family(out, 'peercache_load_duration_seconds', 'histogram', 'Duration of loads (local loader or peer fetch).')
  for (const g of groups) histogram(out, 'peercache_load_duration_seconds', { group: g.name }, g.loadDurations)
  family(out, 'peercache_peer_up', 'gauge', '1 while the peer is considered up, 0 while marked down.')
  for (const g of groups) for (const p of peers) sample(out, 'peercache_peer_up', { group: g.name, peer: p.peer }, p.up ? 1 : 0)
  return out.join('\n') + '\n'
}

function perCache(out: string[], groups: readonly MetricsSource[], name: string, value: (s: GroupStats['main']) => number): void {
  for (const g of groups) for (const cache of CACHES) sample(out, name, { group: g.name, cache }, value(g.stats[cache]))
}

function histogram(out: string[], name: string, labels: Labels, h: Readonly<Histogram>): void {
  h.bounds.forEach((bound, i) => sample(out, `${name}_bucket`, { ...labels, le: String(bound) }, h.counts[i] as number))
  sample(out, `${name}_bucket`, { ...labels, le: '+Inf' }, h.count)
  sample(out, `${name}_sum`, labels, h.sum)
  sample(out, `${name}_count`, labels, h.count)
}

function family(out: string[], name: string, type: string, help: string): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
}

function sample(out: string[], name: string, labels: Labels, value: number): void {
  const rendered = Object.entries(labels)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(',')
  out.push(`${name}{${rendered}} ${formatValue(value)}`)
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
