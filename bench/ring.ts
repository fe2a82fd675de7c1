/**
 * ring bench: how fast HashRing.pick finds a key's owner, against the raw
 * CRC-32 of the same key (the hash alone, with no ring walk), so the ratio
 * shows what the binary search and lookups cost on top of hashing.
 */
import { crc32 } from 'node:zlib'
import { HashRing } from '../dist/index.js'
import { measureSync, row, type BenchRow } from './harness.js'

const SUITE = 'ring'
const KEY_COUNT = 10_000
const MEASURE = { durationMs: 500, warmupMs: 100 }

/** bench measures HashRing.pick over 3 and 10 peers against raw crc32 on the same keys. */
export async function bench(): Promise<BenchRow[]> {
  const keys = Array.from({ length: KEY_COUNT }, (_, i) => `user:${i}:profile`)
  const keyAt = (i: number): string => keys[i % KEY_COUNT]!
  const baseline = measureSync('crc32(key) (node:zlib)', (i) => crc32(keyAt(i)), MEASURE)
  return [3, 10].map((n) => {
    const ring = new HashRing(peerUrls(n))
    return row(SUITE, measureSync(`HashRing.pick (${n} peers)`, (i) => ring.pick(keyAt(i)), MEASURE), baseline)
  })
}

/** peerUrls returns n peer base URLs shaped like a real deployment's. */
function peerUrls(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `http://10.0.0.${i + 1}:8080`)
}
