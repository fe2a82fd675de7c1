/**
 * ring-build: how long building a HashRing takes at 500 and 2,000 peers, for
 * both ring kinds. A DNS answer can list hundreds of peers, and a ring is
 * rebuilt on the event loop at every change of the list, so the build is
 * measured in milliseconds against a fixed target (≤ 50 ms at 2,000 peers),
 * not as a ratio. Each round of each case runs in a fresh process (the
 * first build is cold, the next one warm: from the ring it replaces, as the
 * pool builds; ring-build-child.ts), the cases' order alternates between
 * rounds, and each figure is the median of the rounds.
 */
import { cpus } from 'node:os'
import { fileURLToPath } from 'node:url'
import type { RingKind } from '../dist/index.js'
import { runResultChild } from './isolated.js'
import type { RingBuildResult } from './ring-build-child.js'

const CHILD = fileURLToPath(new URL('./ring-build-child.ts', import.meta.url))
const ROUNDS = 5
const TARGET_MS = 50
const TARGET_PEERS = 2000
/** SEED draws the peer URLs (`http://10.x.y.z:port`), the same lists in every round. */
const SEED = 2000
const CASES: ReadonlyArray<{ kind: RingKind; peers: number }> = [
  { kind: 'balanced', peers: 500 },
  { kind: 'balanced', peers: 2000 },
  { kind: 'groupcache', peers: 500 },
  { kind: 'groupcache', peers: 2000 },
]

/** buildReport measures every case in ROUNDS fresh processes each and returns the table (markdown). */
export async function buildReport(): Promise<string> {
  const rounds = CASES.map(() => [] as RingBuildResult[])
  for (let round = 0; round < ROUNDS; round++) {
    const order = CASES.map((_, index) => index)
    if (round % 2 === 1) order.reverse()
    for (const index of order) {
      const { kind, peers } = CASES[index]!
      rounds[index]!.push(await runResultChild<RingBuildResult>(['--import', 'tsx', CHILD, kind, String(peers), String(SEED)], `ring build ${kind} ${peers}`))
    }
  }
  return table(rounds)
}

function table(rounds: readonly RingBuildResult[][]): string {
  const cpu = cpus()
  const lines = [
    `Ring build (\`npm run bench -- ring\`), ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, Node ${process.version}: milliseconds, median of ${ROUNDS} rounds, each a fresh process (cases alternated).`,
    `Cold = the process's first build, every peer hashed; warm = its next build (the list plus one peer) from the ring it replaces, as the pool builds: what a running process pays per change, one peer hashed;`,
    `CPU = the process's CPU time for the warm build; whole = the warm list built again from nothing, every peer hashed (JIT warm); first walk = the first failover pick on the warm ring`,
    `(it moves the points into buckets, left undone by the build); cold faults = the pages the cold build touched for the first time; 8 MiB touch = the same process writing one byte per page of 8 MiB it never had`,
    `(what fresh memory costs on this machine: a balanced ring of 2,000 peers keeps 8 MiB of points). Target: build ≤ ${TARGET_MS} ms at ${TARGET_PEERS.toLocaleString('en')} peers.`,
    '',
    '| ring | peers | build, cold | cold faults | build, warm | warm, CPU | whole, warm JIT | first walk | 8 MiB touch | warm, each round | target met (cold / warm / whole) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|',
  ]
  CASES.forEach(({ kind, peers }, index) => {
    const all = rounds[index]!
    const cold = median(all.map((r) => r.coldMs))
    const warm = median(all.map((r) => r.warmMs))
    const met = (value: number): string => (value <= TARGET_MS ? 'yes' : '**no**')
    const whole = median(all.map((r) => r.wholeMs))
    const target = peers === TARGET_PEERS ? `${met(cold)} / ${met(warm)} / ${met(whole)}` : ''
    const each = all.map((r) => r.warmMs.toFixed(0)).join(', ')
    const cpu = ms(median(all.map((r) => r.warmCpuMs)))
    const faults = median(all.map((r) => r.coldFaults)).toLocaleString('en')
    const touch = ms(median(all.map((r) => r.touch8MiBMs)))
    lines.push(`| ${kind} | ${peers.toLocaleString('en')} | ${ms(cold)} | ${faults} | ${ms(warm)} | ${cpu} | ${ms(whole)} | ${ms(median(all.map((r) => r.firstWalkMs)))} | ${touch} | ${each} | ${target} |`)
  })
  return lines.join('\n')
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[sorted.length >> 1]!
}

function ms(value: number): string {
  return value.toFixed(1)
}
