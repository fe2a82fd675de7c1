/**
 * dns-port: a port for a test DNS server. DNS is served over UDP and TCP on
 * the same port, so the port must be free for both, and the server must be
 * able to come back on it after a pause.
 */
import { createSocket } from 'node:dgram'
import { createServer } from 'node:net'

/** freeDnsPort finds a port free for both UDP and TCP on 127.0.0.1. */
export async function freeDnsPort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = createSocket('udp4')
    const port = await new Promise<number>((resolve, reject) => {
      udp.once('error', reject)
      udp.bind(0, '127.0.0.1', () => resolve(udp.address().port))
    })
    const tcpFree = await new Promise<boolean>((resolve) => {
      const tcp = createServer()
      tcp.once('error', () => resolve(false))
      tcp.listen(port, '127.0.0.1', () => tcp.close(() => resolve(true)))
    })
    await new Promise<void>((resolve) => udp.close(() => resolve()))
    if (tcpFree) return port
  }
  throw new Error('no port free for both UDP and TCP on 127.0.0.1')
}
