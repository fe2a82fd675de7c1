/**
 * Fuzzing the live peer endpoint (issue 7). fast-check generates requests —
 * methods (standard, unknown, malformed), request targets (our prefixes and
 * random ones, random segments with random percent-escapes, raw unicode and
 * control characters, over-long keys), headers (garbage Authorization,
 * lying or malformed Content-Length, broken chunked framing, Expect,
 * Upgrade, header injection), bodies (random bytes up to 2 KiB, or valid
 * SetRequest/BatchRequest messages) — and sends them to one
 * `cache.listen(0, '127.0.0.1')` server that has a secret, over raw `net`
 * sockets (anything goes: the socket is half-closed after the request, so an
 * incomplete request ends in EOF instead of a stall) and over an undici Pool
 * (keep-alive connections, requests undici accepts to send).
 *
 * About half the requests carry a valid signature, so the fuzzer reaches
 * the code behind authentication too (path decoding, protobuf decoding,
 * loads, PUT/DELETE), except writes that could touch the vault group.
 *
 * Properties, on every CI run (FUZZ_RUNS requests, 10,000 by default;
 * `npm run fuzz` runs 100,000):
 * - every answer is a well-formed HTTP/1.x response (or, only for CONNECT,
 *   which node hands to a 'connect' listener we do not have, a close);
 *   no request goes unanswered;
 * - the handler never answers 500 (its internal-error path);
 * - a request without a valid signature never gets a 2xx from a peer path;
 * - the process stays up, the server keeps listening and serving;
 * - memory stays bounded: after a full GC, the live heap (V8 heap + Buffers)
 *   grows by less than the caches' budgets plus overhead (40 MB), and RSS by
 *   less than a gross 512 MB (see RSS_BOUND);
 * - the sentinel key's cached value is unchanged and was loaded once.
 *
 * A summary line (count, statuses, duration) is printed for docs/security.md (Fuzzing).
 * FUZZ_SEED replays a run.
 */
import type { Server } from 'node:http'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import fc from 'fast-check'
import { Pool, errors as undiciErrors } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PeerAuth } from '../../src/auth.js'
import { NotFoundError, Peercache, serverUrl, type Group } from '../../src/index.js'
import { decodeGetResponse, encodeBatchRequest, encodeSetRequest } from '../../src/proto/codec.js'
import { finalResponse, parseResponses, portOf, rawExchange, viewOf, type BytesView } from '../helpers/security-http.js'

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000)
const SEED = process.env.FUZZ_SEED === undefined ? Date.now() ^ (Math.random() * 0x7fffffff) : Number(process.env.FUZZ_SEED)
/** Requests sent at once: one fast-check run is one batch of this many. */
const BATCH = 32
const SECRET = 'fuzz-shared-secret-0123456789'
const CAP = 64 * 1024
const SENTINEL = new TextEncoder().encode('sentinel value \u2603 that nothing may change')
const MB = 1024 * 1024
/**
 * RSS growth allowed over the run, measured after a full GC at both ends. A
 * gross bound only: RSS keeps the allocator's high-water mark (native memory
 * of sockets and parsers under 32 concurrent requests of up to 225 KB), so
 * it rises by 100–260 MB over the first ~25,000 requests and then stays flat
 * (measured up to 300,000). The live heap below is what catches a leak.
 */
const RSS_BOUND = 512 * MB
/**
 * Live-heap growth allowed over the run, after a full GC at both ends: the
 * caches' budgets (8 + 1 + 1 MiB) plus their per-entry overhead. A leak of
 * even 300 bytes per request fails the 100,000-request run.
 */
const HEAP_BOUND = 40 * MB

// A full GC before each measurement, so that the numbers are live memory and
// not garbage waiting for collection: expose V8's gc() without a CLI flag.
setFlagsFromString('--expose-gc')
const collect = runInNewContext('gc') as () => void

