/**
 * Helpers for the issue-6 feature tests (TTL, set/remove, batch, metrics),
 * on top of test/helpers/cluster.ts:
 *
 *  - recordRequests logs every HTTP request a member's server receives
 *    (method and path), so tests count batch POSTs and per-key GETs at the
 *    server, where they really happen;
 *  - keysOwnedBy / keysOwnedIn pick keys the ring gives to a given member;
 *  - startFakePeer runs a plain node:http server that plays a peer (a Go
 *    groupcache peer without the batch endpoint, or an owner that records
 *    the PUT/DELETE bodies it receives);
 *  - gateRequests holds chosen requests at a member's server until the test
 *    lets them through, to force an interleaving without sleeps;
 *  - readInt64Field reads an int64 field (GetResponse/BatchEntry field 3,
 *    SetRequest field 4: expire in Unix ns) straight from the wire bytes.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { HashRing, serverUrl, type RingOptions } from '../../src/index.js'
import { HELLO_PATH } from '../../src/proto/paths.js'
import type { Cluster } from './cluster.js'
import { listenLocal } from './cluster.js'
import { deferred, type Deferred } from './core-helpers.js'

/** LoggedRequest is one request a server received. */
export interface LoggedRequest {
  method: string
  url: string
}

/** RequestLog is what recordRequests collects for one server. */
export interface RequestLog {
  readonly all: LoggedRequest[]
  /** count counts the requests with this method whose path starts with prefix. */
  count(method: string, prefix?: string): number
  /** clear forgets what was logged so far. */
  clear(): void
  /** arrival resolves once a request matching `match` has been received (at once if one already was). */
  arrival(match: (r: LoggedRequest) => boolean): Promise<LoggedRequest>
}

/** BATCH_PREFIX is where the batch endpoint lives (DESIGN.md, issue 6). */
export const BATCH_PREFIX = '/_peercache/batch/'
/** KEY_PREFIX is the default basePath of the per-key endpoint. */
export const KEY_PREFIX = '/_groupcache/'

/**
 * recordRequests logs every request `server` receives but the handshake's
 * hello (HELLO_PATH: it comes when a peer first answers and after each
 * probe, and is no data request). The listener is put before the peer
 * handler (prependListener); it only reads method and URL.
 */
export function recordRequests(server: Server): RequestLog {
  const all: LoggedRequest[] = []
  const waiting = new Set<(r: LoggedRequest) => void>()
  server.prependListener('request', (req: IncomingMessage) => {
    if (req.url === HELLO_PATH) return
    const logged = { method: req.method ?? '', url: req.url ?? '' }
    all.push(logged)
    for (const notify of waiting) notify(logged)
  })
  return {
    all,
    count: (method, prefix = '') => all.filter((r) => r.method === method && r.url.startsWith(prefix)).length,
    clear: () => {
      all.length = 0
    },
    arrival: (match) => {
      const seen = all.find(match)
      if (seen !== undefined) return Promise.resolve(seen)
      return new Promise((resolve) => {
        const notify = (r: LoggedRequest): void => {
          if (!match(r)) return
          waiting.delete(notify)
          resolve(r)
        }
        waiting.add(notify)
      })
    },
  }
}

/** keysOwnedBy returns n keys `${prefix}-<i>` the cluster's ring gives to member `owner`. */
export function keysOwnedBy(cluster: Cluster, owner: number, n: number, prefix = 'key'): string[] {
  const keys: string[] = []
  for (let i = 0; keys.length < n; i++) {
    if (i > 100_000) throw new Error(`no ${n} keys for member ${owner}`)
    const key = `${prefix}-${i}`
    if (cluster.ownerOf(key) === owner) keys.push(key)
  }
  return keys
}

/** keysOwnedIn returns n keys `${prefix}-<i>` that the ring over `peers` (the default one unless `ring` says) gives to `owner`. */
export function keysOwnedIn(peers: readonly string[], owner: string, n: number, prefix = 'key', ring: RingOptions = {}): string[] {
  const placed = new HashRing(peers, ring)
  const keys: string[] = []
  for (let i = 0; keys.length < n; i++) {
    if (i > 100_000) throw new Error(`no ${n} keys for ${owner}`)
    const key = `${prefix}-${i}`
    if (placed.pick(key) === owner) keys.push(key)
  }
  return keys
}

