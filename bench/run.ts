/**
 * run: `npm run bench` runs every benchmark suite, prints the results as a
 * table of ratios against same-run baselines, and rewrites BENCHMARKS.md with
 * it. `npm run bench -- ring local` runs only the named suites (no rewrite).
 */
import { writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import type { BenchRow } from './harness.js'

const SUITES: Record<string, () => Promise<{ bench(): Promise<BenchRow[]> }>> = {
  local: () => import('./local.js'),
  ring: () => import('./ring.js'),
  remote: () => import('./remote.js'),
  batch: () => import('./batch.js'),
}

async function main(): Promise<void> {
  const only = process.argv.slice(2).filter((arg) => arg in SUITES)
  const names = only.length > 0 ? only : Object.keys(SUITES)
  const rows: BenchRow[] = []
  for (const name of names) {
    process.stderr.write(`running ${name}…\n`)
    const suite = await (SUITES[name] as () => Promise<{ bench(): Promise<BenchRow[]> }>)()
    rows.push(...(await suite.bench()))
  }
  const table = render(rows)
  console.log(table)
  if (only.length === 0) writeFileSync(new URL('../BENCHMARKS.md', import.meta.url), document(table))
}

function render(rows: BenchRow[]): string {
  const lines = ['| suite | operation | ops/s | baseline (same run) | baseline ops/s | ratio |', '|---|---|---:|---|---:|---:|']
  for (const r of rows) {
    lines.push(`| ${r.suite} | ${r.name} | ${fmt(r.opsPerSec)} | ${r.baseline} | ${fmt(r.baselineOpsPerSec)} | ${r.ratio.toFixed(2)} |`)
  }
  return lines.join('\n')
}

function document(table: string): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  return `# Benchmarks

Made by \`npm run bench\` (bench/run.ts) on ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cpus().length} × ${cpu}.
Every ratio is against a baseline measured in the same run on the same machine: absolute numbers on a shared
2-core machine move from run to run, ratios hold. Network suites run the server in a separate process on 127.0.0.1.

${table}

How to read it:
- **local hit**: \`group.peek\` / \`group.get\` on a cached key vs a raw \`lru-cache\` get. \`get\` is async and copies
  the value (so callers cannot corrupt the cache); \`peek\` is the synchronous, cache-only read. "await raw lru-cache get"
  shows what an \`await\` alone costs on this path.
- **ring**: \`HashRing.pick\` vs the CRC-32 of the key alone.
- **remote**: a get served by the owner over HTTP (asker's caching off, 64 in flight, 100-byte values) vs a raw undici
  \`Pool.request\` to a plain node:http server returning the same bytes; and raw requests to a peercache peer endpoint vs
  the same plain server (what the serving side costs).
- **batch**: keys/s of \`getMany\` (one batch request per owner) and of same-tick coalesced gets vs 100 per-key requests.
`
}

function fmt(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(0)
}

void main()
