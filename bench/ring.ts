/**
 * ring bench: how fast HashRing.pick finds a key's owner, against the raw
 * CRC-32 of the same key (the hash alone, with no ring walk), so the ratio
 * shows what hashing further and the lookup cost on top; and, in report(),
 * how long a ring takes to build at 500 and 2,000 peers (ring-build.ts), and
 * how evenly each ring kind spreads keys and how many move when a peer joins.
 */
import { crc32 } from 'node:zlib'
import { HashRing, type RingKind } from '../dist/index.js'
import { mulberry32 } from '../demo/zipf.js'
import { measureSync, row, type BenchRow } from './harness.js'
import { measureBalance } from './ring-balance.js'
import { buildReport } from './ring-build.js'

const SUITE = 'ring'
const KEY_COUNT = 10_000
const MEASURE = { durationMs: 400, warmupMs: 100 }
const ROUNDS = 3
const BASELINE = 'crc32(key) (node:zlib)'
const KINDS: readonly RingKind[] = ['balanced', 'groupcache']

/** PICK_PEERS are the ring sizes pick is measured at: small clusters, and a large DNS-discovered one. */
const PICK_PEERS = [3, 10, 30, 2000]

/** BALANCE sizes the balance figures: issue #12's 20 random lists of 3, 5, 10, 30 peers, 50,000 keys. */
const BALANCE = { lists: 20, keys: 50_000, peerCounts: [3, 5, 10, 30], seed: 12 }

/**
 * bench measures HashRing.pick of each ring kind over PICK_PEERS peers
 * against raw crc32 on the same keys. The machine is shared, so each pick is
 * measured in ROUNDS rounds, each between two baseline runs, and the row is
 * the round with the median ratio: one descheduled window does not decide it.
 */
export async function bench(): Promise<BenchRow[]> {
  const keys = Array.from({ length: KEY_COUNT }, (_, i) => `user:${i}:profile`)
  const keyAt = (i: number): string => keys[i % KEY_COUNT]!
  const rows: BenchRow[] = []
  for (const kind of KINDS) {
    for (const n of PICK_PEERS) {
      const ring = new HashRing(peerUrls(n), { ring: kind })
      const rounds = Array.from({ length: ROUNDS }, () => {
        const before = measureSync(BASELINE, (i) => crc32(keyAt(i)), MEASURE)
        const result = measureSync(`HashRing.pick ${kind} (${n} peers)`, (i) => ring.pick(keyAt(i)), MEASURE)
        const after = measureSync(BASELINE, (i) => crc32(keyAt(i)), MEASURE)
        return row(SUITE, result, { name: BASELINE, opsPerSec: (before.opsPerSec + after.opsPerSec) / 2 })
      })
      rows.push(rounds.sort((a, b) => a.ratio - b.ratio)[ROUNDS >> 1]!)
    }
  }
  return rows
}

/** report returns the build-time table, then the balance and movement table of both ring kinds (deterministic for BALANCE.seed). */
export async function report(): Promise<string> {
  return `${await buildReport()}\n\n${balanceReport()}`
}

function balanceReport(): string {
  const lines = [
    `Ring balance (\`npm run bench -- ring\`): ${BALANCE.lists} random peer lists per size (mulberry32 seed ${BALANCE.seed}), ${BALANCE.keys.toLocaleString('en')} keys \`user:{i}:profile\`.`,
    'Busiest = the busiest peer\'s keys ÷ its fair share; moved = keys that change owner when one peer joins ÷ the ideal 1/(n+1).',
    'Targets for `balanced` (issue #12): busiest ≤ 1.10 mean and ≤ 1.20 worst; moved ≤ 1.20.',
    '',
    '| ring | peers | busiest, mean | busiest, worst | moved, mean | moved, worst | moved to a peer other than the new one |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ]
  for (const kind of KINDS) {
    const random = mulberry32(BALANCE.seed)
    for (const peers of BALANCE.peerCounts) {
      const f = measureBalance((urls) => new HashRing(urls, { ring: kind }), peers, { lists: BALANCE.lists, keys: BALANCE.keys, random })
      lines.push(`| ${kind} | ${peers} | ${f.busiestMean.toFixed(3)} | ${f.busiestWorst.toFixed(3)} | ${f.movedMean.toFixed(3)} | ${f.movedWorst.toFixed(3)} | ${f.strayMoves} |`)
    }
  }
  return lines.join('\n')
}

/** peerUrls returns n peer base URLs shaped like a real deployment's. */
function peerUrls(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `http://10.0.0.${i + 1}:8080`)
}