/** memory collects garbage, then reads rss and the live heap. */
function memory(): { rss: number; heap: number } {
  collect()
  collect()
  const usage = process.memoryUsage()
  return { rss: usage.rss, heap: usage.heapUsed + usage.external }
}
const BASE = '/_groupcache/'
const BATCH_BASE = '/_peercache/batch/'

const signer = new PeerAuth({ secrets: [SECRET] })
const staleSigner = new PeerAuth({ secrets: [SECRET], now: () => Date.now() - 120_000 })
const wrongSigner = new PeerAuth({ secrets: ['not-the-secret-0123456789'] })

// ---------------------------------------------------------------------------
// The request model and its generators.

type Framing = 'none' | 'length' | 'short' | 'long' | 'huge' | 'chunked' | 'bad-chunked' | 'both' | 'garbage-length'
type AuthMode = 'none' | 'valid' | 'garbage' | 'stale' | 'wrong-secret'

interface FuzzRequest {
  lane: 'raw' | 'undici'
  method: string
  target: string
  version: string
  host: boolean
  headers: Array<[string, string]>
  body: Uint8Array
  framing: Framing
  auth: AuthMode
  garbageAuth: string
}

const HEX = [...'0123456789abcdefABCDEF']
const TOKEN_CHARS = [..."!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"]

const escapeArb = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...HEX), fc.constantFrom(...HEX)).map(([a, b]) => `%${a}${b}`) },
  { weight: 2, arbitrary: fc.constantFrom('%', '%z', '%zz', '%C3', '%E2%82', '%ED%A0%80', '%F0%9F%98%80', '%2F', '%2f', '%00', '%25', '%0D%0A', '%20', '+', '%C0%AF', '%FF') },
)
const pathCharArb = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...'abcxyz019-._~') },
  { weight: 2, arbitrary: fc.constantFrom('/', '//', '..', '.', '?', '#', '&', '=', ';', '@', ':', '!', '$', "'", '(', ')', '*', ',', '[', ']', '\\', '"', '<', '>') },
  { weight: 4, arbitrary: escapeArb },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
)
const segmentArb = fc.oneof(
  { weight: 300, arbitrary: fc.array(pathCharArb, { maxLength: 24 }).map((chars) => chars.join('')) },
  { weight: 80, arbitrary: fc.constantFrom('kv', 'vault', 'sentinel', 'small', 'nope', 'missing-1', 'fail-1', 'a', '') },
  // Over-long keys, around maxKeyBytes (64 KiB), and rarely a request line over maxHeaderSize.
  { weight: 2, arbitrary: fc.integer({ min: 60_000, max: 70_000 }).map((n) => 'k'.repeat(n)) },
  { weight: 1, arbitrary: fc.constant('%61'.repeat(75_000)) },
)
const prefixArb = fc.constantFrom(
  BASE,
  `${BASE}kv/`,
  `${BASE}kv/`,
  `${BASE}kv/`,
  `${BASE}vault/`,
  `${BASE}small/`,
  `${BASE}nope/`,
  `${BASE}%6Bv/`,
  `${BASE}vault/sentinel`,
  '/_GROUPCACHE/kv/',
  '/_groupcache',
  BATCH_BASE,
  `${BATCH_BASE}kv`,
  `${BATCH_BASE}kv`,
  `${BATCH_BASE}vault`,
  `${BATCH_BASE}nope`,
  '/metrics',
  '/',
  '',
  '*',
  'http://127.0.0.1/_groupcache/kv/',
  '//_groupcache/kv/',
  '/_groupcache/../_groupcache/kv/',
)
const targetArb = fc
  .tuple(prefixArb, fc.array(segmentArb, { maxLength: 3 }), fc.constantFrom('', '', '', '', '?x=1', '?', '#frag', '?a=%zz'))
  .map(([prefix, segments, suffix]) => prefix + segments.join('/') + suffix)

