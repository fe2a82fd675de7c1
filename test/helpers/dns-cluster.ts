/**
 * dns-cluster: child-process peers that find each other through DNS
 * (test/helpers/dns-peer.ts), each on its own loopback address (127.0.0.2,
 * 127.0.0.3, …) and the same port, as pods behind a headless Service. The
 * helper reads each child's report lines (READY, PEERS, LOAD) from the
 * moment it spawns, so waits are on events, never sleeps.
 */
import { spawn } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { fileURLToPath } from 'node:url'
import type { Peercache } from '../../src/index.js'
import { stopChild, type ChildPeer } from './child-procs.js'

const SCRIPT = fileURLToPath(new URL('./dns-peer.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const WAIT_DEADLINE_MS = 60_000

/** DnsChildOptions start one DNS-discovering child. */
export interface DnsChildOptions {
  tag: string
  address: string
  port: number
  dnsName: string
  dnsServer: string
  srv?: boolean
  drainMs?: number
}

/** DnsChild is a running child peer and what it reported. */
export class DnsChild implements ChildPeer {
  readonly tag: string
  readonly url: string
  readonly process: ChildPeer['process']
  /** Keys the child loaded from its origin, in order. */
  readonly loads: string[] = []
  /** The child's latest peer list (sorted). */
  peers: readonly string[] = []
  readonly #events = new EventEmitter()
  #ready = false
  #output = ''

  private constructor(options: DnsChildOptions) {
    this.tag = options.tag
    this.url = `http://${options.address}:${options.port}`
    this.process = spawn(process.execPath, ['--import', 'tsx', SCRIPT], {
      cwd: ROOT,
      env: { ...inheritedEnv(), ...childEnv(options) },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let pending = ''
    this.process.stdout.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8')
      const lines = pending.split('\n')
      pending = lines.pop() ?? ''
      for (const line of lines) this.#onLine(line)
    })
    this.process.stderr.on('data', (chunk: Buffer) => {
      this.#output += chunk.toString('utf8')
    })
    this.process.on('exit', () => this.#events.emit('change'))
  }

  /** start spawns the child and resolves once it listens. */
  static async start(options: DnsChildOptions): Promise<DnsChild> {
    const child = new DnsChild(options)
    try {
      await child.until(() => child.#ready, 'READY')
    } catch (err) {
      await stopChild(child, 'SIGKILL')
      throw err
    }
    return child
  }

  /** waitForPeers resolves once the child's peer list is exactly `peers`. */
  waitForPeers(peers: readonly string[]): Promise<void> {
    const expected = JSON.stringify([...peers].sort())
    return this.until(() => JSON.stringify(this.peers) === expected, `peers ${expected}`)
  }

  /** until resolves when check() holds after one of the child's reports; rejects if it exits first or the deadline passes. */
  until(check: () => boolean, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const onChange = (): void => {
        if (check()) return done()
        if (this.process.exitCode !== null || this.process.signalCode !== null) done(new Error(`${this.tag} exited before ${what}\n${this.#output}`))
      }
      const timer = setTimeout(() => done(new Error(`${this.tag}: no ${what} within ${WAIT_DEADLINE_MS} ms (peers ${JSON.stringify(this.peers)})\n${this.#output}`)), WAIT_DEADLINE_MS)
      const done = (error?: Error): void => {
        clearTimeout(timer)
        this.#events.off('change', onChange)
        if (error === undefined) resolve()
        else reject(error)
      }
      this.#events.on('change', onChange)
      onChange()
    })
  }

  /** stop sends SIGTERM (a graceful close, with its drain) and resolves once the child exited. */
  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    return stopChild(this, signal)
  }

  #onLine(line: string): void {
    const space = line.indexOf(' ')
    const word = space < 0 ? line : line.slice(0, space)
    const rest = space < 0 ? '' : line.slice(space + 1)
    if (word === 'READY') this.#ready = true
    else if (word === 'PEERS') this.peers = [...(JSON.parse(rest) as string[])].sort()
    else if (word === 'LOAD') this.loads.push(JSON.parse(rest) as string)
    else this.#output += `${line}\n`
    this.#events.emit('change')
  }
}

function childEnv(options: DnsChildOptions): Record<string, string> {
  return {
    TAG: options.tag,
    POD_IP: options.address,
    PORT: String(options.port),
    DNS_NAME: options.dnsName,
    DNS_SERVER: options.dnsServer,
    DNS_SRV: options.srv === true ? '1' : '0',
    DRAIN_MS: String(options.drainMs ?? 0),
  }
}

function inheritedEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('PEERCACHE_') && name !== 'POD_IP'))
}

/** waitForPeers resolves once an in-test Peercache's peer list is exactly `peers` (on its peers-changed events). */
export function waitForPeers(cache: Peercache, peers: readonly string[]): Promise<void> {
  const expected = JSON.stringify([...peers].sort())
  const matches = (): boolean => JSON.stringify([...cache.peers].sort()) === expected
  if (matches()) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const onChange = (): void => {
      if (!matches()) return
      clearTimeout(timer)
      cache.events.off('peers-changed', onChange)
      resolve()
    }
    const timer = setTimeout(() => {
      cache.events.off('peers-changed', onChange)
      reject(new Error(`peers ${JSON.stringify(cache.peers)} never became ${expected}`))
    }, WAIT_DEADLINE_MS)
    cache.events.on('peers-changed', onChange)
  })
}

/** freePort returns a TCP port free on every loopback address the test uses (checked by binding each). */
export async function freeSharedPort(addresses: readonly string[]): Promise<number> {
  const { createServer } = await import('node:net')
  for (let attempt = 0; attempt < 20; attempt++) {
    const first = createServer()
    const port = await new Promise<number>((resolve) => first.listen(0, addresses[0], () => resolve((first.address() as { port: number }).port)))
    const others = await Promise.all(
      addresses.slice(1).map(
        (address) =>
          new Promise<import('node:net').Server | undefined>((resolve) => {
            const server = createServer()
            server.once('error', () => resolve(undefined))
            server.listen(port, address, () => resolve(server))
          }),
      ),
    )
    await Promise.all([first, ...others].map((server) => server && new Promise((resolve) => server.close(resolve))))
    if (others.every((server) => server !== undefined)) return port
  }
  throw new Error('no port free on every loopback address')
}
