/**
 * security-http: the low-level tools the security tests (auth, TLS, hostile
 * input, fuzz) share.
 *
 * - `rawExchange` talks to a server over a plain `net` socket, so a test can
 *   send what undici refuses to send (unknown methods, broken framing, bytes
 *   that are not HTTP at all) and see exactly what comes back, including a
 *   connection the server closes without a word.
 * - `parseResponses` checks that bytes read from a server are well-formed
 *   HTTP/1.x responses (status line, header lines, body framing).
 * - `selfSignedCert` makes a certificate for 127.0.0.1 at test time.
 * - `reservePort` finds a free port for a server that must know its own URL
 *   before it listens (`cache.listen(port)` with `self` set up front).
 */
import net from 'node:net'
import selfsigned from 'selfsigned'

/** RawResult is what a raw socket saw: every byte the server sent, and how the exchange ended. */
export interface RawResult {
  /** Every byte the server sent. */
  bytes: Buffer
  /** True when the server closed the connection (FIN or reset) before our deadline. */
  closed: boolean
  /** True when our deadline ran out first (we then destroyed the socket). */
  timedOut: boolean
  /** The socket error code, if any (ECONNRESET when the server reset it). */
  error: string | undefined
  /** Milliseconds from connect() to the end of the exchange. */
  ms: number
}

/** RawOptions tune one raw exchange. */
export interface RawOptions {
  /** Give up (and destroy the socket) after this many ms. @default 5000 */
  timeoutMs?: number
  /** Half-close our side after writing (the server then sees EOF). @default false */
  halfClose?: boolean
  /** Sockets to register the new socket in, so a test's afterEach can destroy leftovers. */
  track?: Set<net.Socket>
}

/**
 * rawExchange connects to 127.0.0.1:port, writes `request` and collects
 * whatever comes back until the server closes the connection or the
 * deadline passes. It never rejects: everything it learns is in the result.
 */
export function rawExchange(port: number, request: string | Uint8Array, options: RawOptions = {}): Promise<RawResult> {
  const timeoutMs = options.timeoutMs ?? 5000
  return new Promise((resolve) => {
    const started = performance.now()
    const socket = net.connect(port, '127.0.0.1')
    options.track?.add(socket)
    const chunks: Buffer[] = []
    let error: string | undefined
    let settled = false
    const finish = (closed: boolean, timedOut: boolean): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      options.track?.delete(socket)
      socket.destroy()
      resolve({ bytes: Buffer.concat(chunks), closed, timedOut, error, ms: performance.now() - started })
    }
    const timer = setTimeout(() => finish(false, true), timeoutMs)
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message
    })
    socket.on('close', () => finish(true, false))
    socket.write(typeof request === 'string' ? Buffer.from(request, 'latin1') : request)
    if (options.halfClose === true) socket.end()
  })
}

/** ParsedResponse is one HTTP/1.x response read from raw bytes. */
export interface ParsedResponse {
  version: string
  status: number
  reason: string
  /** Header names lowercased; repeated headers keep every value. */
  headers: Map<string, string[]>
  body: Buffer
}

/** header returns the first value of a header (name in any case), or undefined. */
export function header(response: ParsedResponse, name: string): string | undefined {
  return response.headers.get(name.toLowerCase())?.[0]
}

const STATUS_LINE = /^HTTP\/1\.[01] ([1-5][0-9][0-9]) ([\t\x20-\x7e\x80-\xff]*)$/
const HEADER_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[\t ]*([\t\x20-\x7e\x80-\xff]*?)[\t ]*$/

/**
 * parseResponses parses bytes a server sent as a sequence of HTTP/1.x
 * responses (interim 1xx responses included) and throws an Error naming
 * the defect when they are not well-formed: a bad status line, a bad header
 * line, a head without its blank line, or a body that does not match its
 * framing. `headOnly` marks the answer to a HEAD: its first final
 * response has no body whatever its headers say (later responses, to bytes
 * pipelined after it, are read normally). A close after the last complete
 * response is fine; trailing bytes that do not start a response are a defect.
 */
export function parseResponses(bytes: Buffer, options: { headOnly?: boolean } = {}): ParsedResponse[] {
  const out: ParsedResponse[] = []
  let headPending = options.headOnly === true
  let at = 0
  while (at < bytes.length) {
    const end = bytes.indexOf('\r\n\r\n', at, 'latin1')
    if (end < 0) throw new Error(`response head without its blank line: ${preview(bytes.subarray(at))}`)
    const lines = bytes.subarray(at, end).toString('latin1').split('\r\n')
    const status = STATUS_LINE.exec(lines[0] ?? '')
    if (status === null) throw new Error(`bad status line: ${JSON.stringify(lines[0])}`)
    const headers = new Map<string, string[]>()
    for (const line of lines.slice(1)) {
      const match = HEADER_LINE.exec(line)
      if (match === null) throw new Error(`bad header line: ${JSON.stringify(line)}`)
      const name = (match[1] as string).toLowerCase()
      headers.set(name, [...(headers.get(name) ?? []), match[2] as string])
    }
    at = end + 4
    const code = Number(status[1])
    const response: ParsedResponse = { version: lines[0]!.slice(5, 8), status: code, reason: status[2] as string, headers, body: Buffer.alloc(0) }
    out.push(response)
    if (code < 200) continue
    const bodiless = code === 204 || code === 304 || headPending
    headPending = false
    if (bodiless) continue
    const length = headers.get('content-length')
    const chunked = (headers.get('transfer-encoding') ?? []).some((v) => /chunked/i.test(v))
    if (chunked) {
      const { body, next } = readChunked(bytes, at)
      response.body = body
      at = next
    } else if (length !== undefined) {
      if (length.length !== 1 || !/^[0-9]+$/.test(length[0] as string)) throw new Error(`bad content-length: ${JSON.stringify(length)}`)
      const n = Number(length[0])
      if (bytes.length - at < n) throw new Error(`body cut short: ${bytes.length - at} of ${n} bytes`)
      response.body = bytes.subarray(at, at + n)
      at += n
    } else {
      // No framing: the body runs to the close.
      response.body = bytes.subarray(at)
      at = bytes.length
    }
  }
  return out
}

