/**
 * serving bench (`npm run bench -- serving [--rounds 12] [--secs 1]`): the
 * server-bound serving row. wrk (C, one thread: it outruns any Node server,
 * so req/s is the server's) against a peercache peer endpoint answering one
 * cached key, vs a bare node:http server answering the same bytes with the
 * same headers (the peer's answer recorded, then replayed). Both servers
 * run as the same script in the same kind of process (server-child.ts), one
 * at a time, in interleaved rounds (raw first in even rounds, peer first in
 * odd ones), each `--secs` long. The ratio is the median of the rounds' own
 * ratios (target ≥ 0.9); each round's is printed, and each server's CPU per
 * request from its own process.cpuUsage(). The server runs on a CPU of its
 * own and wrk on another (pin.ts): unpinned, where the scheduler put them
 * decided a round's CPU per request by 2× on our reference VM.
 *
 * The remote suite's "undici Pool.request → peercache handler" row measures
 * the same path client-bound (the undici client costs as much as the
 * server); this one shows what the endpoint costs when the server is the
 * bottleneck.
 */
import { parseArgs } from 'node:util'
import { request } from 'undici'
import { startServerChild, type ServerChild } from './child.js'
import { median } from './cluster-ratios.js'
import { ms, us, whole } from './format.js'
import type { BenchRow } from './harness.js'
import { describePins, servingPins } from './pin.js'
import { ensureWrk, runWrk, WRK_HINT, type WrkResult } from './wrk.js'

const SUITE = 'serving'
/** The cached key's path on the peer endpoint (server-child's group `bench`, 100-byte values). */
const PEER_PATH = '/_groupcache/bench/product%3A1'
/** One wrk thread, enough connections to keep one Node server busy. */
const WRK = { threads: 1, connections: 32 }
const WARMUP_SECS = 2
/** Headers node:http writes itself, or that describe one connection: not part of the recorded answer. */
const NOT_RECORDED = new Set(['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding'])

/** Side is one server under wrk: each round's figures. */
interface Side {
  name: string
  server: ServerChild
  url: string
  runs: Array<WrkResult & { cpuMicrosPerReq: number }>
}

let lastReport = ''

/** bench measures the two servers in interleaved rounds; [] (with a hint) when wrk is missing. */
export async function bench(argv: readonly string[] = []): Promise<BenchRow[]> {
  const wrk = ensureWrk()
  if (wrk === undefined) {
    console.error(WRK_HINT)
    return []
  }
  const { rounds, secs } = flags(argv)
  const pins = servingPins()
  const load = { ...WRK, cpus: pins?.client }
  const peer = await startServerChild('peercache', undefined, pins?.server)
  let raw: ServerChild | undefined
  try {
    const peerUrl = `${peer.url}${PEER_PATH}`
    await runWrk(wrk, peerUrl, { ...load, secs: WARMUP_SECS }) // caches the key, and gives it a request rate (minute_qps) as in the rounds
    const answer = await record(peerUrl)
    raw = await startServerChild('replay', [Buffer.from(answer.body).toString('base64'), JSON.stringify(answer.headers)], pins?.server)
    sameAnswer(answer, await record(`${raw.url}/`))
    const sides: [Side, Side] = [
      { name: 'wrk → bare node:http, the same bytes and headers', server: raw, url: `${raw.url}/`, runs: [] },
      { name: 'wrk → peercache peer endpoint, cached key', server: peer, url: peerUrl, runs: [] },
    ]
    await runWrk(wrk, sides[0].url, { ...load, secs: WARMUP_SECS })
    for (let round = 0; round < rounds; round++) {
      for (const side of round % 2 === 0 ? sides : [sides[1], sides[0]]) side.runs.push(await measure(wrk, side, secs, pins?.client))
    }
    lastReport = roundsTable(sides, secs, describePins(pins))
    return [servingRow(sides)]
  } finally {
    await Promise.all([peer.stop(), raw?.stop()])
  }
}

/** report is the per-round table printed after the common one. */
export function report(): string {
  return lastReport
}