/** FakePeer is a plain node:http server standing in for a peer. */
export interface FakePeer {
  server: Server
  url: string
  close(): Promise<void>
}

/**
 * startFakePeer starts a plain node:http server on 127.0.0.1 port 0 answering
 * with `handle`, but the handshake's hello (HELLO_PATH), which it answers as
 * a Go peer does (a bare 404) without `handle` seeing it.
 */
export async function startFakePeer(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<FakePeer> {
  const server = await listenLocal()
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.url !== HELLO_PATH) return handle(req, res)
    res.statusCode = 404
    res.end('404 page not found\n')
  })
  return {
    server,
    url: serverUrl(server),
    close: async () => {
      if (!server.listening) return
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeAllConnections()
      await closed
    },
  }
}

/** readRequestBody reads a request body to its end. */
export async function readRequestBody(req: IncomingMessage): Promise<Uint8Array> {
  const chunks: Buffer[] = []
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk)
  return new Uint8Array(Buffer.concat(chunks))
}

/** Gate holds the requests it matches until `open()`; `arrived` resolves when the first one is held. */
export interface Gate {
  arrived: Promise<void>
  open(): void
}

/**
 * gateRequests replaces the peer handler on `server` by one that holds every
 * request `match` selects until the gate opens (other requests pass at once).
 * The held request's body stays buffered in its stream until the handler reads it.
 */
export function gateRequests(server: Server, handler: (req: IncomingMessage, res: ServerResponse) => void, match: (req: IncomingMessage) => boolean): Gate {
  const arrived: Deferred<void> = deferred()
  const opened: Deferred<void> = deferred()
  server.removeListener('request', handler)
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!match(req)) return handler(req, res)
    arrived.resolve()
    void opened.promise.then(() => handler(req, res))
  })
  return { arrived: arrived.promise, open: () => opened.resolve() }
}

/** closedPortUrl returns the URL of a port that was just listened on and closed again (connections are refused). */
export async function closedPortUrl(): Promise<string> {
  const server = await listenLocal()
  const url = serverUrl(server)
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return url
}

/**
 * readInt64Field walks a protobuf message's wire bytes and returns varint
 * field `wanted` as an int64, exactly as sent (the last occurrence), or
 * undefined when absent. For expire: GetResponse field 3, SetRequest field 4
 * (Unix nanoseconds). Independent of src/proto, so it checks the codec
 * rather than trusting it.
 */
export function readInt64Field(bytes: Uint8Array, wanted: number): bigint | undefined {
  let pos = 0
  let expire: bigint | undefined
  const varint = (): bigint => {
    let result = 0n
    let shift = 0n
    for (;;) {
      const byte = bytes[pos++]
      if (byte === undefined) throw new Error('truncated varint')
      result |= BigInt(byte & 0x7f) << shift
      if ((byte & 0x80) === 0) return result
      shift += 7n
    }
  }
  while (pos < bytes.length) {
    const tag = Number(varint())
    const field = tag >>> 3
    const wire = tag & 7
    if (wire === 0) {
      const value = varint()
      if (field === wanted) expire = BigInt.asIntN(64, value)
    } else if (wire === 1) pos += 8
    else if (wire === 2) {
      const length = Number(varint()) // read before adding: `pos += varint()` would add to the old pos
      pos += length
    }
    else if (wire === 5) pos += 4
    else throw new Error(`unexpected wire type ${wire}`)
  }
  return expire
}

/** NS_PER_MS converts epoch milliseconds to the wire's nanoseconds. */
export const NS_PER_MS = 1_000_000n

/** BytesView is anything with a Uint8Array's read side (a Buffer, a Uint8Array, peek's read-only view). */
export interface BytesView {
  readonly buffer: ArrayBufferLike
  readonly byteOffset: number
  readonly byteLength: number
}

/** textOf decodes bytes as UTF-8 (undefined stays undefined), without writing to them. */
export function textOf(bytes: BytesView | undefined): string | undefined {
  if (bytes === undefined) return undefined
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')
}
