/**
 * server: the HTTP(S) server `cache.listen()` makes for the peer endpoint —
 * created hardened (header room for the longest key, slowloris and idle
 * bounds, a connection cap), bound, and closed within a deadline. The
 * registry, membership and shutdown order are peercache.ts's.
 */
import { createServer, type Server } from 'node:http'
import { createServer as createTlsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { PeerHandler } from './endpoint/handler.js'
import type { ResolvedOptions } from './options.js'
import { ConfigError } from './errors.js'

/** createPeerServer makes (does not bind) the server for handler; `maxKeyBytes` is the longest key any group accepts. */
export function createPeerServer(options: ResolvedOptions['server'], handler: PeerHandler, maxKeyBytes: number): Server {
  const settings = {
    // A key of maxKeyBytes may triple when percent-encoded; leave room for the other headers.
    maxHeaderSize: Math.max(16 * 1024, 3 * maxKeyBytes + 3 * 255 + 16 * 1024),
    headersTimeout: options.headersTimeoutMs,
    // Node requires requestTimeout >= headersTimeout (0 would mean none).
    requestTimeout: Math.max(options.headersTimeoutMs, options.requestTimeoutMs),
    keepAliveTimeout: options.keepAliveTimeoutMs,
    connectionsCheckingInterval: options.checkIntervalMs,
  }
  const tls = options.tls
  const server = tls === undefined ? createServer(settings, handler) : createTlsServer({ ...settings, ...tls }, handler)
  server.maxConnections = options.maxConnections
  return server
}

/** bind makes server listen on port/host and resolves once it does (rejects on a bind error). */
export function bind(server: Server, port: number, host: string | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

/** closeServer stops accepting, closes idle connections now and every other one after timeoutMs. */
export async function closeServer(server: Server, timeoutMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  server.closeIdleConnections()
  const timer = setTimeout(() => server.closeAllConnections(), timeoutMs)
  timer.unref()
  await closed
  clearTimeout(timer)
}

/** serverUrl returns the base URL a listening server answers on (for tests and demos). */
export function serverUrl(server: Server, protocol: 'http' | 'https' = 'http'): string {
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return `${protocol}://${host}:${address.port}`
}

/**
 * checkServerScheme refuses a listen() whose server would not speak self's
 * scheme: an https self needs `server.tls` (else peers speak TLS to a plain
 * port), an http self must not have it (else they speak plain HTTP to TLS).
 */
export function checkServerScheme(self: string | undefined, tls: boolean): void {
  if (self === undefined) return
  const https = new URL(self).protocol === 'https:'
  if (https && !tls) throw new ConfigError(`self ${self} is https:// but server.tls is not set: listen() would serve plain http; give server.tls { key, cert }, or write self (and every peer) with http://`)
  if (!https && tls) throw new ConfigError(`self ${self} is http:// but server.tls is set: listen() would serve https; write self (and every peer) with https://, or drop server.tls`)
}
