/**
 * gather: the whole cluster's status, as one process sees it. It asks every
 * other peer for its report on the status path (ask.ts: GET
 * /_peercache/status, signed like every peer request), at most
 * `concurrency` at once, each bounded by `timeoutMs` and its body by
 * `maxBodyBytes`, and times each answer (the round trips feed the latency
 * averages). A peer that does not answer in time is `unreachable`; a bare
 * 404 is a peer without the status path (a Go groupcache peer): `no-status`.
 */
import { performance } from 'node:perf_hooks'
import { textDecoder } from '../bytes.js'
import { PeerTimeoutError, ResponseTooLargeError } from '../errors.js'
import type { PeerResponse } from '../peers/exchange.js'
import { ERROR_HEADER } from '../proto/paths.js'
import type { AskStatus } from './ask.js'
import { parseStatus } from './parse.js'
import type { StatusReporter } from './report.js'
import { NO_SELF, STATUS_VERSION, type ClusterMemberStatus, type ClusterStatus, type MemberState } from './types.js'

/** GatherOptions bound one gathering (resolved statusHandler options). */
export interface GatherOptions {
  timeoutMs: number
  concurrency: number
  maxBodyBytes: number
}

/** Longest error text kept from a peer's answer. */
const MAX_ERROR_CHARS = 200

/** gatherCluster asks every peer in peers (URLs, not self) for its status and adds this process's own report. */
export async function gatherCluster(reporter: StatusReporter, peers: readonly string[], ask: AskStatus, options: GatherOptions): Promise<ClusterStatus> {
  const answers = await eachBounded(peers, options.concurrency, (url) => askPeer(url, ask, options, reporter))
  // Made after the answers, so that its latencies include this gathering's round trips.
  const own = reporter.report()
  const members: ClusterMemberStatus[] = [{ url: own.self ?? NO_SELF, state: 'ok', roundTripMs: 0, error: null, status: own }, ...answers]
  members.sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0))
  return { version: STATUS_VERSION, gatheredBy: own.self, at: own.at, members }
}

/** eachBounded maps items through ask, at most `limit` at a time, keeping their order. */
async function eachBounded<T, R>(items: readonly T[], limit: number, ask: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++
      results[index] = await ask(items[index] as T)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}

/** askPeer asks one peer for its status; it never throws: every failure is the member's state. */
async function askPeer(url: string, ask: AskStatus, options: GatherOptions, reporter: StatusReporter): Promise<ClusterMemberStatus> {
  const started = performance.now()
  let response: PeerResponse
  try {
    response = await ask(url, options.timeoutMs, options.maxBodyBytes)
  } catch (err) {
    if (err instanceof ResponseTooLargeError) return failed(url, 'error', elapsed(started), `status exceeds ${options.maxBodyBytes} bytes`)
    return failed(url, 'unreachable', null, err instanceof PeerTimeoutError ? `no answer within ${options.timeoutMs} ms` : describe(err))
  }
  const roundTripMs = elapsed(started)
  reporter.latency.record(url, roundTripMs)
  return readAnswer(url, response, roundTripMs)
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10
}

function readAnswer(url: string, response: PeerResponse, roundTripMs: number): ClusterMemberStatus {
  if (response.status === 404 && response.headers[ERROR_HEADER] === undefined) return failed(url, 'no-status', roundTripMs, 'no status path (a Go groupcache peer?)')
  if (response.status !== 200) return failed(url, 'error', roundTripMs, `answered ${response.status}: ${bodyText(response.body)}`)
  try {
    const status = parseStatus(JSON.parse(textDecoder.decode(response.body)) as unknown)
    return { url, state: 'ok', roundTripMs, error: null, status }
  } catch (err) {
    return failed(url, 'error', roundTripMs, `answered a status that cannot be read: ${describe(err)}`)
  }
}

function failed(url: string, state: MemberState, roundTripMs: number | null, error: string): ClusterMemberStatus {
  return { url, state, roundTripMs, error: error.slice(0, MAX_ERROR_CHARS), status: null }
}

function bodyText(body: Uint8Array): string {
  return textDecoder.decode(body.subarray(0, MAX_ERROR_CHARS)).trim()
}

/** describe names a failure by its code (ECONNREFUSED, …) and message. */
function describe(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  const message = err instanceof Error ? err.message : String(err)
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message
}