const methodArb = fc.oneof(
  { weight: 24, arbitrary: fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'PUT', 'PUT', 'DELETE', 'POST', 'POST') },
  { weight: 4, arbitrary: fc.constantFrom('PATCH', 'OPTIONS', 'TRACE', 'PROPFIND', 'MKCOL', 'PURGE', 'SEARCH', 'QUERY', 'CONNECT', 'FOO', 'get', 'Get', 'G ET', 'GET\t', '') },
  { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
)
const versionArb = fc.oneof(
  { weight: 30, arbitrary: fc.constant('HTTP/1.1') },
  { weight: 3, arbitrary: fc.constantFrom('HTTP/1.0', 'HTTP/2.0', 'HTTP/0.9', 'http/1.1', 'HTTP/1.12', 'HTTP/1.1 ', '', 'HTTP/3', 'ICE/1.0') },
)
const AUTH_GARBAGE = [
  'Peercache',
  'Peercache t=,s=',
  `Peercache t=0,s=${'0'.repeat(64)}`,
  `Peercache t=99999999999999999,s=${'f'.repeat(64)}`,
  `Peercache t=1700000000,s=${'A'.repeat(64)}`,
  `Peercache  t=1700000000,   s=${'1'.repeat(63)}`,
  'Bearer abc.def.ghi',
  'Basic Zm9vOmJhcg==',
  `Peercache t=1700000000,s=${'0'.repeat(64)},x=1`,
  'P'.repeat(600),
]
const headerNameArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('Accept', 'User-Agent', 'X-Forwarded-For', 'Cookie', 'Content-Type', 'X-Peercache-Error', 'Range', 'If-None-Match', 'Expect', 'Upgrade', 'Authorization', 'Content-Length', 'Transfer-Encoding', 'Host', 'Connection', 'Keep-Alive', 'Trailer', 'TE', 'Content-Encoding') },
  { weight: 3, arbitrary: fc.string({ unit: fc.constantFrom(...TOKEN_CHARS), minLength: 1, maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
)
const headerValueArb = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 40 }) },
  { weight: 3, arbitrary: fc.constantFrom('100-continue', 'websocket', 'h2c', 'chunked', 'gzip, chunked', 'close', 'keep-alive', 'upgrade', '0', '-1', '1e3', '18446744073709551616', 'application/x-protobuf', 'bytes=0-1', ...AUTH_GARBAGE) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 20_000 }).map((n) => 'v'.repeat(n)) },
)
const bodyArb = fc.oneof(
  { weight: 5, arbitrary: fc.constant(new Uint8Array(0)) },
  { weight: 5, arbitrary: fc.uint8Array({ maxLength: 2048 }) },
  {
    weight: 2,
    arbitrary: fc
      .record({ group: fc.constantFrom('kv', 'small', 'vault', 'nope'), key: fc.string({ maxLength: 40 }), value: fc.uint8Array({ maxLength: 1024 }) })
      .filter((m) => m.key.isWellFormed())
      .map((m) => encodeSetRequest({ ...m, expiresAt: 0 })),
  },
  {
    weight: 2,
    arbitrary: fc
      .array(fc.string({ maxLength: 40 }), { maxLength: 40 })
      .filter((keys) => keys.every((k) => k.isWellFormed()))
      .map((keys) => encodeBatchRequest(keys)),
  },
)
const framingArb = fc.oneof(
  { weight: 30, arbitrary: fc.constant<Framing>('length') },
  { weight: 6, arbitrary: fc.constant<Framing>('none') },
  { weight: 4, arbitrary: fc.constant<Framing>('chunked') },
  { weight: 1, arbitrary: fc.constantFrom<Framing>('short', 'long', 'huge', 'bad-chunked', 'both', 'garbage-length') },
)
const authArb = fc.oneof(
  { weight: 10, arbitrary: fc.constant<AuthMode>('valid') },
  { weight: 5, arbitrary: fc.constant<AuthMode>('none') },
  { weight: 3, arbitrary: fc.constantFrom<AuthMode>('garbage', 'stale', 'wrong-secret') },
)

