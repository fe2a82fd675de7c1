/**
 * serve: what the peer endpoint answers, whatever HTTP server carries it.
 * The node:http handler (handler.ts) and the fastify plugin (fastify.ts)
 * both route a request here in two steps — `admit` before the body is read
 * (so an unsigned write is refused without buffering it), `answer` once it
 * is in hand — and write the PeerReply they get back. So both speak Go
 * groupcache's protocol byte for byte (status codes, error bodies, headers;
 * see test/fixtures) and add the same things Go leaves out: a marker header
 * on 404s and on the loader-failure 503, authentication, and bounds on every input.
 *
 * Requests that reach it come from peers, so it never forwards: it answers
 * from the caches or loads locally (ServedGroup, group/owner.ts), which is
 * what keeps two processes with different peer lists from looping.
 */
import type { ServerResponse } from 'node:http'
import type { PeerAuth } from '../auth.js'
import { AuthError, ClosedError, NotFoundError, PeercacheError } from '../errors.js'
import type { ServedEntry, ServedGroup } from '../group/owner.js'
import type { Logger } from '../logger.js'
import type { ServeTrace, Tracer } from '../tracing.js'
import { decodeBatchRequest, decodeSetRequest, encodeGetResponse } from '../proto/codec.js'
import { writeBatch } from './batch-answer.js'
import type { SendQueue } from './send-queue.js'
import { BATCH_BASE_PATH, CLEAR_BASE_PATH, ERROR_HEADER, HELLO_PATH, PEEK_BASE_PATH, STATUS_PATH, errorHeaderValue, decodePercent, parsePeerPath, parsePeerQuery, type PeerQuery } from '../proto/paths.js'
import type { Hello } from '../proto/hello.js'

/** HandlerContext is what the peer endpoint needs from its Peercache. */
export interface HandlerContext {
  basePath: string
  group(name: string): ServedGroup | undefined
  /** Longest key any group accepts, in UTF-8 bytes: bounds the path before decoding. */
  maxKeyBytes(): number
  auth: PeerAuth | undefined
  closing(): boolean
  logger: Logger
  /** Largest request body (PUT value, batch keys) accepted, in bytes. */
  maxRequestBytes: number
  /** Opt-in path that serves Prometheus metrics (GET), or undefined. */
  metricsPath: string | undefined
  metrics(): string
  /** This process's configuration, for the handshake (proto/hello.ts). */
  hello(): Hello
  /** This process's status report (cache.status()), answered on STATUS_PATH. */
  status(): unknown
  /** The instance's tracing channels: the owner's answers run inside `peercache:serve` (tracing.ts). */
  tracer: Tracer
  /** The bounds on answer bytes queued for clients that do not read (send-queue.ts): full, value answers are refused busy. */
  sendQueue: SendQueue
}

/** PeerRequest is one request to the peer endpoint, as any HTTP server sees it. */
export interface PeerRequest {
  method: string
  /** The request target as it travelled (path and query): what the peer signed. */
  target: string
  /** The target's path, which routes the request. */
  path: string
  authorization: string | undefined
  /** The request's headers, read for the asker's trace context (traceparent, tracestate) only while someone traces. */
  headers?: Readonly<Record<string, string | string[] | undefined>>
  /** The connection (socket) it came on: the send queue bounds what one connection holds (send-queue.ts). */
  connection?: object
}

/** PeerReply is the endpoint's answer, for the server to write as it is. */
export interface PeerReply {
  status: number
  /** Content-Type, or undefined for an empty 200. */
  contentType: string | undefined
  body: Uint8Array
  /** Further headers: Allow, X-Peercache-Error, X-Content-Type-Options, Connection. */
  headers: Readonly<Record<string, string>> | undefined
  /** A HEAD request: send the headers of body (its length included), not body. */
  headOnly: boolean
  /**
   * A streamed answer (a batch): the server hands its response over and
   * `write` writes status, headers and body as they become ready
   * (batch-answer.ts); status, contentType and body above are then unused.
   */
  write?: (res: ServerResponse) => Promise<void>
}

/** PeerRoute names the endpoint's resources. */
export type PeerRoute = 'key' | 'batch' | 'peek' | 'clear' | 'metrics' | 'hello' | 'status'

/** KEY_METHODS are the methods of {basePath}{group}/{key}. */
const KEY_METHODS: readonly string[] = ['GET', 'HEAD', 'PUT', 'DELETE']

