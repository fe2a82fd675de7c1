/**
 * handler: the node:http listener that answers other peers. It speaks Go
 * groupcache's protocol byte for byte (status codes, error bodies, headers;
 * see ../shared/vectors/wire-golang.json) and adds what Go leaves out: a
 * marker header on 404s, authentication, and bounds on every input.
 *
 * Requests that reach it come from peers, so it never forwards: it answers
 * from the caches or loads locally (Group.serve), which is what keeps two
 * processes with different peer lists from looping.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { PeerAuth } from '../auth.js'
import type { CacheEntry } from '../cache.js'
import { AuthError, ClosedError, NotFoundError, PeercacheError } from '../errors.js'
import type { Group } from '../group.js'
import type { Logger } from '../logger.js'
import { encodeGetResponse } from '../proto/codec.js'
import { ERROR_HEADER, errorHeaderValue, parsePeerPath, pathOf } from './paths.js'

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
}

/** createHandler returns the peer endpoint listener for one Peercache. */
export function createHandler(ctx: HandlerContext): PeerHandler {
  return (req, res, next) => {
    const target = req.url ?? '/'
    const path = pathOf(target)
    if (!path.startsWith(ctx.basePath)) {
      if (next !== undefined) next()
      else sendError(res, 404, 'not found')
      return
    }
    void serveGroupcache(ctx, req, res, target, path).catch((err: unknown) => {
      ctx.logger.error({ err }, 'peer handler failed')
      if (!res.headersSent) sendError(res, 500, 'internal error')
      else res.destroy()
    })
  }
}

async function serveGroupcache(ctx: HandlerContext, req: IncomingMessage, res: ServerResponse, target: string, path: string): Promise<void> {
  if (ctx.closing()) return sendError(res, 503, 'shutting down', errorHeaderValue.closing)
  // Percent-encoding triples a byte at most: a longer path cannot hold a valid key.
  if (path.length > ctx.basePath.length + 3 * (255 + 1 + ctx.maxKeyBytes())) return sendError(res, 414, 'request path too long')
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD')
    return sendError(res, 405, 'method not allowed')
  }
  if (!authorized(ctx, req, res, target)) return
  const parsed = parsePeerPath(path.slice(ctx.basePath.length))
  if (!parsed.ok) return sendError(res, parsed.status, parsed.message)
  const group = ctx.group(parsed.group)
  if (group === undefined) return sendError(res, 404, `no such group: ${parsed.group}`, errorHeaderValue.noSuchGroup)
  if (Buffer.byteLength(parsed.key, 'utf8') > group.maxKeyBytes) return sendError(res, 414, 'key too long')
  const entry = await serveKey(group, parsed.key, req, res)
  if (entry !== undefined) sendValue(res, entry, req.method === 'HEAD')
}

/** Serves one key; a client that hangs up aborts our wait (never the shared load). */
async function serveKey(group: Group, key: string, req: IncomingMessage, res: ServerResponse): Promise<CacheEntry | undefined> {
  const gone = new AbortController()
  const onClose = (): void => {
    if (!res.writableEnded) gone.abort(new Error('client closed the connection'))
  }
  res.once('close', onClose)
  try {
    return await group.serve(key, gone.signal)
  } catch (err) {
    if (gone.signal.aborted) return undefined
    sendLoadError(res, err)
    return undefined
  } finally {
    res.off('close', onClose)
  }
}

function authorized(ctx: HandlerContext, req: IncomingMessage, res: ServerResponse, target: string): boolean {
  if (ctx.auth === undefined) return true
  try {
    ctx.auth.verify(req.headers.authorization, req.method ?? '', target, undefined)
    return true
  } catch (err) {
    const message = err instanceof AuthError ? err.message : 'peer authentication failed'
    sendError(res, 401, message)
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
  const body = encodeGetResponse({ value: entry.value, expiresAt: entry.expiresAt })
  res.statusCode = 200
  res.setHeader('Content-Type', 'application/x-protobuf')
  res.setHeader('Content-Length', body.byteLength)
  res.end(headOnly ? undefined : body)
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
