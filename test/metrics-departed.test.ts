/**
 * Per-peer series end with the peer: `peercache_peer_errors_total` has a
 * series for each peer in the current list (0 until it fails), and a peer
 * that left the list loses its series at once, in `cache.metrics()` and in
 * a prom-client registry (registerPeercacheMetrics). Peers join and leave
 * through setPeers; each one refuses connections (a closed port on its own
 * 127.x address), so every get of a key it owns is a real peer error.
 */
import type { Server } from 'node:http'
import { Registry } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import { Peercache, serverUrl, type Group } from '../src/index.js'
import { registerPeercacheMetrics } from '../src/prom-client.js'
import { closeServer, listenLocal } from './helpers/cluster.js'
import { closedPortUrl, keysOwnedIn } from './helpers/features-cluster.js'
import { parseSamples, type FlatSample } from './helpers/features-prometheus.js'
import { internalsOf } from '../src/peercache.js'

const GROUPS = ['a', 'b', 'c']
const DEPARTED = 20

let server: Server | undefined
let cache: Peercache | undefined

afterEach(async () => {
  await cache?.close()
  if (server !== undefined) await closeServer(server)
  cache = server = undefined
})

function peerErrorSeries(samples: readonly FlatSample[]): FlatSample[] {
  return samples.filter((s) => s.name === 'peercache_peer_errors_total')
}

/** churn lists `DEPARTED` refusing peers one after the other (each with self), failing one get per group at each. */
async function churn(self: string, groups: Group[]): Promise<string> {
  const port = new URL(await closedPortUrl()).port
  let peer = ''
  for (let i = 0; i <= DEPARTED; i++) {
    peer = `http://127.0.0.${i + 2}:${port}`
    cache!.setPeers([self, peer])
    for (const group of groups) {
      const [key] = keysOwnedIn([self, peer], peer, 1, `${group.name}-${i}`)
      expect(await group.getString(key!)).toBe(`v(${key})`) // loaded locally after the peer error
    }
  }
  return peer
}

describe('peercache_peer_errors_total of departed peers', () => {
  it('keeps a series per current peer only: a peer that left the list loses its series at once (text and prom-client)', async () => {
    server = await listenLocal()
    const self = serverUrl(server)
    cache = new Peercache({ env: {}, self, peers: [self], hotCacheProbability: 0, coalesce: false, health: { failureThreshold: 1000 } })
    server.on('request', cache.handler())
    const groups = GROUPS.map((name) => cache!.group({ name, cacheBytes: 1 << 20, load: (key) => `v(${key})` }))
    const registry = new Registry()
    registerPeercacheMetrics(cache, { registry })

    const current = await churn(self, groups)

    for (const group of groups) {
      expect(group.stats().peerErrors).toBe(DEPARTED + 1) // the group's total keeps every error
      const observations = internalsOf(cache!).metricsSnapshot().groups.find((g) => g.name === group.name)!.observations
      expect([...observations.peerErrors.keys()]).toEqual([current]) // the per-peer counts keep only listed peers
    }
    for (const [source, text] of [
      ['metrics()', cache.metrics()],
      ['prom-client', await registry.metrics()],
    ] as const) {
      const series = peerErrorSeries(parseSamples(text))
      // One series per group for the one other peer in the list, with its own error: none for the 20 that left.
      expect(series.map((s) => `${s.labels.group} ${s.labels.peer} ${s.value}`).sort(), source).toEqual(GROUPS.map((g) => `${g} ${current} 1`))
    }

    // The last one leaves too: no other peer, no series.
    cache.setPeers([self])
    expect(peerErrorSeries(parseSamples(cache.metrics()))).toEqual([])
    expect(peerErrorSeries(parseSamples(await registry.metrics()))).toEqual([])
  })
})
