/**
 * handler: the node:http listener that answers other peers. It speaks Go
 * groupcache's protocol byte for byte (status codes, error bodies, headers;
 * see ../shared/vectors/wire-golang.json) and adds what Go leaves out: a
 * marker header on 404s, authentication, and bounds on every input.
 *
 * Requests that reach it come from peers, so it never forwards: it answers
 * from the caches or loads locally (Group.serveCached / serveLoad), which is what keeps two
 * processes with different peer lists from looping.
 */
import { setMaxListeners } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { PeerAuth } from '../auth.js'
import { concatChunks } from '../bytes.js'
import type { CacheEntry } from '../cache.js'
import { AuthError, ClosedError, NotFoundError, PeercacheError } from '../errors.js'
import type { Group } from '../group.js'
import type { Logger } from '../logger.js'
import { decodeBatchRequest, decodeSetRequest, encodeBatchResponse, encodeGetResponse, type BatchEntryMessage } from '../proto/codec.js'
import { BATCH_BASE_PATH, ERROR_HEADER, PEEK_BASE_PATH, errorHeaderValue, parsePeerPath, pathOf } from './paths.js'

/** PeerHandler is a node:http listener that also mounts as connect/express middleware (`next`). */
export type PeerHandler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void

/** HandlerContext is what the handler needs from its Peercache. */
export interface HandlerContext {
  basePath: string
  group(name: string): Group | undefined
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
}

type Route = (ctx: HandlerContext, req: IncomingMessage, res: ServerResponse, target: string, path: string) => Promise<void>

/** createHandler returns the peer endpoint listener for one Peercache. */
export function createHandler(ctx: HandlerContext): PeerHandler {
  return (req, res, next) => {
    const target = req.url ?? '/'
    const path = pathOf(target)
    const route = routeOf(ctx, path)
    if (route === undefined) {
      if (next !== undefined) next()
      else sendError(res, 404, 'not found')
      return
    }
    void route(ctx, req, res, target, path).catch((err: unknown) => {
      ctx.logger.error({ err }, 'peer handler failed')
      if (!res.headersSent) sendError(res, 500, 'internal error')
      else res.destroy()
    })
  }
}

function routeOf(ctx: HandlerContext, path: string): Route | undefined {
  if (path.startsWith(ctx.basePath)) return serveKeyPath
  if (path.startsWith(BATCH_BASE_PATH)) return serveBatch
  if (path.startsWith(PEEK_BASE_PATH)) return servePeek
  if (ctx.metricsPath !== undefined && path === ctx.metricsPath) return serveMetrics
  return undefined
}

const KEY_METHODS = new Set(['GET', 'HEAD', 'PUT', 'DELETE'])

/** Serves {basePath}{group}/{key}: GET/HEAD a value, PUT a value (SetRequest), DELETE it. */
async function serveKeyPath(ctx: HandlerContext, req: IncomingMessage, res: ServerResponse, target: string, path: string): Promise<void> {
  if (ctx.closing()) return sendError(res, 503, 'shutting down', errorHeaderValue.closing)
  // Percent-encoding triples a byte at most: a longer path cannot hold a valid key.
  if (path.length > ctx.basePath.length + 3 * (255 + 1 + ctx.maxKeyBytes())) return sendError(res, 414, 'request path too long')
  if (!KEY_METHODS.has(req.method ?? '')) return sendMethodNotAllowed(res, [...KEY_METHODS].join(', '))
  if (req.method === 'PUT' && !prechecked(ctx, req, res)) return
  const body = req.method === 'PUT' ? await readBody(ctx, req, res) : EMPTY
  if (body === undefined || !authorized(ctx, req, res, target, body)) return
  const parsed = parsePeerPath(path.slice(ctx.basePath.length))
  if (!parsed.ok) return sendError(res, parsed.status, parsed.message)
  const group = ctx.group(parsed.group)
  if (group === undefined) return sendError(res, 404, `no such group: ${parsed.group}`, errorHeaderValue.noSuchGroup)
  if (Buffer.byteLength(parsed.key, 'utf8') > group.maxKeyBytes) return sendError(res, 414, 'key too long')
  if (req.method === 'PUT') return applySet(res, group, parsed.key, body)
  if (req.method === 'DELETE') {
    group.removeLocal(parsed.key)
    return sendOk(res)
  }
  // A hit is answered without an await or a signal: the serving hot path.
  const entry = group.serveCached(parsed.key) ?? (await loadKey(group, parsed.key, res))
  if (entry !== undefined) sendValue(res, entry, req.method === 'HEAD')
}

