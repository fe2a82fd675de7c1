/**
 * peercache/fastify: the peer endpoint as a fastify plugin, served by
 * fastify's own router rather than a raw node:http listener, so the app's
 * hooks, logger and error reporting apply to peer requests too:
 *
 *   await app.register(peercachePlugin, { cache })
 *   await app.register(peercachePlugin, { cache, prefix: '/cache' }) // peers list http://host/cache
 *
 * What the endpoint answers is serve.ts's, shared with `cache.handler()`;
 * this file only maps fastify's request and reply onto it. The routes live
 * in an encapsulated child context, so the protobuf body parser (bounded by
 * the cache's `maxRequestBytes`) and the Go-style text/plain error replies
 * apply to peer requests only, never to the app's own routes. fastify is an
 * optional peer dependency: this module is only loaded when imported.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { InvalidArgumentError } from './errors.js'
import { internalsOf } from './peercache.js'
import type { Peercache } from './peercache.js'
import { BATCH_BASE_PATH, CLEAR_BASE_PATH, HELLO_PATH, PEEK_BASE_PATH, STATUS_PATH, pathOf } from './proto/paths.js'
import { admit, answer, errorReply, hasBody, type HandlerContext, type PeerReply, type PeerRequest, type PeerRoute } from './endpoint/serve.js'

/** PeercachePluginOptions configure the fastify plugin. */
export interface PeercachePluginOptions {
  /** The Peercache whose peer endpoint the app serves; the plugin closes it when the app closes. */
  cache: Peercache
  /**
   * Serves every peer route under this path (`'/cache'`): the other peers
   * then list this app as `http://host:port/cache`. fastify's own `prefix`
   * never reaches a plugin that is not encapsulated (as fastify-plugin's are
   * not), so this plugin applies the one it is given itself. A path that
   * starts with `/`, without `*`, `:`, `?` or `#`; a trailing `/` is dropped.
   * @default ''
   */
  prefix?: string
}

/**
 * peercachePlugin registers the peer endpoint's routes (basePath, the batch,
 * peek, clear and status paths, and `metricsPath` when set), drains the cache (`drainMs`) while
 * fastify still routes requests, and closes it in `onClose`. Like a
 * fastify-plugin plugin it is not encapsulated itself (so its hooks are the
 * app's), without depending on fastify-plugin.
 */
export async function peercachePlugin(app: FastifyInstance, options: PeercachePluginOptions): Promise<void> {
  const cache = options.cache
  const prefix = routePrefix(options.prefix)
  const { endpoint: ctx, drain } = internalsOf(cache)
  // Rule: drainMs serves peers while fastify still routes. app.close() marks
  // fastify closing (its own 503 to every request) before `preClose`, and
  // `onClose` hooks run after its server closed; only an onClose hook added
  // once the app is ready runs before fastify's own (they run last added,
  // first run). The cache is closed after fastify stopped routing, as before.
  app.addHook('onReady', async function (this: FastifyInstance) {
    // avvio's onClose, which fastify exposes untyped; addHook refuses hooks once the app started.
    const closer = this as unknown as AvvioCloser
    closer.onClose(async () => {
      await drain()
    })
  })
  app.addHook('onClose', async () => {
    await cache.close()
  })
  await app.register(async (routes) => peerRoutes(routes, ctx, prefix))
}

/** AvvioCloser is the avvio method every fastify instance has: onClose hooks, run last added, first run. */
interface AvvioCloser {
  onClose(hook: () => Promise<void>): void
}

/** routePrefix checks the `prefix` option and drops its trailing slashes ('' for none). */
function routePrefix(prefix: unknown): string {
  if (prefix === undefined || prefix === '' || prefix === '/') return ''
  if (typeof prefix !== 'string' || !prefix.startsWith('/') || /[*:?#\s]/.test(prefix)) {
    throw new InvalidArgumentError(`prefix must be a path that starts with "/" and has no "*", ":", "?", "#" or spaces, got ${JSON.stringify(prefix)}`)
  }
  return prefix.replace(/\/+$/, '')
}

// What fastify-plugin would set: no encapsulation, a readable name, the fastify major it supports.
Object.assign(peercachePlugin, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'peercache',
  [Symbol.for('plugin-meta')]: { name: 'peercache', fastify: '5.x' },
})

