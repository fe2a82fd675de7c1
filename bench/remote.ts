/**
 * remote bench: the network paths, each against a raw undici baseline
 * measured in the same run, with the server in another process.
 *
 *  - remote get: `group.get` on an asker with caching off (every get goes to
 *    the owner, coalescing off) vs raw `Pool.request` to a plain node:http
 *    server returning the same 100 bytes; 64 in flight. Each pair is measured
 *    in alternating 300 ms slices (harness.ts, `interleaved`).
 *  - peer serving: raw undici requests to a Peercache peer endpoint vs to the
 *    plain server: what the handler costs on the serving side.
 *  - cold vs warm: CPU per remote get (asker + owner) when the owner must
 *    load the key (synchronously) vs when it holds it.
 *  - sparse: CPU per remote get (asker + owner) at a low, fixed rate (300/s,
 *    3 every 10 ms), vs a raw undici request to the plain server at the same
 *    rate. This is how the cluster bench's apps fetch: a few peer fetches
 *    spread among their other work, each one waking both processes. It
 *    shows what such a round trip costs on its own, whoever makes it.
 */
import { Pool } from 'undici'
import { Peercache, serverUrl, type Group } from '../dist/index.js'
import { startServerChild, type ServerChild } from './child.js'
import { interleaved, row, type BenchRow } from './harness.js'
import { createServer } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'

const SUITE = 'remote'
const CONCURRENCY = 64
const KEYS = 1000

/** bench measures remote gets and peer serving against raw undici + node:http. */
export async function bench(): Promise<BenchRow[]> {
  const raw = await startServerChild('raw')
  const peer = await startServerChild('peercache')
  const local = createServer()
  await new Promise<void>((resolve) => local.listen(0, '127.0.0.1', resolve))
  const self = serverUrl(local)
  const asker = new Peercache({ self, peers: [self, peer.url], coalesce: false, hotCacheProbability: 0 })
  const group = asker.group({ name: 'bench', cacheBytes: 0, load: () => 'local' })
  const keys = remoteKeys(asker, KEYS)
  const rawPool = new Pool(raw.url, { connections: 16 })
  const peerPool = new Pool(peer.url, { connections: 16 })
  try {
    const keyAt = (i: number): string => keys[i % keys.length] as string
    const rawCase = { name: 'undici Pool.request → node:http (raw)', fn: (i: number) => fetchRaw(rawPool, `/v/${keyAt(i)}`), concurrency: CONCURRENCY }
    const rows = [
      await interleaved(SUITE, rawCase, { name: 'group.get → remote owner', fn: (i) => group.get(keyAt(i)), concurrency: CONCURRENCY }),
      await interleaved(SUITE, rawCase, {
        name: 'undici Pool.request → peercache handler',
        fn: (i) => fetchRaw(peerPool, `/_groupcache/bench/${encodeURIComponent(keyAt(i))}`),
        concurrency: CONCURRENCY,
      }),
    ]
    return [...rows, await coldVsWarm(asker, group, peer), await sparse(group, keys, raw, rawPool, peer)]
  } finally {
    await Promise.all([rawPool.close(), peerPool.close(), asker.close(), raw.stop(), peer.stop()])
    local.close()
  }
}

const CPU_GETS = 20_000
const CPU_ROUNDS = 10

/**
 * coldVsWarm measures the CPU (asker + owner, µs per key) of remote gets the
 * owner must load (synchronous loader, keys it has never seen) against gets
 * of keys it holds, 64 in flight, coalescing off. Reported as keys per
 * CPU-second, so the ratio is warm CPU / cold CPU (issue 12: ≥ 1/1.5). The
 * two alternate in short rounds, so a change in the machine's load touches
 * both alike.
 */
export async function coldVsWarm(asker: Peercache, group: Group, owner: ServerChild): Promise<BenchRow> {
  const warmKeys = remoteKeys(asker, 1000)
  await runGets(group, warmKeys) // the owner now holds them
  const cold = remoteKeys(asker, CPU_GETS + 1000, 'never-seen')
  await cpuMicros(group, owner, cold.slice(0, 1000).concat(warmKeys, warmKeys)) // warm-up
  const perRound = CPU_GETS / CPU_ROUNDS
  let warmMicros = 0
  let coldMicros = 0
  for (let round = 0; round < CPU_ROUNDS; round++) {
    const at = 1000 + round * perRound
    warmMicros += await cpuMicros(group, owner, Array.from({ length: perRound }, (_, i) => warmKeys[(at + i) % warmKeys.length] as string))
    coldMicros += await cpuMicros(group, owner, cold.slice(at, at + perRound))
  }
  const perCpuSecond = (micros: number): number => (CPU_GETS * 1e6) / micros
  return row(
    SUITE,
    { name: 'cold remote get, owner loads sync (keys per CPU-s, asker + owner)', opsPerSec: perCpuSecond(coldMicros) },
    { name: 'warm remote get (keys per CPU-s, asker + owner)', opsPerSec: perCpuSecond(warmMicros) },
  )
}

