/**
 * handler: the node:http listener of the peer endpoint (also connect/express
 * middleware). It owns what is node:http's: routing by `req.url`, reading a
 * bounded body, writing the reply; what the endpoint answers is serve.ts's,
 * shared with the fastify plugin.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { concatChunks } from '../bytes.js'
import { pathOf } from '../proto/paths.js'
import type { SendQueue } from './send-queue.js'
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
    const request: PeerRequest = { method: req.method ?? '', target: wireTarget(req), path, authorization: req.headers.authorization, headers: req.headers, connection: req.socket }
    try {
      // A reply written at once leaves nothing to wait for: no promise, no reaction, no microtask.
      serve(ctx, route, req, res, request)?.catch((err: unknown) => failed(ctx, res, err))
    } catch (err) {
      failed(ctx, res, err)
    }
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

/**
 * Admits the request, reads its body if it has one, and writes the answer
 * (see serve.ts). Not async: a GET of a cached key (the serving hot path)
 * is answered in the request's own tick, without a promise or an await;
 * it returns a promise only while something is left to do. It may throw.
 */
function serve(ctx: HandlerContext, route: PeerRoute, req: IncomingMessage, res: ServerResponse, request: PeerRequest): Promise<void> | undefined {
  const refused = admit(ctx, route, request)
  if (refused !== undefined) return sendReply(res, refused, undefined)
  if (hasBody(route, request.method)) return serveWithBody(ctx, route, req, res, request)
  const reply = answer(ctx, route, request, EMPTY)
  if (reply instanceof Promise) return reply.then((ready) => sendReply(res, ready, ctx.sendQueue))
  return sendReply(res, reply, ctx.sendQueue)
}

/** Reads the body, then answers (PUT of a value, POST of a batch or a clear). */
async function serveWithBody(ctx: HandlerContext, route: PeerRoute, req: IncomingMessage, res: ServerResponse, request: PeerRequest): Promise<void> {
  const body = await readBody(ctx, req, res)
  if (body === undefined) return
  const reply = answer(ctx, route, request, body)
  await sendReply(res, reply instanceof Promise ? await reply : reply, ctx.sendQueue)
}

/** failed answers a request whose handling threw: a 500 if nothing was sent yet, else the connection is cut. */
function failed(ctx: HandlerContext, res: ServerResponse, err: unknown): void {
  ctx.logger.error({ err }, 'peer handler failed')
  if (!res.headersSent) sendError(res, 500, 'internal error')
  else res.destroy()
}

const EMPTY = new Uint8Array(0)

/**
 * readBody reads a request body up to maxRequestBytes. Over the cap it
 * answers 413 and closes the connection (the rest is never read); a body cut
 * short answers nothing (the client is gone). Its time is bounded by the
 * server's requestTimeout.
 */
function readBody(ctx: HandlerContext, req: IncomingMessage, res: ServerResponse): Promise<Uint8Array | undefined> {
  const cap = ctx.maxRequestBytes
  const announced = Number(req.headers['content-length'])
  if (Number.isFinite(announced) && announced > cap) return Promise.resolve(refuseTooLarge(req, res, cap))
  return new Promise((resolve) => new BodyReader(req, res, cap, resolve))
}

/** Answers 413 and drops the connection: the rest of the body is never read. */
function refuseTooLarge(req: IncomingMessage, res: ServerResponse, cap: number): undefined {
  res.setHeader('Connection', 'close')
  sendError(res, 413, `request body exceeds ${cap} bytes`)
  req.destroy()
  return undefined
}

/**
 * BodyReader collects one request body with plain 'data'/'end' listeners:
 * the async iterator over a request costs a promise and a closure per chunk.
 * Settles once: the body at 'end', undefined on an error or a close before
 * it (the client is gone), undefined after a 413 past the cap.
 */
class BodyReader {
  readonly #req: IncomingMessage
  readonly #res: ServerResponse
  readonly #cap: number
  readonly #resolve: (body: Uint8Array | undefined) => void
  readonly #chunks: Uint8Array[] = []
  #total = 0

  constructor(req: IncomingMessage, res: ServerResponse, cap: number, resolve: (body: Uint8Array | undefined) => void) {
    this.#req = req
    this.#res = res
    this.#cap = cap
    this.#resolve = resolve
    req.on('data', this.#onData)
    req.once('end', this.#onEnd)
    req.once('error', this.#onGone)
    req.once('close', this.#onGone)
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#total += chunk.byteLength
    if (this.#total <= this.#cap) {
      this.#chunks.push(chunk)
      return
    }
    this.#settle(undefined)
    refuseTooLarge(this.#req, this.#res, this.#cap)
  }

  readonly #onEnd = (): void => this.#settle(concatChunks(this.#chunks, this.#total))

  readonly #onGone = (): void => this.#settle(undefined)

  #settle(body: Uint8Array | undefined): void {
    const req = this.#req
    req.off('data', this.#onData)
    req.off('end', this.#onEnd)
    req.off('error', this.#onGone)
    req.off('close', this.#onGone)
    this.#resolve(body)
  }
}

/** sendReply writes a PeerReply: status, headers, Content-Length, and the body (not for HEAD), counted in queue when given (send-queue.ts). */
function sendReply(res: ServerResponse, reply: PeerReply, queue: SendQueue | undefined): Promise<void> | undefined {
  if (res.headersSent) {
    res.destroy()
    return undefined
  }
  if (reply.write !== undefined) return reply.write(res)
  // One writeHead with a flat list: what setHeader per header would store in an object first.
  const headers: Array<string | number> = []
  if (reply.contentType !== undefined) headers.push('Content-Type', reply.contentType)
  if (reply.headers !== undefined) for (const name in reply.headers) headers.push(name, reply.headers[name] as string)
  headers.push('Content-Length', reply.body.byteLength)
  res.writeHead(reply.status, headers as unknown as string[])
  if (reply.headOnly) res.end()
  else if (queue === undefined) res.end(reply.body)
  else queue.send(res, reply.body)
  return undefined
}

/** sendError answers as Go's http.Error does: text/plain, nosniff, the message and a newline. */
export function sendError(res: ServerResponse, status: number, message: string, marker?: string): void {
  sendReply(res, errorReply(status, message, marker), undefined)
}
