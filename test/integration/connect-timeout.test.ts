/**
 * connectTimeout: a peer whose TCP connect never completes, on 127.0.0.1.
 *
 * Loopback refuses or accepts at once, so to get a connect that hangs the
 * peer is a child process that listens with a backlog of 1 and then blocks
 * its event loop without accepting: once its accept queue is full, the
 * kernel drops further SYNs, and a new connection stays in SYN_SENT. The
 * child blocks for at most 20 s and is ended by its PID after the test.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { createServer } from 'node:http'
import { errors as undiciErrors } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { Peercache, PeerTimeoutError, serverUrl, type PeercacheEvents } from '../../src/index.js'

const STUCK_LISTENER = `
const net = require('node:net')
const server = net.createServer()
server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
  process.stdout.write(server.address().port + '\\n') // synchronous on a pipe
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20000) // never accepts, for 20 s at most
  process.exit(0)
})
`

const cleanups: Array<() => Promise<void> | void> = []

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** stuckPeer starts the listener child and fills its accept queue; connects to its port then hang. */
async function stuckPeer(): Promise<number> {
  const child: ChildProcess = spawn(process.execPath, ['-e', STUCK_LISTENER], { stdio: ['ignore', 'pipe', 'inherit'] })
  cleanups.push(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGKILL')
    await exited
  })
  const [chunk] = (await once(child.stdout!, 'data')) as [Buffer]
  const port = Number(chunk.toString().trim())
  // The accept queue holds backlog + 1 connections: fill it (the extra ones are harmless).
  const fillers: Socket[] = Array.from({ length: 4 }, () => connect(port, '127.0.0.1').on('error', () => {}))
  cleanups.push(() => fillers.forEach((socket) => socket.destroy()))
  await Promise.all(fillers.slice(0, 2).map((socket) => once(socket, 'connect')))
  return port
}

describe('connectTimeout', () => {
  it('a connect that never completes fails with PeerTimeoutError (cause: undici ConnectTimeoutError) and the get loads locally', async () => {
    const port = await stuckPeer()
    const local = createServer()
    await new Promise<void>((resolve) => local.listen(0, '127.0.0.1', resolve))
    cleanups.push(() => new Promise<void>((resolve) => local.close(() => resolve())))
    const self = serverUrl(local)
    const stuck = `http://127.0.0.1:${port}`
    // The overall deadline is long: only the connect timeout can end the request first.
    const cache = new Peercache({ self, peers: [self, stuck], coalesce: false, transport: { connectTimeoutMs: 300, timeoutMs: 15_000 } })
    cleanups.push(() => cache.close())
    const group = cache.group({ name: 'g', cacheBytes: 1 << 20, load: (key) => `local:${key}` })
    const errors: Array<PeercacheEvents['peer-error']> = []
    cache.events.on('peer-error', (e) => errors.push(e))
    let key = ''
    for (let i = 0; key === ''; i++) if (cache.ownerOf(`k${i}`) === stuck) key = `k${i}`

    const value = await group.get(key)
    expect(Buffer.from(value).toString()).toBe(`local:${key}`)
    expect(errors).toHaveLength(1)
    const error = errors[0]?.error
    expect(error).toBeInstanceOf(PeerTimeoutError)
    expect((error as PeerTimeoutError).cause).toBeInstanceOf(undiciErrors.ConnectTimeoutError)
    expect(group.stats().peerErrors).toBe(1)
  })
})
