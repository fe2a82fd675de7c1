/**
 * js-dns-server: a real DNS server in pure JavaScript for the discovery tests
 * (the npm package dns2 parses and writes the wire format; the sockets are
 * node:dgram and node:net), on a free 127.0.0.1 port over UDP and TCP. It
 * answers only from what the test set:
 *
 *  - A and AAAA from `setHosts` (each address goes to its family);
 *  - SRV from `setSrv`;
 *  - a name it knows without records of the asked type: an empty answer
 *    (NODATA); a name it does not know: NXDOMAIN.
 *
 * Unlike dnsmasq it can also misbehave on purpose (`delayAnswers`): answer
 * one record type late, or never, as a broken resolver does.
 *
 * Every query is logged (name, type) for `waitForQueries`. `pause()` closes
 * both sockets (the port then refuses, as a killed dnsmasq's does) and
 * `resume()` listens again on the same port. Invariant relied on by stop():
 * every handle it opens — the two sockets, TCP connections, timers of
 * delayed answers — is in a field or set that pause() empties.
 */
import { EventEmitter } from 'node:events'
import type { RemoteInfo } from 'node:dgram'
import { isIP, type Socket } from 'node:net'
import type DNS from 'dns2'
import { createTCPServer, createUDPServer, Packet, type TCPServer, type UDPServer } from 'dns2'
import type { SrvRecord, TestDnsServer } from './dns-server.js'
import { freeDnsPort } from './dns-port.js'

const QUERY_DEADLINE_MS = 10_000
const HOST = '127.0.0.1'
/** RFC 1035 §4.1.1: the name does not exist (dns2 2.x's types lack Packet.RCODE). */
const NXDOMAIN = 3

/** RecordType names the record types the server answers. */
export type RecordType = 'A' | 'AAAA' | 'SRV'

/** AnswerDelay is how late the server answers one record type: milliseconds, or never. */
export type AnswerDelay = number | 'never'

type Send = (response: Packet) => Promise<Buffer>
interface Query {
  name: string
  type: number
}

/** JsDnsServer is one running pure-JS DNS server. */
export class JsDnsServer implements TestDnsServer {
  readonly port: number
  readonly #hosts = new Map<string, string[]>()
  readonly #srv = new Map<string, readonly SrvRecord[]>()
  readonly #delays = new Map<number, AnswerDelay>()
  readonly #queries: Query[] = []
  readonly #events = new EventEmitter()
  readonly #connections = new Set<Socket>()
  readonly #timers = new Set<NodeJS.Timeout>()
  #udp: UDPServer | undefined
  #tcp: TCPServer | undefined
  #stopped = false

  private constructor(port: number) {
    this.port = port
  }

  /** start listens on a free port with no records (every name: NXDOMAIN). */
  static async start(): Promise<JsDnsServer> {
    const server = new JsDnsServer(await freeDnsPort())
    await server.resume()
    return server
  }

  /** server is the address to hand to discovery's `servers`. */
  get server(): string {
    return `${HOST}:${this.port}`
  }

  /** setHosts makes name → addresses the A/AAAA answers; names left out are NXDOMAIN from the next query on. */
  setHosts(records: Record<string, readonly string[]>): Promise<void> {
    this.#hosts.clear()
    for (const [name, addresses] of Object.entries(records)) this.#hosts.set(canonical(name), [...addresses])
    return Promise.resolve()
  }

  /** setSrv makes `records` the SRV answer of name, the first one most preferred (as dnsmasq's weights do). */
  setSrv(name: string, records: readonly SrvRecord[]): Promise<void> {
    this.#srv.set(canonical(name), [...records])
    return Promise.resolve()
  }

  /**
   * delayAnswers makes the server answer queries of one record type `delay`
   * ms late, or never (the query is received, logged, and dropped); 0 is on
   * time again. Other types are not affected.
   */
  delayAnswers(type: RecordType, delay: AnswerDelay): void {
    if (delay === 0) this.#delays.delete(Packet.TYPE[type])
    else this.#delays.set(Packet.TYPE[type], delay)
  }

  /** queries returns how many queries of name (of one type, or of any) the server received so far. */
  queries(name: string, type?: RecordType): number {
    const wanted = canonical(name)
    return this.#queries.filter((q) => q.name === wanted && (type === undefined || q.type === Packet.TYPE[type])).length
  }