/** routeOf returns the resource a path names, or undefined when the path is not the endpoint's. */
export function routeOf(ctx: HandlerContext, path: string): PeerRoute | undefined {
  if (path.startsWith(ctx.basePath)) return 'key'
  if (path.startsWith(BATCH_BASE_PATH)) return 'batch'
  if (path.startsWith(PEEK_BASE_PATH)) return 'peek'
  if (path.startsWith(CLEAR_BASE_PATH)) return 'clear'
  if (path === HELLO_PATH) return 'hello'
  if (path === STATUS_PATH) return 'status'
  if (ctx.metricsPath !== undefined && path === ctx.metricsPath) return 'metrics'
  return undefined
}

/** hasBody tells whether a request on route carries a body to read (PUT of a value, POST of a batch or a clear). */
export function hasBody(route: PeerRoute, method: string): boolean {
  return (route === 'key' && method === 'PUT') || ((route === 'batch' || route === 'clear') && method === 'POST')
}

/**
 * admit makes the checks that need no body: shutting down, path length,
 * method, and (for a request with a body) a signature that is present and
 * fresh. It returns the refusal, or undefined to read the body and answer.
 */
export function admit(ctx: HandlerContext, route: PeerRoute, req: PeerRequest): PeerReply | undefined {
  if (route === 'metrics') return req.method === 'GET' || req.method === 'HEAD' ? undefined : methodNotAllowed('GET, HEAD')
  if (ctx.closing()) return errorReply(503, 'shutting down', errorHeaderValue.closing)
  if (route === 'key') {
    // Percent-encoding triples a byte at most: a longer path cannot hold a valid key.
    if (req.path.length > ctx.basePath.length + 3 * (255 + 1 + ctx.maxKeyBytes())) return errorReply(414, 'request path too long')
    if (!KEY_METHODS.includes(req.method)) return methodNotAllowed(KEY_METHODS.join(', '))
  } else if (route === 'peek') {
    if (req.path.length > PEEK_BASE_PATH.length + 3 * (255 + 1 + ctx.maxKeyBytes())) return errorReply(414, 'request path too long')
    if (req.method !== 'GET') return methodNotAllowed('GET')
  } else if (route === 'hello') {
    if (req.method !== 'GET') return methodNotAllowed('GET')
  } else if (route === 'status') {
    if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed('GET, HEAD')
  } else if (req.method !== 'POST') return methodNotAllowed('POST')
  const auth = ctx.auth
  if (auth === undefined || !hasBody(route, req.method)) return undefined
  // On refusal the body is left unread: that connection cannot carry another request.
  return refusal(() => auth.precheck(req.authorization), true)
}

/**
 * answer answers an admitted request whose body is in hand (empty when it
 * has none). A cached value is answered synchronously (the serving hot path:
 * no await, no signal); otherwise it resolves to the reply, or to undefined
 * when the client left before it was ready.
 */
export function answer(ctx: HandlerContext, route: PeerRoute, req: PeerRequest, body: Uint8Array): PeerReply | Promise<PeerReply> {
  if (route === 'metrics') return bytesReply(200, 'text/plain; version=0.0.4; charset=utf-8', Buffer.from(ctx.metrics(), 'utf8'), req.method === 'HEAD')
  const auth = ctx.auth
  if (auth !== undefined) {
    const refused = refusal(() => auth.verify(req.authorization, req.method, req.target, body))
    if (refused !== undefined) return refused
  }
  if (route === 'status') return bytesReply(200, 'application/json; charset=utf-8', Buffer.from(JSON.stringify(ctx.status()), 'utf8'), req.method === 'HEAD')
  if (route === 'hello') return bytesReply(200, 'application/json', Buffer.from(JSON.stringify(ctx.hello()), 'utf8'))
  // The sender's clear generation (and a revalidation's `fresh`): the fence of group/writes.ts, applied before answering.
  const query = parsePeerQuery(req.target)
  if (query === undefined) return errorReply(400, 'bad request: gen must be a non-negative integer')
  if (route === 'peek') return answerPeek(ctx, req, query)
  if (route === 'clear') return answerClear(ctx, req, query)
  return route === 'key' ? answerKey(ctx, req, body, query) : answerBatch(ctx, req, body, query)
}

/**
 * Answers GET /_peercache/peek/{group}/{key}: the cached value, or a 404
 * marked not-cached. Never a load: a new owner asks this of a key's previous
 * owner during a rolling deploy, and a miss there must not cost an origin query.
 */
