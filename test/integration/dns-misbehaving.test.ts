/**
 * DNS discovery against resolvers that misbehave on purpose, which dnsmasq
 * cannot be made to do: the pure-JS server (test/helpers/js-dns-server.ts)
 * answering A at once but AAAA late or never, and a UDP socket that takes
 * queries and never answers.
 *
 *  - the A answer alone is enough: one silent family does not fail refreshes;
 *  - close() while a refresh waits on a silent server leaves nothing that
 *    keeps the process alive (checked in a child process, where a leftover
 *    handle shows in process.getActiveResourcesInfo() and delays its exit).
 */
import { spawn } from 'node:child_process'
import { createSocket, type Socket } from 'node:dgram'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Peercache } from '../../src/index.js'
import { waitForPeers } from '../helpers/dns-cluster.js'
import { JsDnsServer } from '../helpers/js-dns-server.js'
import { recordingLogger } from '../helpers/recording-logger.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const CLOSE_SCRIPT = fileURLToPath(new URL('../helpers/close-while-resolving.ts', import.meta.url))
/** How long the child may take to start (tsx compiles it), close and end; past it, it is killed and the test fails. */
const EXIT_DEADLINE_MS = 30_000

let server: JsDnsServer
let cache: Peercache | undefined
beforeAll(async () => {
  server = await JsDnsServer.start()
})
afterEach(async () => {
  await cache?.close()
  cache = undefined
  server.delayAnswers('AAAA', 0)
})
afterAll(async () => {
  await server?.stop()
})

describe('a resolver that answers A but not AAAA', () => {
  it.each([
    ['never', 'never' as const],
    ['after 2.5 refresh deadlines', 1000],
  ])('AAAA answered %s: the A answer alone gives the peers, and no refresh fails', async (_when, delay) => {
    await server.setHosts({ 'v4.test': ['127.0.0.2', '127.0.0.3'] })
    server.delayAnswers('AAAA', delay)
    const { warns, logger } = recordingLogger()
    cache = new Peercache({ env: {}, self: 'http://127.0.0.1:1', logger, discovery: { dns: 'v4.test', port: 8080, servers: [server.server], intervalMs: 50, timeoutMs: 400 } })
    await waitForPeers(cache, ['http://127.0.0.2:8080', 'http://127.0.0.3:8080'])
    await server.waitForQueries('v4.test', 3)
    expect(server.queries('v4.test', 'AAAA')).toBeGreaterThanOrEqual(3)
    expect(warns.filter((m) => m.includes('discovery failed'))).toEqual([])
  })
})

describe('close() while a refresh waits on a silent DNS server', () => {
  let silent: Socket | undefined
  afterEach(async () => {
    await new Promise<void>((resolve) => (silent ? silent.close(() => resolve()) : resolve()))
    silent = undefined
  })

  it('aborts the refresh: nothing keeps the process alive after close() resolved, and it exits by itself', async () => {
    const socket = createSocket('udp4')
    silent = socket
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
    const child = spawn(process.execPath, ['--import', 'tsx', CLOSE_SCRIPT], {
      cwd: ROOT,
      // tsx's compile cache is written with async fs calls that may still be in flight when the child reports.
      env: { ...process.env, TSX_DISABLE_CACHE: '1', DNS_SERVER: `127.0.0.1:${socket.address().port}` },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
    // The child closes once its first query reached the silent server: a refresh is then waiting on it.
    socket.once('message', () => child.stdin.end())
    let killed = false
    const timer = setTimeout(() => {
      killed = true
      child.kill('SIGKILL')
    }, EXIT_DEADLINE_MS)
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
    clearTimeout(timer)

    expect(stderr).toBe('')
    expect(killed).toBe(false)
    expect(code).toBe(0)
    const lines = stdout.trim().split('\n')
    expect(lines[0]).toBe('CLOSED')
    // What is left is the stdout/stderr pipes the test reads (they never hold a process); no timer, no query, no
    // socket. File requests (FSReq*) end by themselves and are never peercache's: src/ does no async file I/O
    // (test/layout.test.ts), so one left by the loader on a slow machine is not counted.
    const resources = JSON.parse(lines[1]!.replace(/^RESOURCES /, '')) as string[]
    expect(resources.filter((resource) => resource !== 'PipeWrap' && !resource.startsWith('FSReq'))).toEqual([])
  }, EXIT_DEADLINE_MS + 10_000)
})
