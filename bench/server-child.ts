/**
 * server-child: the far side of the network benchmarks, run in its own
 * process so client and server do not share an event loop. Mode `raw` is a
 * plain node:http server answering every request with the same 100 bytes
 * (the baseline); mode `peercache` is a Peercache that owns every key and
 * serves them over its peer endpoint (its loader is synchronous); mode
 * `replay` answers every request with one recorded answer (a body in base64
 * and its headers as JSON, argv 3 and 4): a peer endpoint's answer to a
 * cached key, so a bare server sends the same bytes and headers. Prints
 * `URL <base>` when listening, answers a `cpu` line on stdin with its CPU
 * time (`CPU <µs>`), and exits when its stdin closes (the parent is gone).
 */
import { createServer } from 'node:http'
import { Peercache, serverUrl } from '../dist/index.js'

const mode = process.argv[2] ?? 'raw'
const valueBytes = mode === 'replay' ? 0 : Number(process.argv[3] ?? 100)
const value = new Uint8Array(valueBytes).fill(120)

async function main(): Promise<void> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = serverUrl(server)
  if (mode === 'replay') {
    const body = Buffer.from(process.argv[3] ?? '', 'base64')
    const headers = Object.entries(JSON.parse(process.argv[4] ?? '{}') as Record<string, string>)
    server.on('request', (_req, res) => {
      for (const [name, headerValue] of headers) res.setHeader(name, headerValue)
      res.setHeader('Content-Length', body.byteLength)
      res.end(body)
    })
  } else if (mode === 'raw') {
    server.on('request', (_req, res) => {
      res.setHeader('Content-Type', 'application/octet-stream')
      res.setHeader('Content-Length', value.byteLength)
      res.end(value)
    })
  } else {
    const cache = new Peercache({ self: url, peers: [url] })
    cache.group({ name: 'bench', cacheBytes: 64 << 20, load: () => value })
    server.on('request', cache.handler())
  }
  process.stdout.write(`URL ${url}\n`)
  // Each `cpu` line on stdin is answered with this process's CPU time so far (user + system, µs).
  process.stdin.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() !== 'cpu') continue
      const { user, system } = process.cpuUsage()
      process.stdout.write(`CPU ${user + system}\n`)
    }
  })
  process.stdin.on('end', () => process.exit(0))
  process.stdin.resume()
}

void main()
