/**
 * dnsmasq: a real DNS server for the discovery tests (Debian's `dnsmasq`
 * package), started on a free 127.0.0.1 UDP/TCP port and answering only
 * from files this helper writes:
 *
 *  - A/AAAA records from a hosts file (`setHosts`): rewritten, then SIGHUP,
 *    which makes dnsmasq reread it (awaited through its log line);
 *  - SRV records from `--srv-host` flags (`setSrv`): dnsmasq does not reread
 *    those on SIGHUP, so the helper restarts it on the same port.
 *
 * It is one of the two TestDnsServer implementations (test/helpers/dns-server.ts
 * picks it when it is installed). Started while missing, it is a failure with
 * a clear message, never a skip. The process is stopped by its own PID
 * (`stop()`, in afterAll).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import type { SrvRecord, TestDnsServer } from './dns-server.js'
import { freeDnsPort } from './dns-port.js'

const CANDIDATES = ['/usr/sbin/dnsmasq', '/usr/bin/dnsmasq', '/usr/local/sbin/dnsmasq']
const START_DEADLINE_MS = 10_000
const RELOAD_DEADLINE_MS = 10_000

/** Dnsmasq is one running dnsmasq process. */
export class Dnsmasq implements TestDnsServer {
  readonly port: number
  readonly #dir: string
  readonly #hostsFile: string
  /** The --srv-host flags of each SRV name. */
  readonly #srv = new Map<string, string[]>()
  #process: ChildProcess | undefined
  #log = ''

  private constructor(dir: string, port: number) {
    this.#dir = dir
    this.#hostsFile = join(dir, 'hosts')
    this.port = port
  }

  /** start launches dnsmasq with an empty hosts file; rejects with a clear message when dnsmasq is not installed. */
  static async start(): Promise<Dnsmasq> {
    dnsmasqPath()
    const dir = await mkdtemp(join(tmpdir(), 'peercache-dns-'))
    await chmod(dir, 0o755)
    const server = new Dnsmasq(dir, await freeDnsPort())
    await server.#writeHosts({})
    await server.#launch()
    return server
  }

  /** server is the address to hand to discovery's `servers`. */
  get server(): string {
    return `127.0.0.1:${this.port}`
  }

  /** pid of the running dnsmasq. */
  get pid(): number | undefined {
    return this.#process?.pid
  }

  /** setHosts makes name → addresses the A/AAAA answers (SIGHUP reload) and resolves once dnsmasq reread the file. */
  async setHosts(records: Record<string, readonly string[]>): Promise<void> {
    await this.#writeHosts(records)
    const reread = this.#waitForLog(`read ${this.#hostsFile}`, this.#log.length, RELOAD_DEADLINE_MS)
    this.#process?.kill('SIGHUP')
    await reread
  }

  /** setSrv makes `records` the SRV answer of name (dnsmasq restarted on the same port). */
  async setSrv(name: string, records: readonly SrvRecord[]): Promise<void> {
    this.#srv.set(name, records.map((r, i) => `--srv-host=${name},${r.target},${r.port},0,${100 - i}`))
    await this.#kill()
    await this.#launch()
  }

  /** waitForQueries resolves once dnsmasq has logged `count` more queries of name (from now). */
  async waitForQueries(name: string, count: number): Promise<void> {
    let from = this.#log.length
    for (let i = 0; i < count; i++) {
      await this.#waitForLog(`]: query[A] ${name} from`, from, RELOAD_DEADLINE_MS)
      from = this.#log.indexOf(`]: query[A] ${name} from`, from) + 1
    }
  }

  /** pause stops dnsmasq (its port then refuses: lookups fail) until resume(). */
  async pause(): Promise<void> {
    await this.#kill()
  }

  /** resume starts dnsmasq again on the same port with the same answers. */
  async resume(): Promise<void> {
    await this.#launch()
  }

  /** stop kills dnsmasq by its PID and removes its files. Idempotent. */
  async stop(): Promise<void> {
    await this.#kill()
    await rm(this.#dir, { recursive: true, force: true })
  }

  async #writeHosts(records: Record<string, readonly string[]>): Promise<void> {
    const lines = Object.entries(records).flatMap(([name, addresses]) => addresses.map((address) => `${address} ${name}`))
    await writeFile(this.#hostsFile, lines.join('\n') + '\n', { mode: 0o644 })
  }

  async #launch(): Promise<void> {
    const args = [
      '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--keep-in-foreground', '--log-facility=-',
      '--pid-file=', `--user=${userInfo().username}`, `--addn-hosts=${this.#hostsFile}`, `--port=${this.port}`,
      '--listen-address=127.0.0.1', '--bind-interfaces', '--local-ttl=0', '--log-queries', ...[...this.#srv.values()].flat(),
    ]
    const child = spawn(dnsmasqPath(), args, { stdio: ['ignore', 'pipe', 'pipe'] })
    this.#process = child
    this.#log = ''
    const collect = (chunk: Buffer): void => {
      this.#log += chunk.toString('utf8')
    }
    child.stdout?.on('data', collect)
    child.stderr?.on('data', collect)
    await this.#waitForLog(`read ${this.#hostsFile}`, 0, START_DEADLINE_MS)
  }

  /** Resolves when `text` appears in the log after offset `from`; rejects if dnsmasq exits or the deadline passes. */
  #waitForLog(text: string, from: number, deadlineMs: number): Promise<void> {
    const child = this.#process
    return new Promise((resolve, reject) => {
      if (child === undefined) return reject(new Error('dnsmasq is not running'))
      const check = (): void => {
        if (this.#log.indexOf(text, from) >= 0) done(undefined)
      }
      const onExit = (code: number | null): void => done(new Error(`dnsmasq exited (${code}):\n${this.#log}`))
      const timer = setTimeout(() => done(new Error(`dnsmasq did not log "${text}" within ${deadlineMs} ms:\n${this.#log}`)), deadlineMs)
      function done(error: Error | undefined): void {
        clearTimeout(timer)
        child!.stdout?.off('data', check)
        child!.stderr?.off('data', check)
        child!.off('exit', onExit)
        if (error === undefined) resolve()
        else reject(error)
      }
      child.stdout?.on('data', check)
      child.stderr?.on('data', check)
      child.once('exit', onExit)
      check()
    })
  }

  async #kill(): Promise<void> {
    const child = this.#process
    this.#process = undefined
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    await exited
  }
}

/** dnsmasqInstalled tells whether the dnsmasq binary is on this machine. */
export function dnsmasqInstalled(): boolean {
  return CANDIDATES.some((path) => existsSync(path))
}

/** dnsmasqPath finds the dnsmasq binary or throws an error that says how to install it. */
function dnsmasqPath(): string {
  const found = CANDIDATES.find((path) => existsSync(path))
  if (found === undefined) {
    throw new Error(`dnsmasq is not installed (looked in ${CANDIDATES.join(', ')}): the discovery tests need a real DNS server; install it with \`apt-get install dnsmasq\``)
  }
  return found
}