/** Serves POST /_peercache/batch/{group}: a BatchRequest in, a BatchResponse out. */
async function serveBatch(ctx: HandlerContext, req: IncomingMessage, res: ServerResponse, target: string, path: string): Promise<void> {
  if (ctx.closing()) return sendError(res, 503, 'shutting down', errorHeaderValue.closing)
  if (req.method !== 'POST') return sendMethodNotAllowed(res, 'POST')
  if (!prechecked(ctx, req, res)) return
  const body = await readBody(ctx, req, res)
  if (body === undefined || !authorized(ctx, req, res, target, body)) return
  const name = decodeSegment(path.slice(BATCH_BASE_PATH.length))
  if (name === undefined || name === '' || name.includes('/')) return sendError(res, 400, 'bad request')
  const group = ctx.group(name)
  if (group === undefined) return sendError(res, 404, `no such group: ${name}`, errorHeaderValue.noSuchGroup)
  let keys: string[]
  try {
    keys = decodeBatchRequest(body)
  } catch (err) {
    return sendError(res, 400, `bad request: ${(err as Error).message}`)
  }
  if (keys.some((key) => Buffer.byteLength(key, 'utf8') > group.maxKeyBytes)) return sendError(res, 414, 'key too long')
  const entries = await serveKeys(group, keys, res)
  if (entries !== undefined) sendBytes(res, 200, 'application/x-protobuf', encodeBatchResponse(entries))
}

/**
 * Serves GET /_peercache/peek/{group}/{key}: the cached value, or a 404
 * marked not-cached. Never a load: a new owner asks this of a key's previous
 * owner during a rolling deploy, and a miss there must not cost an origin query.
 */
async function servePeek(ctx: HandlerContext, req: IncomingMessage, res: ServerResponse, target: string, path: string): Promise<void> {
  if (ctx.closing()) return sendError(res, 503, 'shutting down', errorHeaderValue.closing)
  if (path.length > PEEK_BASE_PATH.length + 3 * (255 + 1 + ctx.maxKeyBytes())) return sendError(res, 414, 'request path too long')
  if (req.method !== 'GET') return sendMethodNotAllowed(res, 'GET')
  if (!authorized(ctx, req, res, target, EMPTY)) return
  const parsed = parsePeerPath(path.slice(PEEK_BASE_PATH.length))
  if (!parsed.ok) return sendError(res, parsed.status, parsed.message)
  const group = ctx.group(parsed.group)
  if (group === undefined) return sendError(res, 404, `no such group: ${parsed.group}`, errorHeaderValue.noSuchGroup)
  const entry = group.peekEntry(parsed.key)
  if (entry === undefined) return sendError(res, 404, 'not cached', errorHeaderValue.notCached)
  sendValue(res, entry, false)
}

async function serveMetrics(ctx: HandlerContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return sendMethodNotAllowed(res, 'GET, HEAD')
  sendBytes(res, 200, 'text/plain; version=0.0.4; charset=utf-8', Buffer.from(ctx.metrics(), 'utf8'))
}

function applySet(res: ServerResponse, group: Group, key: string, body: Uint8Array): void {
  let message
  try {
    message = decodeSetRequest(body)
  } catch (err) {
    return sendError(res, 400, `bad request: ${(err as Error).message}`)
  }
  if (message.group !== group.name || message.key !== key) return sendError(res, 400, 'bad request: body names another group or key')
  group.setLocal(key, { value: message.value, expiresAt: message.expiresAt })
  sendOk(res)
}

/**
 * Serves each key of a batch: the cached ones at once, then the others (at
 * most BATCH_CONCURRENCY loads at once); undefined if the client left.
 */
async function serveKeys(group: Group, keys: readonly string[], res: ServerResponse): Promise<BatchEntryMessage[] | undefined> {
  const entries: BatchEntryMessage[] = new Array(keys.length)
  const misses: number[] = []
  keys.forEach((key, i) => {
    const entry = group.serveCached(key)
    if (entry === undefined) misses.push(i)
    else entries[i] = { key, status: 200, value: entry.value, expiresAt: entry.expiresAt }
  })
  if (misses.length === 0) return entries
  const gone = abortOnClose(res)
  try {
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < misses.length && !gone.signal.aborted) {
        const i = misses[next++] as number
        entries[i] = await batchEntry(group, keys[i] as string, gone.signal)
      }
    }
    await Promise.all(Array.from({ length: Math.min(BATCH_CONCURRENCY, misses.length) }, worker))
    return gone.signal.aborted ? undefined : entries
  } finally {
    gone.release()
  }
}

const BATCH_CONCURRENCY = 64

async function batchEntry(group: Group, key: string, signal: AbortSignal): Promise<BatchEntryMessage> {
  try {
    const entry = await group.serveLoad(key, signal)
    return { key, status: 200, value: entry.value, expiresAt: entry.expiresAt }
  } catch (err) {
    const status = err instanceof NotFoundError ? 404 : 503
    return { key, status, expiresAt: 0, error: err instanceof Error ? err.message : String(err) }
  }
}