  /** waitForQueries resolves once `count` more A queries of name arrived (from now); rejects after 10 s. */
  waitForQueries(name: string, count: number): Promise<void> {
    const target = this.queries(name, 'A') + count
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.queries(name, 'A') >= target) done()
      }
      const timer = setTimeout(() => done(new Error(`DNS server: ${this.queries(name, 'A')} A queries of ${name}, not ${target}, within ${QUERY_DEADLINE_MS} ms`)), QUERY_DEADLINE_MS)
      const done = (error?: Error): void => {
        clearTimeout(timer)
        this.#events.off('query', check)
        if (error === undefined) resolve()
        else reject(error)
      }
      this.#events.on('query', check)
    })
  }

  /** pause closes both sockets, their TCP connections and every answer not sent yet: the port refuses until resume(). */
  async pause(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer)
    this.#timers.clear()
    const udp = this.#udp
    const tcp = this.#tcp
    this.#udp = undefined
    this.#tcp = undefined
    for (const connection of this.#connections) connection.destroy()
    this.#connections.clear()
    await Promise.all([udp && new Promise<void>((resolve) => udp.close(() => resolve())), tcp && new Promise<void>((resolve) => tcp.close(() => resolve()))])
  }

  /** resume listens again on the same port (UDP and TCP) with the same answers. */
  async resume(): Promise<void> {
    if (this.#stopped) throw new Error('DNS server: resume() after stop()')
    if (this.#udp !== undefined) return
    const handle = (request: Packet, send: Send): void => this.#handle(request, send)
    const udp = createUDPServer(handle)
    const tcp = createTCPServer(handle)
    tcp.on('connection', (socket: Socket) => {
      this.#connections.add(socket)
      socket.once('close', () => this.#connections.delete(socket))
    })
    this.#udp = udp
    this.#tcp = tcp
    await Promise.all([bound(udp, () => udp.bind(this.port, HOST)), bound(tcp, () => tcp.listen(this.port, HOST))])
  }

  /** stop closes everything the server holds. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true
    await this.pause()
  }

  #handle(request: Packet, send: Send): void {
    const question = request.questions[0]
    if (question === undefined) return
    const query = { name: canonical(question.name), type: question.type }
    this.#queries.push(query)
    this.#events.emit('query')
    const response = this.#answer(request, query)
    const delay = this.#delays.get(query.type)
    const reply = (): void => void send(response).catch(() => undefined)
    if (delay === undefined) return reply()
    if (delay === 'never') return
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      reply()
    }, delay)
    this.#timers.add(timer)
  }

  /** #answer builds the response to one query from the records the test set. */
  #answer(request: Packet, query: Query): Packet {
    const response = Packet.createResponseFromRequest(request)
    response.header.aa = 1
    const addresses = this.#hosts.get(query.name)
    const srv = this.#srv.get(query.name)
    if (addresses === undefined && srv === undefined) {
      response.header.rcode = NXDOMAIN
      return response
    }
    const base = { name: query.name, class: Packet.CLASS.IN, ttl: 0 }
    if (query.type === Packet.TYPE.A || query.type === Packet.TYPE.AAAA) {
      const family = query.type === Packet.TYPE.A ? 4 : 6
      for (const address of addresses ?? []) if (isIP(address) === family) response.answers.push({ ...base, type: query.type, address } as DNS.Packet.Resource)
    }
    if (query.type === Packet.TYPE.SRV) {
      ;(srv ?? []).forEach((record, i) => response.answers.push({ ...base, type: Packet.TYPE.SRV, priority: 0, weight: 100 - i, port: record.port, target: record.target } as DNS.Packet.Resource))
    }
    return response
  }
}

/** canonical is a DNS name as the server compares it: lower case, no trailing dot. */
function canonical(name: string): string {
  return name.toLowerCase().replace(/\.$/, '')
}

/** bound resolves once a socket listens, and rejects with its error (a port taken) instead. */
function bound(socket: UDPServer | TCPServer, listen: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(new Error(`DNS server could not listen: ${err.message}`))
    socket.once('error', onError)
    socket.once('listening', () => {
      socket.off('error', onError)
      resolve()
    })
    listen()
  })
}