/** A random request: any method, target, headers, framing and body. */
const randomRequestArb: fc.Arbitrary<FuzzRequest> = fc.record({
  lane: fc.constantFrom<'raw' | 'undici'>('raw', 'raw', 'undici'),
  method: methodArb,
  target: targetArb,
  version: versionArb,
  host: fc.oneof({ weight: 20, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  headers: fc.array(fc.tuple(headerNameArb, headerValueArb), { maxLength: 4 }),
  body: bodyArb,
  framing: framingArb,
  auth: authArb,
  garbageAuth: fc.oneof(fc.constantFrom(...AUTH_GARBAGE), headerValueArb),
})

/** A request of the right shape for the protocol (a real GET/PUT/DELETE/batch), so the fuzz also walks the paths that succeed. */
const keyArb = fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.constantFrom('sentinel', 'missing-1', 'fail-1', 'a/b', '%', '+ +', '')).filter((k) => k.isWellFormed())
const coherentRequestArb: fc.Arbitrary<FuzzRequest> = fc
  .record({
    lane: fc.constantFrom<'raw' | 'undici'>('raw', 'undici'),
    verb: fc.constantFrom('GET', 'GET', 'HEAD', 'PUT', 'DELETE', 'POST'),
    group: fc.constantFrom('kv', 'kv', 'kv', 'small', 'vault', 'nope'),
    keys: fc.array(keyArb, { minLength: 1, maxLength: 20 }),
    value: fc.uint8Array({ maxLength: 1024 }),
    auth: authArb,
  })
  .map(({ lane, verb, group, keys, value, auth }) => {
    const key = keys[0] as string
    const batch = verb === 'POST'
    const target = batch ? BATCH_BASE + encodeURIComponent(group) : BASE + encodeURIComponent(group) + '/' + encodeURIComponent(key)
    const body = verb === 'PUT' ? encodeSetRequest({ group, key, value, expiresAt: 0 }) : batch ? encodeBatchRequest(keys) : new Uint8Array(0)
    return { lane, method: verb, target, version: 'HTTP/1.1', host: true, headers: [], body, framing: 'length' as Framing, auth, garbageAuth: AUTH_GARBAGE[0] as string }
  })

const requestArb = fc.oneof({ weight: 3, arbitrary: randomRequestArb }, { weight: 1, arbitrary: coherentRequestArb })

// ---------------------------------------------------------------------------
// Sending.

/** sameBytes compares byte contents (a Buffer and a Uint8Array with the same bytes are the same). */
const sameBytes = (a: BytesView | undefined, b: Uint8Array): boolean => a !== undefined && (viewOf(a) as Buffer).equals(Buffer.from(b))

/** The path as the handler routes it (before any query). */
const pathOf = (target: string): string => target.split('?')[0] as string

/** True when target may name the vault group (decoded or not): valid signatures never go to writes there. */
function mayTouchVault(target: string): boolean {
  let decoded = target
  try {
    decoded = decodeURIComponent(target)
  } catch {
    // undecodable: the handler answers 400 before using it, but stay on the safe side
  }
  return /vault/i.test(target) || /vault/i.test(decoded)
}

/** The Authorization header a request carries, or undefined. */
function authorizationOf(request: FuzzRequest): string | undefined {
  const signedBody = request.method === 'PUT' || request.method === 'POST' ? request.body : undefined
  switch (request.auth) {
    case 'none':
      return undefined
    case 'garbage':
      return request.garbageAuth
    case 'stale':
      return staleSigner.sign(request.method, request.target, signedBody)
    case 'wrong-secret':
      return wrongSigner.sign(request.method, request.target, signedBody)
    case 'valid':
      return signer.sign(request.method, request.target, signedBody)
  }
}

/** withSafeAuth downgrades a valid signature on a write that could reach the vault: the sentinel must only be attacked unsigned. */
function withSafeAuth(request: FuzzRequest): FuzzRequest {
  const readOnly = request.method === 'GET' || request.method === 'HEAD' || request.method === 'POST'
  if (request.auth === 'valid' && !readOnly && mayTouchVault(request.target)) return { ...request, auth: 'none' }
  return request
}

/** rawBytes lays a request out on the wire, framing included (lies and all). */
function rawBytes(request: FuzzRequest): Buffer {
  const lines = [`${request.method} ${request.target} ${request.version}`]
  if (request.host) lines.push('Host: peer')
  for (const [name, value] of request.headers) lines.push(`${name}: ${value}`)
  const authorization = authorizationOf(request)
  if (authorization !== undefined) lines.push(`Authorization: ${authorization}`)
  const body = Buffer.from(request.body)
  let payload: Buffer = body
  switch (request.framing) {
    case 'none':
      break
    case 'length':
      lines.push(`Content-Length: ${body.length}`)
      break
    case 'short':
      lines.push(`Content-Length: ${body.length + 1 + (body.length % 97)}`)
      break
    case 'long':
      lines.push(`Content-Length: ${Math.max(0, body.length - 1 - (body.length % 13))}`)
      break
    case 'huge':
      lines.push(`Content-Length: ${[CAP + 1, 2 ** 31, 2 ** 53 + 2, '99999999999999999999999'][body.length % 4]}`)
      break
    case 'chunked':
      lines.push('Transfer-Encoding: chunked')
      payload = Buffer.concat([body.length > 0 ? Buffer.from(`${body.length.toString(16)}\r\n`) : Buffer.alloc(0), body, Buffer.from(body.length > 0 ? '\r\n0\r\n\r\n' : '0\r\n\r\n')])
      break
    case 'bad-chunked':
      lines.push('Transfer-Encoding: chunked')
      payload = Buffer.concat([Buffer.from(['zz\r\n', 'ffffffffffffffffff\r\n', '5\r\nab', '-1\r\n'][body.length % 4] as string), body])
      break
    case 'both':
      lines.push(`Content-Length: ${body.length}`, 'Transfer-Encoding: chunked')
      break
    case 'garbage-length':
      lines.push(`Content-Length: ${['abc', '-1', '1,1', ' 5 5', '0x10', '+1'][body.length % 6]}`)
      if (body.length % 2 === 0) lines.push(`Content-Length: ${body.length + 1}`)
      break
  }
  lines.push('Connection: close')
  return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'utf8'), payload])
}

