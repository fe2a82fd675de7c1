/**
 * failover-servers: misbehaving "peers" for test/integration/failover.test.ts,
 * all on 127.0.0.1 port 0 and all closed by their `close()` (call it in
 * afterEach): every socket they accepted is destroyed and every timer they
 * started is cleared, so a test leaves nothing behind.
 *
 *  - startBlackHole: accepts TCP connections and never writes a byte.
 *  - startScriptedPeer: a raw node:http server that answers every request
 *    with whatever the test's `respond` does (garbage, truncated, dripping),
 *    but the handshake's hello, which it answers as a Go peer does (a bare
 *    404) and does not record: the script is about data requests.
 */
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { HashRing } from '../../src/index.js'
import { HELLO_PATH } from '../../src/proto/paths.js'

/** BlackHole is a TCP server that accepts and then says nothing, ever. */
export interface BlackHole {
  readonly url: string
  /** Connections accepted so far. */
  readonly accepted: () => number
  /** nextConnection resolves on the next accepted connection, with whether the client has closed it since. */
  nextConnection(): Promise<{ closed(): boolean }>
  close(): Promise<void>
}

/** startBlackHole listens on 127.0.0.1 port 0; accepted sockets are held open, unanswered. */
export async function startBlackHole(): Promise<BlackHole> {
  const sockets = new Set<Socket>()
  let accepted = 0
  let waiters: Array<(connection: { closed(): boolean }) => void> = []
  const server = createNetServer((socket) => {
    accepted++
    sockets.add(socket)
    let closed = false
    socket.on('error', () => {})
    socket.on('close', () => {
      closed = true
      sockets.delete(socket)
    })
    // Read (and drop) what the client sends, so its writes never block; answer nothing.
    socket.resume()
    const woken = waiters
    waiters = []
    for (const wake of woken) wake({ closed: () => closed })
  })
  await listen(server)
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    accepted: () => accepted,
    nextConnection: () => new Promise((resolve) => waiters.push(resolve)),
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** ScriptedRequest is what a scripted peer saw. */
export interface ScriptedRequest {
  method: string
  path: string
}

/** ScriptTools let a `respond` function start timers the server clears on close. */
export interface ScriptTools {
  /** every runs fn every ms until the response ends or the server closes. */
  every(ms: number, fn: () => void): void
}

/** ScriptedPeer is a raw HTTP server that answers as its script says. */
export interface ScriptedPeer {
  readonly url: string
  /** Every request received, in order. */
  readonly requests: ScriptedRequest[]
  close(): Promise<void>
}

/**
 * startScriptedPeer starts a node:http server on 127.0.0.1 port 0 whose
 * every request is handed to `respond` (after its body was read).
 */
export async function startScriptedPeer(respond: (req: IncomingMessage, res: ServerResponse, tools: ScriptTools) => void): Promise<ScriptedPeer> {
  const requests: ScriptedRequest[] = []
  const sockets = new Set<Socket>()
  const timers = new Set<NodeJS.Timeout>()
  const server = createHttpServer((req, res) => {
    if (req.url === HELLO_PATH) {
      res.statusCode = 404
      res.end('404 page not found\n')
      return
    }
    requests.push({ method: req.method ?? '', path: req.url ?? '' })
    const tools: ScriptTools = {
      every(ms, fn) {
        const timer = setInterval(() => {
          if (res.destroyed || res.writableEnded) {
            clearInterval(timer)
            timers.delete(timer)
            return
          }
          fn()
        }, ms)
        timers.add(timer)
        res.once('close', () => {
          clearInterval(timer)
          timers.delete(timer)
        })
      },
    }
    req.resume()
    req.once('end', () => respond(req, res, tools))
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  server.on('clientError', (_err, socket) => socket.destroy())
  await listen(server)
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: async () => {
      for (const timer of timers) clearInterval(timer)
      timers.clear()
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const socket of sockets) socket.destroy()
      await closed
    },
  }
}

function listen(server: Server | ReturnType<typeof createHttpServer>): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
}

/**
 * keysOwnedBy returns n keys `${prefix}-${i}` that the ring over peers
 * (Peercache's default, the balanced ring) gives to owner.
 */
export function keysOwnedBy(peers: readonly string[], owner: string, n: number, prefix: string): string[] {
  const ring = new HashRing(peers)
  const keys: string[] = []
  for (let i = 0; keys.length < n; i++) {
    if (i > 100_000 + n * 1000) throw new Error(`no ${n} keys of ${owner} among ${i} tried`)
    const key = `${prefix}-${i}`
    if (ring.pick(key) === owner) keys.push(key)
  }
  return keys
}

/** RawResponse is what rawGet read. */
export interface RawResponse {
  status: number
  headers: IncomingMessage['headers']
  body: string
}

/**
 * rawGet sends one GET over a fresh connection that is closed afterwards (no
 * agent, no keep-alive: it leaves no socket behind).
 */
export function rawGet(url: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'GET', agent: false, headers: { connection: 'close' } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}