/** readChunked decodes a chunked body starting at `at`. */
function readChunked(bytes: Buffer, at: number): { body: Buffer; next: number } {
  const parts: Buffer[] = []
  for (;;) {
    const eol = bytes.indexOf('\r\n', at, 'latin1')
    if (eol < 0) throw new Error('chunk size line cut short')
    const sizeText = bytes.subarray(at, eol).toString('latin1').split(';')[0]!.trim()
    if (!/^[0-9a-fA-F]+$/.test(sizeText)) throw new Error(`bad chunk size ${JSON.stringify(sizeText)}`)
    const size = parseInt(sizeText, 16)
    at = eol + 2
    if (size === 0) {
      // Trailers, then the blank line.
      const blank = bytes.indexOf('\r\n', at, 'latin1')
      if (blank !== at) {
        const trailersEnd = bytes.indexOf('\r\n\r\n', at, 'latin1')
        if (trailersEnd < 0) throw new Error('chunked trailers cut short')
        return { body: Buffer.concat(parts), next: trailersEnd + 4 }
      }
      return { body: Buffer.concat(parts), next: at + 2 }
    }
    if (bytes.length < at + size + 2) throw new Error('chunk cut short')
    parts.push(bytes.subarray(at, at + size))
    if (bytes.toString('latin1', at + size, at + size + 2) !== '\r\n') throw new Error('chunk not followed by CRLF')
    at += size + 2
  }
}

/** finalResponse returns the first non-interim (>= 200) response of a parse, or undefined. */
export function finalResponse(responses: readonly ParsedResponse[]): ParsedResponse | undefined {
  return responses.find((r) => r.status >= 200)
}

function preview(bytes: Buffer): string {
  return JSON.stringify(bytes.subarray(0, 200).toString('latin1'))
}

/** SelfSignedCert is a PEM key and certificate; the certificate is its own CA. */
export interface SelfSignedCert {
  key: string
  cert: string
}

/**
 * selfSignedCert generates an RSA-2048, SHA-256 certificate for 127.0.0.1
 * (an IP SAN, which is what Node checks for an IP host) and `localhost`,
 * valid for a day. Generated with selfsigned's callback form, which uses
 * Node's native key generation (fast), at test time: nothing is checked in.
 */
export function selfSignedCert(commonName = '127.0.0.1'): Promise<SelfSignedCert> {
  return new Promise((resolve, reject) => {
    selfsigned.generate(
      [{ name: 'commonName', value: commonName }],
      {
        keySize: 2048,
        days: 1,
        algorithm: 'sha256',
        extensions: [
          { name: 'basicConstraints', cA: true },
          { name: 'keyUsage', keyCertSign: true, digitalSignature: true, keyEncipherment: true },
          { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
          { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }] },
        ],
      },
      (err, pems) => (err === undefined || err === null ? resolve({ key: pems.private, cert: pems.cert }) : reject(err)),
    )
  })
}

/**
 * reservePort returns a port that was free a moment ago (listen on 0, read
 * the port, close). Racy in principle; fine for a test that must name its
 * own URL before `cache.listen(port)`.
 */
export async function reservePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as net.AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** portOf returns the port a listening server is bound to. */
export function portOf(server: { address(): string | net.AddressInfo | null }): number {
  return (server.address() as net.AddressInfo).port
}

/** sleep waits ms milliseconds: only for pacing a deliberately slow client, never to synchronise. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** waitForClose resolves with the elapsed ms once socket closes, or with undefined after timeoutMs. */
export function waitForClose(socket: net.Socket, timeoutMs: number, since = performance.now()): Promise<number | undefined> {
  if (socket.closed) return Promise.resolve(performance.now() - since)
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), timeoutMs)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve(performance.now() - since)
    })
  })
}

/** connect opens a raw socket to 127.0.0.1:port and resolves once connected. */
export function connect(port: number, track?: Set<net.Socket>): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    track?.add(socket)
    socket.once('connect', () => {
      socket.off('error', reject)
      resolve(socket)
    })
    socket.once('error', reject)
  })
}

/** A byte view as `group.peek` returns it (read-only, no copy). */
export interface BytesView {
  readonly buffer: ArrayBufferLike
  readonly byteOffset: number
  readonly byteLength: number
}

/** viewOf wraps a byte view (e.g. `group.peek`'s read-only bytes) in a Buffer without copying; undefined stays undefined. */
export function viewOf(bytes: BytesView | undefined): Buffer | undefined {
  return bytes === undefined ? undefined : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** peekText is `group.peek(key)` decoded as UTF-8, or undefined when nothing is cached. */
export function peekText(group: { peek(key: string): BytesView | undefined }, key: string): string | undefined {
  return viewOf(group.peek(key))?.toString('utf8')
}
