/**
 * ask: one status request to a peer — GET /_peercache/status, signed with
 * the cluster's secret like every peer request, over the cluster's TLS
 * settings — as one bounded exchange (peers/exchange.ts: a deadline, a cap
 * on the body). It goes on a connection of its own, opened for the
 * gathering and closed after it, not through the peer's client: a status
 * page must neither queue behind gets nor change what the get path thinks
 * of a peer (no status request counts for or against a peer's health).
 */
import { Pool } from 'undici'
import type { PeerAuth } from '../auth.js'
import { exchange, type PeerResponse } from '../peers/exchange.js'
import type { PeerTlsOptions } from '../peers/client.js'
import { STATUS_PATH } from '../proto/paths.js'

/** StatusTransport is how this process reaches its peers: the secret that signs, the TLS settings. */
export interface StatusTransport {
  auth: PeerAuth | undefined
  tls: PeerTlsOptions | undefined
}

/** AskStatus asks the peer at url for its status within timeoutMs and maxBodyBytes. */
export type AskStatus = (url: string, timeoutMs: number, maxBodyBytes: number) => Promise<PeerResponse>

/** statusAsker returns the AskStatus of a transport. */
export function statusAsker(transport: StatusTransport): AskStatus {
  return async (url, timeoutMs, maxBodyBytes) => {
    const target = new URL(url)
    // A base URL may carry a path (http://host/cache): it prefixes the status path, as every peer path.
    const path = target.pathname.replace(/\/+$/, '') + STATUS_PATH
    const pool = new Pool(target.origin, {
      connections: 1,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      connect: { timeout: timeoutMs, ...(transport.tls ?? {}) },
    })
    try {
      const headers = transport.auth === undefined ? undefined : { authorization: transport.auth.sign('GET', path) }
      return await exchange(pool, { method: 'GET', path, headers, body: undefined, peer: url, timeout: timeoutMs, maxResponseBytes: maxBodyBytes, signal: undefined })
    } finally {
      await pool.destroy().catch(() => {})
    }
  }
}