/** What undici will send as is; undefined when the request is not expressible through undici (it then goes raw). */
function undiciRequest(request: FuzzRequest): { method: string; path: string; headers: Record<string, string>; body: Uint8Array | null } | undefined {
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(request.method) || request.method === 'CONNECT') return undefined
  if (!request.target.startsWith('/') || /[^\x21-\x7e]/.test(request.target) || request.target.includes('#')) return undefined
  if (request.framing !== 'length' || !request.host || request.version !== 'HTTP/1.1') return undefined
  const headers: Record<string, string> = {}
  for (const [name, value] of request.headers) {
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name) || /[^\t\x20-\x7e]/.test(value)) continue
    if (/^(connection|transfer-encoding|keep-alive|upgrade|expect|content-length|host|te|trailer|authorization)$/i.test(name)) continue
    headers[name.toLowerCase()] = value.trim()
  }
  const authorization = authorizationOf(request)
  if (authorization !== undefined) {
    if (/[^\t\x20-\x7e]/.test(authorization)) return undefined
    headers.authorization = authorization
  }
  const bodyless = request.method === 'GET' || request.method === 'HEAD'
  if (bodyless && request.body.length > 0) return undefined
  return { method: request.method, path: request.target, headers, body: request.body.length > 0 ? request.body : null }
}

interface Outcome {
  lane: 'raw' | 'undici'
  /** The final status, or 'closed' (no bytes, connection closed). */
  status: number | 'closed'
  problem?: string
}

// ---------------------------------------------------------------------------
// The server under test.

