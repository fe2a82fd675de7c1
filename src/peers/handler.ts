/**
 * handler: the node:http listener of the peer endpoint (also connect/express
 * middleware). It owns what is node:http's: routing by `req.url`, reading a
 * bounded body, writing the reply; what the endpoint answers is serve.ts's,
 * shared with the fastify plugin.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { concatChunks } from '../bytes.js'
import { pathOf } from './paths.js'
import { admit, answer, errorReply, hasBody, routeOf, type HandlerContext, type PeerReply, type PeerRequest, type PeerRoute } from './serve.js'

export type { HandlerContext } from './serve.js'

/** PeerHandler is a node:http listener that also mounts as connect/express middleware (`next`). */
export type PeerHandler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void

/** createHandler returns the peer endpoint listener for one Peercache. */
export function createHandler(ctx: HandlerContext): PeerHandler {
  return (req, res, next) => {
    const path = pathOf(req.url ?? '/')
    const route = routeOf(ctx, path)
    if (route === undefined) {
      if (next !== undefined) next()
      else sendError(res, 404, 'not found')
      return
    }
    void serve(ctx, route, req, res, { method: req.method ?? '', target: wireTarget(req), path, authorization: req.headers.authorization }).catch((err: unknown) => {
      ctx.logger.error({ err }, 'peer handler failed')
      if (!res.headersSent) sendError(res, 500, 'internal error')
      else res.destroy()
    })
  }
}

/**
 * wireTarget is the request target as it travelled on the wire, which is
 * what the peer signed. Mounted under a prefix (`app.use('/cache', …)`),
 * express and connect strip the prefix from `req.url` and keep the original
 * in `req.originalUrl`; routing uses the stripped path, authentication the
 * original one.
 */
function wireTarget(req: IncomingMessage): string {
  const original = (req as { originalUrl?: unknown }).originalUrl
  return typeof original === 'string' ? original : (req.url ?? '/')
}

/** Admits the request, reads its body if it has one, and writes the answer (see serve.ts). */
async function serve(ctx: HandlerContext, route: PeerRoute, req: IncomingMessage, res: ServerResponse, request: PeerRequest): Promise<void> {
  const refused = admit(ctx, route, request)
  if (refused !== undefined) return sendReply(res, refused)
  const body = hasBody(route, request.method) ? await readBody(ctx, req, res) : EMPTY
  if (body === undefined) return
  // A hit is answered without an await: the serving hot path.
  const reply = answer(ctx, route, request, body, res)
  if (!(reply instanceof Promise)) return sendReply(res, reply)
  const later = await reply
  if (later !== undefined) sendReply(res, later)
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

/** sendReply writes a PeerReply: status, headers, Content-Length, and the body (not for HEAD). */
function sendReply(res: ServerResponse, reply: PeerReply): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  res.statusCode = reply.status
  if (reply.contentType !== undefined) res.setHeader('Content-Type', reply.contentType)
  if (reply.headers !== undefined) for (const [name, value] of Object.entries(reply.headers)) res.setHeader(name, value)
  res.setHeader('Content-Length', reply.body.byteLength)
  res.end(reply.headOnly ? undefined : reply.body)
}

/** sendError answers as Go's http.Error does: text/plain, nosniff, the message and a newline. */
export function sendError(res: ServerResponse, status: number, message: string, marker?: string): void {
  sendReply(res, errorReply(status, message, marker))
}
