/**
 * cluster-sections: the cluster benchmark's parts of BENCHMARKS.md, one per
 * variant (closed loop, `--rate`, `--cold`, `--alone`): what was run and how
 * to read it, above the run's tables. A run long enough to record rewrites
 * its variant's section (cluster.ts decides).
 */
import { cpus } from 'node:os'
import { AUTO_RATE_SHARE, DEFAULT_WARMUP, type Flags } from './cluster-flags.js'

/** sectionName is the BENCHMARKS.md section a variant's run writes. */
export function sectionName(variant: 'closed' | 'rate' | 'cold' | 'alone'): string {
  return variant === 'closed' ? 'cluster' : `cluster-${variant}`
}

/** madeBy is the line that says which command made a section, where and when. */
function madeBy(flags: Flags, extra: string): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  const rounds = flags.rounds > 1 ? ` --rounds ${flags.rounds}` : ''
  return `Made by \`npm run bench -- cluster ${extra}--secs ${flags.secs}${warmupFlags(flags)}${rounds}\` (bench/cluster.ts) on ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cpus().length} × ${cpu}.`
}

/** warmupFlags are the warm-up flags a run was given, when they are not the defaults (so the command shown is the one run). */
function warmupFlags(flags: Flags): string {
  const secs = flags.warmupSecs === DEFAULT_WARMUP.secs ? '' : ` --warmup ${flags.warmupSecs}`
  const requests = flags.warmupRequests === DEFAULT_WARMUP.requests ? '' : ` --warmup-requests ${flags.warmupRequests}`
  return secs + requests
}

/** closedSection is the closed-loop run's section (issue #12's targets). */
export function closedSection(report: string, flags: Flags): string {
  const made = madeBy(flags, '')
  return `## Cluster: peercache vs Redis vs an in-process Map (issue #12)

${made}
It runs only when named (a few minutes), not in a plain \`npm run bench\`.
Three node:http app processes serve \`GET /item/:id\` (~250-byte JSON) through a cache in front of an origin that
takes 5 ms per query (counted); one load generator process asks for ids drawn Zipf(0.99) over 10,000 ids, 64
requests in flight, round robin over the apps, over undici keep-alive. Per mode: a warm-up of at least ${flags.warmupSecs} s and
${flags.warmupRequests.toLocaleString('en-US')} requests (so that every mode is measured from the same point of the same key sequence: a first-time id is
a miss in every mode, and their share falls as requests go by), then ${flags.secs} s measured.
Everything (apps, peers, redis-server, load) shares this machine's cores, as on the issue's 2-core box: req/s is
bounded by CPU, so CPU per request is what decides it. Modes: **peercache** (the apps are one peercache cluster,
defaults, each app's peer endpoint on its own 127.0.0.1 port), **Redis** (a real \`redis-server\`, persistence off,
started and stopped by the bench; ioredis cache-aside in each app: GET, on a miss load and SET), **Map** (a Map per
process, loads deduplicated per key: no network at all). CPU: \`process.cpuUsage()\` of each app and of the load
generator, \`/proc/<pid>/stat\` for redis-server; origin queries per distinct key = all apps' origin queries over
the distinct ids requested in the whole run (warm-up included). The modes run one after another: compare them on a
quiet machine, or with \`--rounds N\` (the modes N times in alternating order; medians, and each ratio the median of
the rounds' own ratios). Where the time goes: \`npm run bench -- cluster --modes peercache --cpu-prof prof\`, then
\`npx tsx bench/profiles.ts prof/peercache\` (CPU and allocation profiles of the measured window, summed by file and function, per request).

${report}
`
}

/** COMMON describes what every variant shares with the closed loop. */
const COMMON = `The same 3 node:http apps, origin (5 ms per query), key sequence (Zipf 0.99 over 10,000 ids, seed 12) and
modes as the closed-loop section above; the modes run one after another in alternating order (A B C, C B A, …), new
processes for each. Ratios: candidate / baseline in each round, the median over the rounds and every round's.`

/** rateSection is the `--rate` run's section: CPU per request at a fixed offered rate. */
export function rateSection(report: string, flags: Flags, rate: number): string {
  const how = flags.rate === 'auto' ? `${AUTO_RATE_SHARE * 100}% of the Map mode's closed-loop max, measured first in this run` : 'given'
  return `## Cluster at a fixed offered rate: CPU per request (\`--rate\`)

${madeBy(flags, `--rate ${flags.rate === 'auto' ? '' : `${flags.rate} `}`)}
${COMMON}
Open loop: the load generator sends ${Math.round(rate).toLocaleString('en-US')} requests/s over the 3 apps (${how}) on a fixed schedule,
whatever the latency, at most ${flags.maxInFlight} in flight (a request due beyond that is not sent, and counted); latency runs
from the time a request was due. Every mode does the same work per second, so what differs is what it costs: app CPU per
request from the apps' own \`process.cpuUsage()\` over the measured window (after the same warm-up as the closed
loop), redis-server's from \`/proc/<pid>/stat\`. The achieved rate should equal the offered one: below it, the
mode could not keep up and its CPU figures are a closed loop's.
Where the CPU goes: \`npm run bench -- cluster --rate --modes peercache,map --cpu-prof prof\`, then
\`npx tsx bench/profiles.ts prof/peercache --against prof/map\` (µs per request by layer, over the Map's).

${report}
`
}

/** coldSection is the `--cold` run's section: from empty caches, no warm-up. */
export function coldSection(report: string, flags: Flags): string {
  return `## Cluster from a cold start (\`--cold\`)

${madeBy(flags, `--cold ${flags.rate === undefined ? '' : `--rate ${flags.rate} `}`)}
${COMMON}
Every cache is empty (new processes) and there is no warm-up: the window opens before the first request and lasts
${flags.secs} s. Origin loads are every query the apps made in it: peercache loads each key once in the cluster (its
owner), a Map once per app, Redis once per concurrent miss. The last table splits the window's first seconds into
half seconds: how fast each mode served the requests due then, and the slowest of them (how long a mode takes to
reach its pace from a cold start: every process compiles its code as it first runs it).

${report}
`
}

/** aloneSection is the `--alone` run's section: peercache's embedded path against a Map, no peers. */
export function aloneSection(report: string, flags: Flags): string {
  return `## Each app alone: the embedded path's own cost (\`--alone\`)

${madeBy(flags, `--alone ${flags.rate === undefined ? '' : `--rate ${flags.rate} `}`)}
${COMMON}
Each peercache app is a cluster of itself (its peer list never set: no peer fetch, no hot cache), so the difference to
the same app on a Map is what peercache's local path costs: a group lookup, flights on a miss, stats, admission
counting, the UTF-8 decode of each hit in \`getString\`. At least two rounds, so each order runs.

${report}
`
}