let cache: Peercache
let server: Server
let port: number
let pool: Pool
let vault: Group
let sentinelLoads = 0

beforeAll(async () => {
  cache = new Peercache({ env: {}, secret: SECRET, metricsPath: '/metrics', server: { maxRequestBytes: CAP, headersTimeoutMs: 5000, requestTimeoutMs: 10_000, keepAliveTimeoutMs: 5000, checkIntervalMs: 500 }, deploy: { closeTimeoutMs: 1000 } })
  cache.group({
    name: 'kv',
    cacheBytes: 8 << 20,
    load: (key) => {
      if (key.startsWith('missing')) throw new NotFoundError(`no ${key}`)
      if (key.startsWith('fail')) throw new Error('origin is down')
      return `v(${key})`
    },
  })
  cache.group({ name: 'small', cacheBytes: 1 << 20, maxKeyBytes: 32, load: (key) => `s(${key})` })
  vault = cache.group({
    name: 'vault',
    cacheBytes: 1 << 20,
    load: (key) => {
      if (key !== 'sentinel') throw new NotFoundError('the vault holds one key')
      sentinelLoads++
      return SENTINEL
    },
  })
  server = await cache.listen(0, '127.0.0.1')
  port = portOf(server)
  pool = new Pool(serverUrl(server), { connections: 16 })
  expect(sameBytes(await vault.get('sentinel'), SENTINEL)).toBe(true)
})

afterAll(async () => {
  await pool?.destroy()
  await cache?.close()
})

/** send sends one request on its lane and judges the answer (problem set when a property is broken). */
async function send(request: FuzzRequest): Promise<Outcome> {
  const viaUndici = request.lane === 'undici' ? undiciRequest(request) : undefined
  if (viaUndici !== undefined) {
    try {
      const response = await pool.request({ ...viaUndici, method: viaUndici.method as 'GET', headersTimeout: 10_000, bodyTimeout: 10_000 })
      await response.body.dump({ limit: 1 << 20 })
      return judge(request, { lane: 'undici', status: response.statusCode })
    } catch (err) {
      // undici refused to send it (its own validation): send it raw instead.
      if (!(err instanceof undiciErrors.InvalidArgumentError)) return { lane: 'undici', status: 'closed', problem: `undici: ${(err as Error).name}: ${(err as Error).message}` }
    }
  }
  const result = await rawExchange(port, rawBytes(request), { halfClose: true, timeoutMs: 10_000 })
  if (result.timedOut) return { lane: 'raw', status: 'closed', problem: 'no answer within 10 s' }
  if (result.bytes.length === 0) {
    // node hands CONNECT to a 'connect' listener; without one it closes the socket.
    return { lane: 'raw', status: 'closed', ...(request.method === 'CONNECT' ? {} : { problem: `closed without an answer (${result.error ?? 'FIN'})` }) }
  }
  let status: number
  try {
    const response = finalResponse(parseResponses(result.bytes, { headOnly: request.method === 'HEAD' }))
    if (response === undefined) return { lane: 'raw', status: 'closed', problem: 'only interim responses' }
    status = response.status
  } catch (err) {
    return { lane: 'raw', status: 'closed', problem: `malformed response: ${(err as Error).message}` }
  }
  return judge(request, { lane: 'raw', status })
}

function judge(request: FuzzRequest, outcome: Outcome): Outcome {
  const status = outcome.status as number
  if (status === 500) return { ...outcome, problem: 'the handler answered 500' }
  if (status < 100 || status > 599) return { ...outcome, problem: `status ${status}` }
  const path = pathOf(request.target)
  const peerPath = path.startsWith(BASE) || path.startsWith(BATCH_BASE)
  if (status >= 200 && status < 300 && peerPath && request.auth !== 'valid') return { ...outcome, problem: 'a peer path answered 2xx without a valid signature' }
  return outcome
}

