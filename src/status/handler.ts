/**
 * handler: what `cache.statusHandler()` returns, a node:http handler (also
 * connect/express middleware) serving the cluster's status: JSON for a
 * client that asks for it (`Accept: application/json`, the CLI), else the
 * HTML page (html.ts). Requests that arrive while a gathering runs share it,
 * so a page reloaded by many operators asks each peer once at a time.
 *
 * The page is static: no script, and a Content-Security-Policy that allows
 * none, so even a value that slipped past escaping could not run.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from '../logger.js'
import { renderPage } from './html.js'
import type { ClusterStatus } from './types.js'

/** StatusHandler is a node:http listener that also mounts as connect/express middleware. */
export type StatusHandler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void

const PAGE_HEADERS = {
  'Content-Type': 'text/html; charset=utf-8',
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-store',
}

const JSON_HEADERS = { 'Content-Type': 'application/json; charset=utf-8', 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-store' }

/** createStatusHandler serves what gather resolves to; one gathering at a time, shared. */
export function createStatusHandler(gather: () => Promise<ClusterStatus>, logger: Logger): StatusHandler {
  let running: Promise<ClusterStatus> | undefined
  const shared = (): Promise<ClusterStatus> => {
    running ??= gather().finally(() => {
      running = undefined
    })
    return running
  }
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('method not allowed\n')
      return
    }
    shared().then(
      (cluster) => send(req, res, cluster),
      (err: unknown) => {
        logger.error({ err }, 'status gathering failed')
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end('status gathering failed\n')
      },
    )
  }
}

function send(req: IncomingMessage, res: ServerResponse, cluster: ClusterStatus): void {
  const json = wantsJson(req)
  const body = Buffer.from(json ? JSON.stringify(cluster) : renderPage(cluster), 'utf8')
  res.writeHead(200, { ...(json ? JSON_HEADERS : PAGE_HEADERS), 'Content-Length': body.byteLength, Vary: 'Accept' })
  res.end(req.method === 'HEAD' ? undefined : body)
}

/** wantsJson: the client accepts JSON and not HTML (a browser's Accept names text/html). */
function wantsJson(req: IncomingMessage): boolean {
  const accept = req.headers.accept ?? ''
  return accept.includes('application/json') && !accept.includes('text/html')
}
