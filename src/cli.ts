#!/usr/bin/env node
/**
 * cli: the `peercache` command. `peercache status <url>` fetches a cluster's
 * status from a statusHandler() (asking for JSON), checks its shape and
 * prints it as tables. Bounded: a timeout for the whole fetch and a cap on
 * the body. Exit codes: 0 printed, 1 the fetch or the answer failed, 2 bad
 * usage.
 */
import { parseClusterStatus } from './status/parse.js'
import { renderTables } from './status/tables.js'

const USAGE = 'usage: peercache status <url> [--timeout <ms>]\n  url: where your app mounts cache.statusHandler(), e.g. http://127.0.0.1:3000/status\n'
/** Largest status accepted: many peers' reports. */
const MAX_BODY_BYTES = 16 * 1024 * 1024
const DEFAULT_TIMEOUT_MS = 10_000

/** CliIo is where the command writes (injected so it could be run in-process; the tests run it as a child). */
interface CliIo {
  out: (text: string) => void
  err: (text: string) => void
}

/** main runs the command line and resolves to the exit code. */
async function main(args: readonly string[], io: CliIo): Promise<number> {
  const [command, url, ...rest] = args
  if (command !== 'status' || url === undefined) return usage(io, command === undefined || command === '--help' ? undefined : `unknown command or missing url: ${args.join(' ')}`)
  const timeoutMs = parseTimeout(rest)
  if (timeoutMs === undefined) return usage(io, `bad options: ${rest.join(' ')}`)
  let target: URL
  try {
    target = new URL(url)
    if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new Error('not http(s)')
  } catch {
    return usage(io, `not an http(s) URL: ${url}`)
  }
  try {
    const cluster = parseClusterStatus(await fetchJson(target, timeoutMs))
    io.out(renderTables(cluster))
    return 0
  } catch (err) {
    io.err(`peercache status: ${err instanceof Error ? err.message : String(err)}\n`)
    return 1
  }
}

function usage(io: CliIo, problem: string | undefined): number {
  io.err((problem === undefined ? '' : `${problem}\n`) + USAGE)
  return 2
}

function parseTimeout(rest: readonly string[]): number | undefined {
  if (rest.length === 0) return DEFAULT_TIMEOUT_MS
  if (rest.length !== 2 || rest[0] !== '--timeout') return undefined
  const ms = Number(rest[1])
  return Number.isInteger(ms) && ms > 0 && ms <= 2 ** 31 - 1 ? ms : undefined
}

/** fetchJson GETs url asking for JSON, reads at most MAX_BODY_BYTES, and parses it. */
async function fetchJson(url: URL, timeoutMs: number): Promise<unknown> {
  const signal = AbortSignal.timeout(timeoutMs)
  const response = await fetch(url, { headers: { accept: 'application/json' }, signal, redirect: 'error' })
  const body = await readCapped(response, MAX_BODY_BYTES)
  if (!response.ok) throw new Error(`${url.href} answered ${response.status}: ${body.slice(0, 200).trim()}`)
  try {
    return JSON.parse(body) as unknown
  } catch {
    throw new Error(`${url.href} did not answer JSON: is it a statusHandler()?`)
  }
}

async function readCapped(response: Response, cap: number): Promise<string> {
  const chunks: Uint8Array[] = []
  let total = 0
  if (response.body === null) return ''
  for await (const chunk of response.body) {
    total += chunk.byteLength
    if (total > cap) throw new Error(`the status exceeds ${cap} bytes`)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

const io: CliIo = { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) }
process.exitCode = await main(process.argv.slice(2), io)
