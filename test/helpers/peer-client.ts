/**
 * peer-client: an HttpPeer (the asking side's client) made the way a
 * Peercache makes one, for tests that speak to one peer directly (the
 * answer's minute_qps, a Go peer's bare answer). Close it with close().
 */
import { HttpPeer } from '../../src/peers/client.js'

/** peerClient returns a client of the peer at url with the default transport options (no auth). */
export function peerClient(url: string): HttpPeer {
  const listener = { down: () => {}, up: () => {} }
  return new HttpPeer(url, { basePath: '/_groupcache/', timeout: 2000, maxResponseBytes: 64 * 1024 * 1024 }, listener, Math.random)
}