/** Loads one key serveCached did not have; a client that hangs up aborts our wait (never the shared load). */
async function loadKey(group: Group, key: string, res: ServerResponse): Promise<CacheEntry | undefined> {
  const gone = abortOnClose(res)
  try {
    return await group.serveLoad(key, gone.signal)
  } catch (err) {
    if (gone.signal.aborted) return undefined
    sendLoadError(res, err)
    return undefined
  } finally {
    gone.release()
  }
}

/** abortOnClose aborts its signal if the client hangs up before the answer is sent. */
function abortOnClose(res: ServerResponse): { signal: AbortSignal; release(): void } {
  const controller = new AbortController()
  // A batch shares this signal among all its keys' waits: not a leak.
  setMaxListeners(0, controller.signal)
  const onClose = (): void => {
    if (!res.writableEnded) controller.abort(new Error('client closed the connection'))
  }
  res.once('close', onClose)
  return { signal: controller.signal, release: () => res.off('close', onClose) }
}

const EMPTY = new Uint8Array(0)

/**
 * readBody reads a request body up to maxRequestBytes. Over the cap it
 * answers 413 and closes the connection (the rest is never read); a body cut
 * short answers nothing (the client is gone). Its time is bounded by the
 * server's requestTimeout.
 */
async function readBody(ctx: HandlerContext, req: IncomingMessage, res: ServerResponse): Promise<Uint8Array | undefined> {
  const cap = ctx.maxRequestBytes
  const tooLarge = (): undefined => {
    res.setHeader('Connection', 'close')
    sendError(res, 413, `request body exceeds ${cap} bytes`)
    req.destroy()
    return undefined
  }
  const announced = Number(req.headers['content-length'])
  if (Number.isFinite(announced) && announced > cap) return tooLarge()
  const chunks: Uint8Array[] = []
  let total = 0
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      total += chunk.byteLength
      if (total > cap) return tooLarge()
      chunks.push(chunk)
    }
  } catch {
    return undefined
  }
  return concatChunks(chunks, total)
}

function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment)
  } catch {
    return undefined
  }
}

function authorized(ctx: HandlerContext, req: IncomingMessage, res: ServerResponse, target: string, body: Uint8Array): boolean {
  const auth = ctx.auth
  return auth === undefined || refuseUnless(res, () => auth.verify(req.headers.authorization, req.method ?? '', target, body))
}

/** Refuses an unsigned, malformed or stale request before its body is read (and buffered). */
function prechecked(ctx: HandlerContext, req: IncomingMessage, res: ServerResponse): boolean {
  const auth = ctx.auth
  // On refusal the body is left unread: that connection cannot carry another request.
  return auth === undefined || refuseUnless(res, () => auth.precheck(req.headers.authorization), true)
}

function refuseUnless(res: ServerResponse, check: () => void, closeConnection = false): boolean {
  try {
    check()
    return true
  } catch (err) {
    if (closeConnection) res.setHeader('Connection', 'close')
    sendError(res, 401, err instanceof AuthError ? err.message : 'peer authentication failed')
    return false
  }
}

/** Maps a load failure to mailgun's codes: 404 for not found, 503 for a loader failure. */
function sendLoadError(res: ServerResponse, err: unknown): void {
  if (err instanceof NotFoundError) return sendError(res, 404, err.message, errorHeaderValue.notFound)
  if (err instanceof ClosedError) return sendError(res, 503, err.message, errorHeaderValue.closing)
  const message = err instanceof PeercacheError || err instanceof Error ? err.message : String(err)
  sendError(res, 503, message)
}

function sendValue(res: ServerResponse, entry: CacheEntry, headOnly: boolean): void {
  sendBytes(res, 200, 'application/x-protobuf', encodeGetResponse({ value: entry.value, expiresAt: entry.expiresAt }), headOnly)
}

function sendBytes(res: ServerResponse, status: number, type: string, body: Uint8Array, headOnly = false): void {
  res.statusCode = status
  res.setHeader('Content-Type', type)
  res.setHeader('Content-Length', body.byteLength)
  res.end(headOnly ? undefined : body)
}

function sendOk(res: ServerResponse): void {
  res.statusCode = 200
  res.setHeader('Content-Length', 0)
  res.end()
}

function sendMethodNotAllowed(res: ServerResponse, allow: string): void {
  res.setHeader('Allow', allow)
  sendError(res, 405, 'method not allowed')
}

/** sendError answers as Go's http.Error does: text/plain, nosniff, the message and a newline. */
export function sendError(res: ServerResponse, status: number, message: string, marker?: string): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const body = `${message}\n`
  res.statusCode = status
  res.setHeader('Content-Type', 'text/plain; charset=utf-8')
  res.setHeader('X-Content-Type-Options', 'nosniff')
  res.setHeader('Content-Length', Buffer.byteLength(body))
  if (marker !== undefined) res.setHeader(ERROR_HEADER, marker)
  res.end(body)
}
