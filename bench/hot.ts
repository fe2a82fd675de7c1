/**
 * hot bench: the share of gets for keys another peer owns that the hot cache
 * answers at steady state — frequency-aware admission (the default) beside
 * groupcache's 10% coin (`hotCacheProbability: 0.1`), in the same run.
 *
 * A real 3-peer cluster in this process (node:http servers on 127.0.0.1,
 * undici clients, the built dist/), each peer getting keys drawn from Zipf
 * 0.99 over 10,000 ids, 16 gets in flight per peer. Warm-up first, then the
 * share is counted over the next gets: hot hits / gets of keys the ring gives
 * to another peer. Two budgets:
 *
 *  - the demo's: 64 MiB per peer, as demo/app.ts sizes its group — the whole
 *    key space fits, as it does in the app-cluster benchmark;
 *  - tight: a budget that holds half the key space per peer (entries
 *    counted with their overhead), so main (a third of the keys) and hot
 *    compete for room once main has loaded the keys it owns.
 */
import { createServer, type Server } from 'node:http'
import { ENTRY_OVERHEAD_BYTES, Peercache, serverUrl, type Group } from '../dist/index.js'
import { mulberry32, zipfSampler } from '../demo/zipf.js'
import type { BenchRow } from './harness.js'

const KEYS = 10_000
const ZIPF = 0.99
const PEERS = 3
const IN_FLIGHT = 16
const VALUE_BYTES = 200
const WARMUP_GETS = 60_000
const MEASURED_GETS = 60_000
/** What one entry counts against the budget: key (~9 bytes), value, overhead (off-heap: over 64 bytes). */
const ENTRY_BYTES = 9 + VALUE_BYTES + ENTRY_OVERHEAD_BYTES + 512

interface Budget {
  label: string
  cacheBytes: number
}

const BUDGETS: Budget[] = [
  { label: "demo's 64 MiB: all keys fit", cacheBytes: 64 << 20 },
  { label: 'tight: half the keys per peer', cacheBytes: (KEYS / 2) * ENTRY_BYTES },
]

/** bench measures the hot share of both admissions at both budgets. */
export async function bench(): Promise<BenchRow[]> {
  const rows: BenchRow[] = []
  for (const budget of BUDGETS) {
    const frequency = await measureShare(budget.cacheBytes, undefined)
    const coin = await measureShare(budget.cacheBytes, 0.1)
    rows.push({
      suite: 'hot cache',
      name: `hot share, frequency admission (${budget.label})`,
      opsPerSec: frequency,
      baseline: 'hot share, coin 0.1',
      baselineOpsPerSec: coin,
      ratio: frequency / coin,
      format: (n) => n.toFixed(3),
    })
  }
  return rows
}

async function measureShare(cacheBytes: number, hotCacheProbability: number | undefined): Promise<number> {
  const cluster = await startCluster(cacheBytes, hotCacheProbability)
  try {
    const keyOf = (id: number): string => `item:${id}`
    await drive(cluster.groups, WARMUP_GETS, keyOf, () => undefined)
    const hitsBefore = cluster.groups.map((g) => g.stats().hot.hits)
    const remoteGets = [0, 0, 0]
    await drive(cluster.groups, MEASURED_GETS, keyOf, (peer, key) => {
      if (cluster.caches[peer]!.ownerOf(key) !== cluster.caches[peer]!.self) remoteGets[peer]!++
    })
    const hotHits = cluster.groups.reduce((sum, g, i) => sum + g.stats().hot.hits - (hitsBefore[i] as number), 0)
    return hotHits / remoteGets.reduce((a, b) => a + b, 0)
  } finally {
    await cluster.close()
  }
}

/** drive runs `gets` Zipf gets spread over the peers, IN_FLIGHT at a time per peer. */
async function drive(groups: readonly Group[], gets: number, keyOf: (id: number) => string, count: (peer: number, key: string) => void): Promise<void> {
  const perPeer = Math.ceil(gets / groups.length)
  await Promise.all(
    groups.map(async (group, peer) => {
      const next = zipfFor(peer)
      let left = perPeer
      const worker = async (): Promise<void> => {
        while (left-- > 0) {
          const key = keyOf(next())
          count(peer, key)
          await group.get(key)
        }
      }
      await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
    }),
  )
}

/** SHUFFLE_SEED orders ids by popularity, the same on every peer: the cluster agrees on what is hot. */
const SHUFFLE_SEED = 42

/** zipfFor is peer's key source: the shared popularity order, the peer's own draws. */
function zipfFor(peer: number): () => number {
  const shuffle = mulberry32(SHUFFLE_SEED)
  const draws = mulberry32(1000 + peer)
  let shuffling = true
  const next = zipfSampler(KEYS, ZIPF, () => (shuffling ? shuffle() : draws()))
  shuffling = false
  return next
}

interface RunningCluster {
  caches: Peercache[]
  groups: Group[]
  close(): Promise<void>
}

async function startCluster(cacheBytes: number, hotCacheProbability: number | undefined): Promise<RunningCluster> {
  const servers = await Promise.all(Array.from({ length: PEERS }, listenLocal))
  const urls = servers.map((server) => serverUrl(server))
  const value = 'v'.repeat(VALUE_BYTES)
  const caches = urls.map(
    (self) => new Peercache({ env: {}, self, peers: urls, ...(hotCacheProbability === undefined ? {} : { hotCacheProbability }) }),
  )
  const groups = caches.map((cache) => cache.group({ name: 'hot', cacheBytes, load: () => value }))
  servers.forEach((server, i) => server.on('request', (caches[i] as Peercache).handler()))
  return {
    caches,
    groups,
    close: async () => {
      await Promise.all(caches.map((cache) => cache.close()))
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))))
      for (const server of servers) server.closeAllConnections()
    },
  }
}

function listenLocal(): Promise<Server> {
  const server = createServer()
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve(server))
  })
}