const SPARSE_RATE = 300
const SPARSE_GETS_PER_ROUND = 600
const SPARSE_ROUNDS = 6

/**
 * sparse measures the CPU both processes spend per request when requests
 * come SPARSE_RATE a second (3 every 10 ms): remote gets of keys the owner
 * holds against raw undici requests to the plain server, alternating in
 * rounds. Reported as requests per CPU-second (higher is cheaper).
 */
async function sparse(group: Group, keys: readonly string[], raw: ServerChild, rawPool: Pool, peer: ServerChild): Promise<BenchRow> {
  const keyAt = (at: number, i: number): string => keys[(at + i) % keys.length] as string
  const peerSide = { micros: 0, round: (at: number) => bothCpuMicros(peer, () => atRate((i) => group.get(keyAt(at, i)))) }
  const rawSide = { micros: 0, round: (at: number) => bothCpuMicros(raw, () => atRate((i) => fetchRaw(rawPool, `/v/${keyAt(at, i)}`))) }
  for (let round = 0; round < SPARSE_ROUNDS; round++) {
    // Alternate which goes first, so a drift of the machine touches both alike.
    for (const side of round % 2 === 0 ? [peerSide, rawSide] : [rawSide, peerSide]) side.micros += await side.round(round * SPARSE_GETS_PER_ROUND)
  }
  const perCpuSecond = (micros: number): number => (SPARSE_ROUNDS * SPARSE_GETS_PER_ROUND * 1e6) / micros
  return row(
    SUITE,
    { name: `sparse remote get, ${SPARSE_RATE}/s (gets per CPU-s, asker + owner)`, opsPerSec: perCpuSecond(peerSide.micros) },
    { name: `undici Pool.request → node:http (raw), ${SPARSE_RATE}/s`, opsPerSec: perCpuSecond(rawSide.micros) },
  )
}

/** atRate starts SPARSE_GETS_PER_ROUND requests, 3 every 10 ms, and resolves once all are answered. */
async function atRate(fn: (i: number) => Promise<unknown>): Promise<void> {
  const perTick = SPARSE_RATE / 100
  const pending: Array<Promise<unknown>> = []
  for (let i = 0; i < SPARSE_GETS_PER_ROUND; i += perTick) {
    for (let j = i; j < Math.min(i + perTick, SPARSE_GETS_PER_ROUND); j++) pending.push(fn(j))
    await sleep(10)
  }
  await Promise.all(pending)
}

/** cpuMicros runs one get per key (64 in flight) and returns the CPU both processes spent, in µs. */
function cpuMicros(group: Group, owner: ServerChild, keys: readonly string[]): Promise<number> {
  return bothCpuMicros(owner, () => runGets(group, keys))
}

/** bothCpuMicros runs work and returns the CPU (µs) this process and `server` spent on it. */
async function bothCpuMicros(server: ServerChild, work: () => Promise<void>): Promise<number> {
  const serverBefore = await server.cpuMicros()
  const before = process.cpuUsage()
  await work()
  const used = process.cpuUsage(before)
  return used.user + used.system + (await server.cpuMicros()) - serverBefore
}

/** runGets gets every key once, CONCURRENCY in flight. */
async function runGets(group: Group, keys: readonly string[]): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < keys.length) await group.get(keys[next++] as string)
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
}

/** remoteKeys returns n keys the asker's ring gives to the other peer. */
export function remoteKeys(cache: Peercache, n: number, prefix = 'product'): string[] {
  const keys: string[] = []
  for (let i = 0; keys.length < n && i < n * 100; i++) {
    const key = `${prefix}:${i}`
    if (cache.ownerOf(key) !== cache.self) keys.push(key)
  }
  return keys
}

async function fetchRaw(pool: Pool, path: string): Promise<void> {
  const { statusCode, body } = await pool.request({ method: 'GET', path })
  await body.arrayBuffer()
  if (statusCode !== 200) throw new Error(`status ${statusCode}`)
}
