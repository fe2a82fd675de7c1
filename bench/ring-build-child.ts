/**
 * ring-build-child: the fresh process ring-build.ts starts for one round of
 * one case. It builds a ring of `kind` over `peers` seeded random peers (the
 * first build of the process, cold: every peer hashed), then the same list
 * with one more peer from it (warm: what a long-running process pays on each
 * change of its peer list, since the pool passes the ring it replaces and
 * only the new peer is hashed), then that list again from nothing (whole:
 * every peer hashed again, with the JIT warm), then times the first failover
 * walk on the warm ring (pickWhere skipping the owner), which moves the
 * points into their buckets, work the build leaves to the first lookup that
 * needs it. Prints `RESULT <json>` (RingBuildResult).
 */
import { HashRing, type RingKind } from '../dist/index.js'
import { mulberry32 } from '../demo/zipf.js'
import { randomPeers } from './ring-balance.js'

/** RingBuildResult is one round's milliseconds (wall clock, and CPU of the whole process for the warm build). */
export interface RingBuildResult {
  coldMs: number
  warmMs: number
  warmCpuMs: number
  wholeMs: number
  firstWalkMs: number
  /** The page faults of the cold build: each is a page of memory the process touched for the first time. */
  coldFaults: number
  /** What touching 8 MiB of fresh memory (one write per 4 KiB page) costs this process, in ms: the floor of keeping 2,000 balanced peers' points. */
  touch8MiBMs: number
}

const [kind, count, seed] = process.argv.slice(2)
const options = { ring: kind as RingKind }
const urls = randomPeers(Number(count) + 1, mulberry32(Number(seed)))
const joiner = urls.pop()!

const faultsBefore = process.resourceUsage().minorPageFault
const cold = timed(() => new HashRing(urls, options))
const coldFaults = process.resourceUsage().minorPageFault - faultsBefore
const cpu = process.cpuUsage()
const warm = timed(() => new HashRing([...urls, joiner], options, cold.value))
const warmCpu = process.cpuUsage(cpu)
const whole = timed(() => new HashRing([...urls, joiner], options))
const owner = warm.value.pick('user:1:profile')
const walk = timed(() => warm.value.pickWhere('user:1:profile', (peer) => peer !== owner))
if (cold.value.size !== urls.length || walk.value === undefined) throw new Error('ring-build-child: the rings do not hold the peers')
if (whole.value.pick('user:1:profile') !== owner) throw new Error('ring-build-child: the warm ring and the whole one disagree')

const result: RingBuildResult = {
  coldMs: cold.ms,
  warmMs: warm.ms,
  warmCpuMs: (warmCpu.user + warmCpu.system) / 1000,
  wholeMs: whole.ms,
  firstWalkMs: walk.ms,
  coldFaults,
  touch8MiBMs: timed(touchFresh).ms,
}
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)

/** touchFresh writes one byte in each 4 KiB page of 8 MiB the process never had: what the kernel charges for fresh memory. */
function touchFresh(): number {
  const bytes = new Uint8Array(8 * 1024 * 1024)
  for (let i = 0; i < bytes.length; i += 4096) bytes[i] = 1
  return bytes.length
}

/** timed runs fn once and returns its value and its wall-clock milliseconds. */
function timed<T>(fn: () => T): { value: T; ms: number } {
  const start = performance.now()
  const value = fn()
  return { value, ms: performance.now() - start }
}
