/**
 * paths: how a group and key become a request path and back, exactly as Go
 * groupcache's HTTPPool does on the server side:
 *
 *   GET {basePath}{escape(group)}/{escape(key)}
 *
 * The server percent-decodes the whole path after basePath (a `+` stays a
 * `+`: it is not a form body) and splits at the first `/`, so the key may
 * hold `/` and the group may not. Our client escapes with encodeURIComponent
 * (a space is `%20`), so every key round-trips exactly, also through a Go
 * server; Go's own client sends a space as `+` (golang/groupcache PR #91).
 */

/** errorHeaderValue marks our 404s so our client can tell a loader's not-found from an unknown group. */
export const errorHeaderValue = {
  notFound: 'not-found',
  noSuchGroup: 'no-such-group',
  /** A shutting-down peer's 503: a transport failure, not the loader's answer. */
  closing: 'closing',
  /**
   * Our handler's 503 when the owner's loader failed: the one final 5xx. A
   * 5xx without a marker comes from the server layer (fastify's own 503
   * while it closes, a proxy), not from our handler: a transport failure.
   */
  loadFailed: 'load-failed',
  /** A peek's miss: the peer does not hold the key (it never loads for a peek). */
  notCached: 'not-cached',
  /**
   * A value answer refused while the owner's send queue is full (bytes
   * queued for clients that do not read, endpoint/send-queue.ts): busy, not
   * down and not the loader's answer; the asker loads the key itself.
   */
  busy: 'busy',
} as const

/**
 * batchStatus are the per-key statuses of a batch answer's entries. 200,
 * 404 and 503 are the owner's answers, as for a single get. 413 and 421 are
 * not answers: the owner did not serve the key in this batch (its answer
 * budget was spent; it is closing), and the asker asks for it alone.
 */
export const batchStatus = {
  ok: 200,
  notFound: 404,
  loadFailed: 503,
  overBudget: 413,
  unserved: 421,
} as const

/** ERROR_HEADER is the response header carrying errorHeaderValue. */
export const ERROR_HEADER = 'x-peercache-error'


/** BATCH_BASE_PATH is where peercache's batch endpoint lives: outside basePath, so a Go peer answers it 404. */
export const BATCH_BASE_PATH = '/_peercache/batch/'

/**
 * PEEK_BASE_PATH is peercache's peek endpoint: GET {PEEK_BASE_PATH}{group}/{key}
 * answers from the caches only, never loading. Outside basePath, so a Go
 * peer answers it with a bare 404 and is not asked again.
 */
export const PEEK_BASE_PATH = '/_peercache/peek/'

/** peekPath is the request path of a peek of key in group. */
export function peekPath(group: string, key: string): string {
  return peerPath(PEEK_BASE_PATH, group, key)
}

/**
 * CLEAR_BASE_PATH is where peercache's clear endpoint lives (POST, signed like
 * every request): outside basePath, so a Go peer never takes it for a key.
 */
export const CLEAR_BASE_PATH = '/_peercache/clear/'

/**
 * STATUS_PATH is peercache's status endpoint (GET, signed like every
 * request): the process's own status report as JSON (`cache.status()`),
 * which statusHandler() gathers from every peer. Outside basePath, so a Go
 * peer answers it with a bare 404 (shown as "no status").
 */
export const STATUS_PATH = '/_peercache/status'

/** clearPath is the request path that clears group at a peer. */
export function clearPath(group: string): string {
  return CLEAR_BASE_PATH + encodeURIComponent(group)
}

/**
 * HELLO_PATH is peercache's handshake endpoint (GET, signed like every
 * request): it answers this process's configuration as JSON (hello.ts).
 * Outside basePath, so a Go peer answers it with a bare 404.
 */
export const HELLO_PATH = '/_peercache/hello'

/**
 * PeerQuery is what peercache adds to a request in its query string (the
 * writes' fences, see group/writes.ts): `gen`, the sender's clear generation
 * of the group (0, and left out, until a clear), and `fresh`, set on a
 * revalidation get, which the owner answers with a fresh value (waiting for
 * its own refresh) rather than its stale copy. Go groupcache routes by the
 * path alone and never reads the query, so Go peers do not see either.
 */
export interface PeerQuery {
  readonly generation: number
  readonly fresh: boolean
}

const NO_QUERY: PeerQuery = Object.freeze({ generation: 0, fresh: false })

/** peerQuery is the query string of a request (with its `?`), or '' when it carries nothing. */
export function peerQuery(generation: number, fresh: boolean): string {
  if (generation === 0) return fresh ? '?fresh=1' : ''
  return fresh ? `?gen=${generation}&fresh=1` : `?gen=${generation}`
}

/**
 * parsePeerQuery reads PeerQuery from a request target, or returns undefined
 * when `gen` is not a safe non-negative integer (the request is refused).
 * Unknown parameters are ignored.
 */
export function parsePeerQuery(target: string): PeerQuery | undefined {
  const start = target.indexOf('?')
  if (start < 0) return NO_QUERY
  // By hand, not URLSearchParams: once a group was cleared every peer request carries `gen`.
  let generation = 0
  let fresh = false
  for (const param of target.slice(start + 1).split('&')) {
    if (param === 'fresh=1') fresh = true
    else if (param.startsWith('gen=')) {
      const digits = param.slice(4)
      generation = /^\d{1,16}$/.test(digits) ? Number(digits) : NaN
      if (!Number.isSafeInteger(generation)) return undefined
    }
  }
  return { generation, fresh }
}

/** peerPath is the request path for key of group under basePath. */
export function peerPath(basePath: string, group: string, key: string): string {
  return basePath + encodeURIComponent(group) + '/' + encodeURIComponent(key)
}

/** batchPath is the request path of the batch endpoint for group. */
export function batchPath(group: string): string {
  return BATCH_BASE_PATH + encodeURIComponent(group)
}

/** ParsedPeerPath is a decoded peer request path. */
export type ParsedPeerPath = { ok: true; group: string; key: string } | { ok: false; status: 400; message: string }

/**
 * parsePeerPath decodes the part of a path after basePath into group and key,
 * as Go's server does: percent-decode all of it, then split at the first `/`.
 */
export function parsePeerPath(rest: string): ParsedPeerPath {
  const decoded = decodePercent(rest)
  if (decoded === undefined) return { ok: false, status: 400, message: 'bad request: malformed percent-encoding' }
  const slash = decoded.indexOf('/')
  if (slash < 0) return { ok: false, status: 400, message: 'bad request' }
  return { ok: true, group: decoded.slice(0, slash), key: decoded.slice(slash + 1) }
}

/**
 * decodePercent is decodeURIComponent, or undefined for a malformed escape.
 * Most keys travel unescaped, and a text without `%` decodes to itself: it
 * is returned as it is, without the call and the new string.
 */
export function decodePercent(text: string): string | undefined {
  if (!text.includes('%')) return text
  try {
    return decodeURIComponent(text)
  } catch {
    return undefined
  }
}

/** splitTarget splits a request target into its path and whether it had a query. */
export function pathOf(target: string): string {
  const query = target.indexOf('?')
  return query < 0 ? target : target.slice(0, query)
}