export default peercachePlugin

/** peerRoutes fills the encapsulated context: body parser, error replies, routes (each under prefix). */
function peerRoutes(routes: FastifyInstance, ctx: HandlerContext, prefix: string): void {
  // Peers send protobuf; a body of any other type is read the same way (Go clients may send none).
  routes.removeAllContentTypeParsers()
  const parseOptions = { parseAs: 'buffer' as const, bodyLimit: ctx.maxRequestBytes }
  const keepBytes = (_req: FastifyRequest, body: Buffer, done: (err: null, body: Buffer) => void): void => done(null, body)
  routes.addContentTypeParser('application/x-protobuf', parseOptions, keepBytes)
  routes.addContentTypeParser('*', parseOptions, keepBytes)
  routes.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 ? err.statusCode : 500
    if (status >= 500) request.log.error({ err }, 'peer request failed')
    return send(reply, errorReply(status, status >= 500 ? 'internal error' : err.message))
  })
  route(routes, ctx, prefix, `${ctx.basePath}*`, 'key')
  route(routes, ctx, prefix, `${BATCH_BASE_PATH}*`, 'batch')
  route(routes, ctx, prefix, `${PEEK_BASE_PATH}*`, 'peek')
  route(routes, ctx, prefix, `${CLEAR_BASE_PATH}*`, 'clear')
  route(routes, ctx, prefix, HELLO_PATH, 'hello')
  route(routes, ctx, prefix, STATUS_PATH, 'status')
  if (ctx.metricsPath !== undefined) route(routes, ctx, prefix, ctx.metricsPath, 'metrics')
}

/**
 * route serves one resource for every method (a wrong one gets serve.ts's
 * 405). `admit` runs in onRequest, before fastify reads the body, so an
 * unsigned write is refused without buffering it.
 */
function route(routes: FastifyInstance, ctx: HandlerContext, prefix: string, url: string, resource: PeerRoute): void {
  routes.all(prefix + url, {
    onRequest: async (request, reply) => {
      const refused = admit(ctx, resource, peerRequest(request, prefix))
      if (refused !== undefined) return send(reply, refused)
    },
    handler: async (request, reply) => {
      const req = peerRequest(request, prefix)
      const body = hasBody(resource, req.method) && Buffer.isBuffer(request.body) ? request.body : EMPTY
      const result = await answer(ctx, resource, req, body)
      if (result.write === undefined) return send(reply, result)
      // A streamed batch answer writes to the raw response itself.
      reply.hijack()
      await result.write(reply.raw)
      return reply
    },
  })
}

const EMPTY = new Uint8Array(0)

/**
 * peerRequest is serve.ts's view of a fastify request: the target exactly as
 * it travelled (what a peer signs), and the path without prefix (what
 * serve.ts routes by; the route matched, so the path starts with prefix).
 */
function peerRequest(request: FastifyRequest, prefix: string): PeerRequest {
  const target = request.raw.url ?? request.url
  return { method: request.method, target, path: pathOf(target).slice(prefix.length), authorization: request.headers.authorization, headers: request.headers, connection: request.raw.socket }
}

/** send writes a PeerReply through fastify's reply (so onSend hooks apply). */
function send(reply: FastifyReply, answer: PeerReply): FastifyReply {
  reply.code(answer.status)
  if (answer.contentType !== undefined) reply.type(answer.contentType)
  if (answer.headers !== undefined) reply.headers(answer.headers)
  const body = answer.body
  // An empty 200 (set, remove) has no Content-Type, as from handler(): fastify would add octet-stream to a Buffer.
  if (body.byteLength === 0) return reply.send()
  return reply.send(Buffer.from(body.buffer, body.byteOffset, body.byteLength))
}