function flags(argv: readonly string[]): { rounds: number; secs: number } {
  const { values } = parseArgs({ args: [...argv], allowPositionals: true, strict: false, options: { rounds: { type: 'string' }, secs: { type: 'string' } } })
  const rounds = Number(values.rounds ?? 12)
  const secs = Number(values.secs ?? 1)
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 100) throw new Error(`serving: --rounds takes 1 to 100, got ${String(values.rounds)}`)
  if (!Number.isInteger(secs) || secs < 1 || secs > 600) throw new Error(`serving: --secs takes whole seconds from 1 to 600, got ${String(values.secs)}`)
  return { rounds, secs }
}

/** Answer is a recorded HTTP answer: status, the headers that travel with it, the body. */
interface Answer {
  status: number
  headers: Record<string, string>
  body: Uint8Array
}

async function record(url: string): Promise<Answer> {
  const res = await request(url, { headersTimeout: 5_000, bodyTimeout: 5_000 })
  const body = new Uint8Array(await res.body.arrayBuffer())
  if (res.statusCode !== 200) throw new Error(`serving: ${url} answered ${res.statusCode}`)
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(res.headers)) if (!NOT_RECORDED.has(name) && value !== undefined) headers[name] = String(value)
  return { status: res.statusCode, headers, body }
}

/** sameAnswer checks that the bare server answers what the peer did: same body length and bytes, same headers. */
function sameAnswer(peer: Answer, raw: Answer): void {
  const same = JSON.stringify(peer.headers) === JSON.stringify(raw.headers) && Buffer.from(peer.body).equals(Buffer.from(raw.body))
  if (!same) throw new Error(`serving: the bare server's answer differs from the peer's: ${JSON.stringify(raw.headers)} vs ${JSON.stringify(peer.headers)}`)
}

async function measure(wrk: string, side: Side, secs: number, cpus: string | undefined): Promise<Side['runs'][number]> {
  const before = await side.server.cpuMicros()
  const result = await runWrk(wrk, side.url, { ...WRK, secs, cpus })
  const cpuMicros = (await side.server.cpuMicros()) - before
  return { ...result, cpuMicrosPerReq: cpuMicros / result.requests }
}

function servingRow([raw, peer]: [Side, Side]): BenchRow {
  const ratios = peer.runs.map((run, i) => run.reqPerSec / (raw.runs[i] as WrkResult).reqPerSec)
  const rate = (side: Side): number => median(side.runs.map((run) => run.reqPerSec))
  return { suite: SUITE, name: peer.name, opsPerSec: rate(peer), baseline: raw.name, baselineOpsPerSec: rate(raw), ratio: median(ratios) }
}

/** roundsTable is every round's figures and ratio, then the medians. */
function roundsTable([raw, peer]: [Side, Side], secs: number, pins: string): string {
  const lines = [
    `Serving, server-bound (wrk -t${WRK.threads} -c${WRK.connections}, ${secs} s per run, interleaved rounds, ${pins}; ratio target ≥ 0.9):`,
    '',
    '| round | bare node:http req/s | peer endpoint req/s | ratio | bare CPU / req | peer CPU / req | bare p99 | peer p99 |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  const ratios: number[] = []
  peer.runs.forEach((p, i) => {
    const r = raw.runs[i] as Side['runs'][number]
    ratios.push(p.reqPerSec / r.reqPerSec)
    const cells = [whole(r.reqPerSec), whole(p.reqPerSec), (p.reqPerSec / r.reqPerSec).toFixed(2), us(r.cpuMicrosPerReq), us(p.cpuMicrosPerReq), ms(r.p99Ms), ms(p.p99Ms)]
    lines.push(`| ${i + 1} | ${cells.join(' | ')} |`)
  })
  const m = (side: Side, field: 'reqPerSec' | 'cpuMicrosPerReq' | 'p99Ms'): number => median(side.runs.map((run) => run[field]))
  const cells = [whole(m(raw, 'reqPerSec')), whole(m(peer, 'reqPerSec')), median(ratios).toFixed(2), us(m(raw, 'cpuMicrosPerReq')), us(m(peer, 'cpuMicrosPerReq')), ms(m(raw, 'p99Ms')), ms(m(peer, 'p99Ms'))]
  lines.push(`| median | ${cells.join(' | ')} |`)
  return lines.join('\n')
}