/** mb formats a byte count in MB with its sign. */
const mb = (bytes: number): string => `${bytes >= 0 ? '+' : ''}${(bytes / MB).toFixed(1)}`

/** describeRequest shows a failing request compactly (bodies and long strings cut). */
function describeRequest(request: FuzzRequest): string {
  const cut = (s: string): string => (s.length > 200 ? `${s.slice(0, 200)}…(${s.length})` : s)
  return JSON.stringify({ ...request, target: cut(request.target), headers: request.headers.map(([n, v]) => [cut(n), cut(v)]), body: `${request.body.length} bytes`, garbageAuth: cut(request.garbageAuth) })
}

describe('fuzzing the peer endpoint', () => {
  it(
    `answers ${RUNS} generated requests well-formed, never 500, without leaking memory or touching the sentinel`,
    async () => {
      const statuses = new Map<string, number>()
      const lanes = { raw: 0, undici: 0 }
      let sent = 0
      /** Writes (PUT/DELETE) aimed at the vault group, all unsigned (withSafeAuth): attacks on the sentinel. */
      let vaultAttacks = 0
      const before = memory()
      const started = performance.now()

      await fc.assert(
        fc.asyncProperty(fc.array(requestArb, { minLength: BATCH, maxLength: BATCH }), async (generated) => {
          const batch = generated.map(withSafeAuth)
          const outcomes = await Promise.all(batch.map(send))
          const failures: string[] = []
          outcomes.forEach((outcome, i) => {
            sent++
            const request = batch[i]!
            if ((request.method === 'PUT' || request.method === 'DELETE') && pathOf(request.target).startsWith(`${BASE}vault/`)) vaultAttacks++
            lanes[outcome.lane]++
            const key = String(outcome.status)
            statuses.set(key, (statuses.get(key) ?? 0) + 1)
            if (outcome.problem !== undefined) failures.push(`${outcome.problem}: ${describeRequest(request)}`)
          })
          if (failures.length > 0) throw new Error(`${failures.length} bad answers, first: ${failures[0]}`)
        }),
        { numRuns: Math.ceil(RUNS / BATCH), seed: SEED },
      )

      const seconds = (performance.now() - started) / 1000
      const afterRun = memory()
      const rssGrowth = afterRun.rss - before.rss
      const heapGrowth = afterRun.heap - before.heap

      // The server is up and serving; the sentinel is untouched (same bytes, loaded once).
      expect(server.listening).toBe(true)
      const after = await pool.request({ method: 'GET', path: `${BASE}kv/after-the-fuzz`, headers: { authorization: signer.sign('GET', `${BASE}kv/after-the-fuzz`) } })
      expect(after.statusCode).toBe(200)
      expect(new TextDecoder().decode(decodeGetResponse(new Uint8Array(await after.body.arrayBuffer())).value)).toBe('v(after-the-fuzz)')
      expect(sameBytes(vault.peek('sentinel'), SENTINEL)).toBe(true)
      expect(sentinelLoads).toBe(1)
      expect(vaultAttacks).toBeGreaterThan(0)
      expect(sent).toBeGreaterThanOrEqual(RUNS)
      expect(heapGrowth).toBeLessThan(HEAP_BOUND)
      expect(rssGrowth).toBeLessThan(RSS_BOUND)

      const histogram = [...statuses.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([s, n]) => `${s}:${n}`).join(' ')
      console.log(
        `FUZZ-RESULT: ${sent} requests (raw ${lanes.raw}, undici ${lanes.undici}) in ${seconds.toFixed(1)} s (${Math.round(sent / seconds)}/s), ` +
          `seed ${SEED}, statuses {${histogram}}, 0 malformed, 0 unanswered, 0 × 500, ` +
          `heap ${mb(heapGrowth)} MB, rss ${mb(rssGrowth)} MB (after GC), sentinel unchanged after ${vaultAttacks} unsigned writes at the vault (node ${process.version})`,
      )
    },
    Math.max(60_000, RUNS * 4),
  )
})