function answerPeek(ctx: HandlerContext, req: PeerRequest, query: PeerQuery): PeerReply {
  const parsed = parsePeerPath(req.path.slice(PEEK_BASE_PATH.length))
  if (!parsed.ok) return errorReply(parsed.status, parsed.message)
  const group = ctx.group(parsed.group)
  if (group === undefined) return errorReply(404, `no such group: ${parsed.group}`, errorHeaderValue.noSuchGroup)
  group.fence(query.generation)
  const entry = group.peek(parsed.key)
  if (entry === undefined) return errorReply(404, 'not cached', errorHeaderValue.notCached)
  return ctx.sendQueue.refuses(req.connection) ? busyReply() : valueReply(entry, false)
}

/** Answers {basePath}{group}/{key}: GET/HEAD a value, PUT a value (SetRequest), DELETE it. */
function answerKey(ctx: HandlerContext, req: PeerRequest, body: Uint8Array, query: PeerQuery): PeerReply | Promise<PeerReply> {
  const parsed = parsePeerPath(req.path.slice(ctx.basePath.length))
  if (!parsed.ok) return errorReply(parsed.status, parsed.message)
  const group = ctx.group(parsed.group)
  if (group === undefined) return errorReply(404, `no such group: ${parsed.group}`, errorHeaderValue.noSuchGroup)
  const key = parsed.key
  if (tooLong(key, group.maxKeyBytes)) return errorReply(414, 'key too long')
  group.fence(query.generation)
  if (req.method === 'PUT') return applySet(group, key, body)
  if (req.method === 'DELETE') {
    group.removeLocal(key)
    return OK
  }
  const headOnly = req.method === 'HEAD'
  if (!headOnly && ctx.sendQueue.refuses(req.connection)) return busyReply()
  if (ctx.tracer.tracesServes) return loadKey(ctx.tracer.serve(serveTrace(req, group.name, key, 1), query.fresh ? group.serveFresh : group.serve, group, key), headOnly)
  const served = query.fresh ? group.serveFresh(key) : group.serve(key)
  return served instanceof Promise ? loadKey(served, headOnly) : valueReply(served, headOnly)
}

/** Answers POST /_peercache/batch/{group}: a BatchRequest in, a BatchResponse streamed out (batch-answer.ts). */
function answerBatch(ctx: HandlerContext, req: PeerRequest, body: Uint8Array, query: PeerQuery): PeerReply {
  const group = groupAt(ctx, req.path, BATCH_BASE_PATH)
  if (isReply(group)) return group
  group.fence(query.generation)
  let keys: string[]
  try {
    keys = decodeBatchRequest(body)
  } catch (err) {
    return errorReply(400, `bad request: ${(err as Error).message}`)
  }
  if (keys.some((key) => tooLong(key, group.maxKeyBytes))) return errorReply(414, 'key too long')
  // Refused before anything is served or loaded: the asker loads the keys itself.
  if (ctx.sendQueue.refuses(req.connection)) return busyReply()
  if (!ctx.tracer.tracesServes) return { ...bytesReply(200, 'application/x-protobuf', EMPTY), write: (res) => writeBatch(group, keys, res, ctx) }
  const trace = serveTrace(req, group.name, undefined, keys.length)
  return { ...bytesReply(200, 'application/x-protobuf', EMPTY), write: (res) => ctx.tracer.serve(trace, writeBatch, undefined, group, keys, res, ctx) }
}

/** serveTrace is the context of `peercache:serve` for a request: what it asks, and the asker's trace context headers. */
function serveTrace(req: PeerRequest, group: string, key: string | undefined, keys: number): ServeTrace {
  return { group, key, keys, traceparent: headerValue(req, 'traceparent'), tracestate: headerValue(req, 'tracestate') }
}

/** headerValue is a request header's value, or undefined when absent (a repeated one, joined by node:http, fails the subscriber's W3C parse). */
function headerValue(req: PeerRequest, name: string): string | undefined {
  const value = req.headers?.[name]
  return typeof value === 'string' ? value : undefined
}

/** Answers POST /_peercache/clear/{group} (peercache-only, signed like every request): drops every entry of the group here. */
function answerClear(ctx: HandlerContext, req: PeerRequest, query: PeerQuery): PeerReply {
  const group = groupAt(ctx, req.path, CLEAR_BASE_PATH)
  if (isReply(group)) return group
  group.clearLocal(query.generation)
  return OK
}

