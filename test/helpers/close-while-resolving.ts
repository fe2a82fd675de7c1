/**
 * close-while-resolving: a process whose Peercache discovers its peers
 * through a DNS server that never answers (DNS_SERVER, a UDP socket the test
 * holds), and that calls `cache.close()` while a refresh waits on it; for
 * test/integration/dns-misbehaving.test.ts.
 *
 *   DNS_SERVER=127.0.0.1:NNNN node --import tsx test/helpers/close-while-resolving.ts
 *
 * The test ends the child's stdin once its silent server received a query:
 * the child then closes the cache and prints, one line each, `CLOSED` and
 * `RESOURCES <json>`: what still keeps the event loop alive after close()
 * resolved (process.getActiveResourcesInfo(), one turn of the loop later, when
 * closed handles are gone). It does nothing else: anything close() left
 * running keeps the process alive, and shows in that list.
 */
import { Peercache } from '../../src/index.js'

const write = (line: string): boolean => process.stdout.write(`${line}\n`)
const cache = new Peercache({
  env: {},
  self: 'http://127.0.0.1:1',
  discovery: { dns: 'silent.test', port: 8080, servers: [process.env.DNS_SERVER ?? ''], intervalMs: 50 },
})
process.stdin.resume()
await new Promise((resolve) => process.stdin.once('end', resolve))
await cache.close()
write('CLOSED')
await new Promise((resolve) => setImmediate(resolve))
write(`RESOURCES ${JSON.stringify(process.getActiveResourcesInfo())}`)