/** groupAt finds the group named by the segment after prefix in path (peercache's own endpoints), or the refusal. */
function groupAt(ctx: HandlerContext, path: string, prefix: string): ServedGroup | PeerReply {
  const name = decodePercent(path.slice(prefix.length))
  if (name === undefined || name === '' || name.includes('/')) return errorReply(400, 'bad request')
  return ctx.group(name) ?? errorReply(404, `no such group: ${name}`, errorHeaderValue.noSuchGroup)
}

function applySet(group: ServedGroup, key: string, body: Uint8Array): PeerReply {
  try {
    const message = decodeSetRequest(body)
    if (message.group !== group.name || message.key !== key) return errorReply(400, 'bad request: body names another group or key')
    // A typed group decodes the value here: bytes its codec cannot read are refused (CodecError).
    group.setLocal(key, { value: message.value, expiresAt: message.expiresAt })
  } catch (err) {
    return errorReply(400, `bad request: ${(err as Error).message}`)
  }
  return OK
}

/** Answers a key that had to be loaded (serve's promise): its value, or the load's failure as mailgun's codes. */
async function loadKey(served: Promise<ServedEntry>, headOnly: boolean): Promise<PeerReply> {
  try {
    return valueReply(await served, headOnly)
  } catch (err) {
    return loadErrorReply(err)
  }
}

/** tooLong tells whether key's UTF-8 bytes exceed max; a UTF-16 unit is at most 3 bytes, so most keys are passed without counting them. */
function tooLong(key: string, max: number): boolean {
  return key.length * 3 > max && Buffer.byteLength(key, 'utf8') > max
}

/** isReply tells a refusal from the group groupAt found. */
function isReply(found: ServedGroup | PeerReply): found is PeerReply {
  return 'status' in found
}

/** refusal runs an authentication check and returns the 401 it earns, or undefined. */
function refusal(check: () => void, closeConnection = false): PeerReply | undefined {
  try {
    check()
    return undefined
  } catch (err) {
    const reply = errorReply(401, err instanceof AuthError ? err.message : 'peer authentication failed')
    return closeConnection ? { ...reply, headers: { ...reply.headers, Connection: 'close' } } : reply
  }
}

/**
 * Maps a load failure to mailgun's codes: 404 for not found, 503 for a
 * loader failure. Both carry a marker: only a marked answer is final for
 * the asker (an unmarked 503 is the server layer's, e.g. fastify closing).
 */
function loadErrorReply(err: unknown): PeerReply {
  if (err instanceof NotFoundError) return errorReply(404, err.message, errorHeaderValue.notFound)
  if (err instanceof ClosedError) return errorReply(503, err.message, errorHeaderValue.closing)
  const message = err instanceof PeercacheError || err instanceof Error ? err.message : String(err)
  return errorReply(503, message, errorHeaderValue.loadFailed)
}

/**
 * busyReply refuses a value answer while the send queue is full, or the
 * request's connection holds its share (send-queue.ts): a 503 marked busy,
 * which the asker neither takes as the loader's answer nor holds against
 * this owner; it loads the key itself.
 */
function busyReply(): PeerReply {
  return errorReply(503, 'busy: too many answer bytes wait for clients that do not read them (server.maxQueuedBytes, server.maxTotalQueuedBytes)', errorHeaderValue.busy)
}

/** valueReply answers a value, with the key's request rate here as minute_qps (askers weigh it for their hot caches). */
function valueReply(entry: ServedEntry, headOnly: boolean): PeerReply {
  return bytesReply(200, 'application/x-protobuf', encodeGetResponse(entry), headOnly)
}

function bytesReply(status: number, contentType: string, body: Uint8Array, headOnly = false): PeerReply {
  return { status, contentType, body, headers: undefined, headOnly }
}

const EMPTY = new Uint8Array(0)

const OK: PeerReply = Object.freeze({ status: 200, contentType: undefined, body: new Uint8Array(0), headers: undefined, headOnly: false })

function methodNotAllowed(allow: string): PeerReply {
  const reply = errorReply(405, 'method not allowed')
  return { ...reply, headers: { ...reply.headers, Allow: allow } }
}

/** errorReply answers as Go's http.Error does: text/plain, nosniff, the message and a newline. */
export function errorReply(status: number, message: string, marker?: string): PeerReply {
  const headers: Record<string, string> = { 'X-Content-Type-Options': 'nosniff' }
  if (marker !== undefined) headers[ERROR_HEADER] = marker
  return { status, contentType: 'text/plain; charset=utf-8', body: Buffer.from(`${message}\n`, 'utf8'), headers, headOnly: false }
}
