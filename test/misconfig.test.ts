/**
 * misconfig: each misconfiguration a newcomer meets in the first hour is
 * refused (or reported) with a message that says what to change — one test
 * per row of the table that is refused up front; the rows reported
 * at run time are test/logger.test.ts and test/integration/handshake.test.ts.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigError, LoadError, Peercache } from '../src/index.js'
import { deriveSelf } from '../src/discovery/self.js'
import { thrownMessage } from './helpers/core-helpers.js'

/** refusal returns the ConfigError message fn throws (and fails the test if it throws anything else). */
function refusal(fn: () => unknown): string {
  return thrownMessage(fn, ConfigError)
}

describe('self written another way than in the list', () => {
  it('says peers are compared as written, and suggests the entry with the same port', () => {
    const message = refusal(() => new Peercache({ env: {}, self: 'http://localhost:4001', peers: ['http://127.0.0.1:4001', 'http://127.0.0.1:4002'] }))
    expect(message).toBe(
      'self http://localhost:4001 is not in the peer list from options [http://127.0.0.1:4001, http://127.0.0.1:4002]: ' +
        'peers are compared as written; write self exactly as in the list (did you mean http://127.0.0.1:4001?)',
    )
  })

  it('suggests nothing when no entry has its port, and shortens a long list', () => {
    const peers = Array.from({ length: 8 }, (_, i) => `http://10.0.0.${i + 1}:80`)
    const message = refusal(() => new Peercache({ env: { PEERCACHE_SELF: 'http://10.0.0.9:8080', PEERCACHE_PEERS: peers.join(',') } }))
    expect(message).toContain('from environment [http://10.0.0.1:80, http://10.0.0.2:80, http://10.0.0.3:80, http://10.0.0.4:80, http://10.0.0.5:80, … (8 peers)]')
    expect(message).not.toContain('did you mean')
  })
})

describe('a cluster mixing http:// and https://', () => {
  it('is refused in peers, naming the peer and what to change', () => {
    const message = refusal(() => new Peercache({ env: {}, self: 'https://10.0.0.1:8443', peers: ['https://10.0.0.1:8443', 'http://10.0.0.2:8080'] }))
    expect(message).toBe(
      'peer http://10.0.0.2:8080 in options is http:// but self https://10.0.0.1:8443 is https://: a mixed cluster cannot talk ' +
        "(one side would speak TLS to a plain port); write every peer with https://, or change self's scheme (and server.tls) to match theirs",
    )
  })

  it('is refused by setPeers, the reverse way too, and the old list stays', async () => {
    const cache = new Peercache({ env: {}, self: 'http://10.0.0.1:8080', peers: ['http://10.0.0.1:8080'] })
    expect(refusal(() => cache.setPeers(['http://10.0.0.1:8080', 'https://10.0.0.2:8443']))).toMatch(/^peer https:\/\/10\.0\.0\.2:8443 in setPeers is https:\/\/ but self http:\/\/10\.0\.0\.1:8080 is http:\/\//)
    expect(cache.peers).toEqual(['http://10.0.0.1:8080'])
    await cache.close()
  })

  it('is refused from a discovery answer, logged, and the last good list kept', async () => {
    const warns: Array<{ message: string; err: unknown }> = []
    const noop = (): void => {}
    const logger = { debug: noop, info: noop, error: noop, warn: (fields: Record<string, unknown>, message = '') => void warns.push({ message, err: fields.err }) }
    const cache = new Peercache({ env: {}, self: 'http://127.0.0.1:1', logger, discovery: { lookup: () => ['http://127.0.0.1:1', 'https://127.0.0.1:2'], intervalMs: 60_000 } })
    for (let waited = 0; warns.length === 0 && waited < 5000; waited += 25) await new Promise((resolve) => setTimeout(resolve, 25))
    expect(warns[0]?.message).toBe('peer discovery failed; keeping the last good peer list')
    expect(String(warns[0]?.err)).toMatch(/peer https:\/\/127\.0\.0\.1:2 in discovery lookup function is https:\/\/ but self http:\/\/127\.0\.0\.1:1 is http:\/\/: a mixed cluster cannot talk/)
    expect(cache.peers).not.toContain('https://127.0.0.1:2')
    await cache.close()
  })
})

describe('listen() whose server would not speak self’s scheme', () => {
  it('refuses an https self without server.tls', async () => {
    const cache = new Peercache({ env: {}, self: 'https://127.0.0.1:8443', peers: ['https://127.0.0.1:8443'] })
    await expect(cache.listen(0, '127.0.0.1')).rejects.toThrow(
      'self https://127.0.0.1:8443 is https:// but server.tls is not set: listen() would serve plain http; give server.tls { key, cert }, or write self (and every peer) with http://',
    )
    await cache.close()
  })

  it('refuses an http self with server.tls', async () => {
    const cache = new Peercache({ env: {}, self: 'http://127.0.0.1:8080', peers: ['http://127.0.0.1:8080'], server: { tls: { key: 'k', cert: 'c' } } })
    await expect(cache.listen(0, '127.0.0.1')).rejects.toBeInstanceOf(ConfigError)
    await cache.close()
  })
})

describe('discovery that cannot name this process', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'peercache-misconfig-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('says a HOSTNAME that maps only to loopback was skipped, and to set PEERCACHE_SELF or POD_IP', async () => {
    const hostsFile = join(dir, 'hosts')
    // A Debian VM's hosts file: the machine's name on 127.0.1.1.
    await writeFile(hostsFile, '127.0.0.1 localhost\n127.0.1.1 vm-1.example vm-1\n::1 localhost ip6-localhost\n')
    const message = refusal(() => deriveSelf({ env: { HOSTNAME: 'vm-1' }, port: 8080, protocol: 'http', hostsFile }))
    expect(message).toBe(
      `discovery cannot name this process: HOSTNAME vm-1 maps only to loopback (127.0.1.1) in ${hostsFile}, which other peers cannot reach, ` +
        "so it was skipped: set PEERCACHE_SELF (e.g. http://10.0.0.5:8080) or POD_IP to this machine's address",
    )
  })

  it('says the function form needs self: it has no port to derive one from', () => {
    const expected = 'the function form of discovery needs `self` (or PEERCACHE_SELF): it has no port to derive one from'
    expect(refusal(() => new Peercache({ env: { POD_IP: '10.0.0.7' }, discovery: () => [] }))).toBe(expected)
    expect(refusal(() => new Peercache({ env: { POD_IP: '10.0.0.7' }, discovery: { lookup: () => [] } }))).toBe(expected)
  })
})

describe('a loader returning an object in an untyped group', () => {
  it.each([
    ['{ value: 42 }', { value: 42 }],
    ['a plain object', { id: 1, name: 'x' }],
  ])('rejects %s with a LoadError pointing to a codec', async (_name, returned) => {
    const cache = new Peercache({ env: {} })
    const group = cache.group({ name: 'g', cacheBytes: 1 << 20, load: () => returned as never })
    const err = await group.get('k').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(LoadError)
    expect((err as LoadError).message).toMatch(/not a string or Uint8Array: return bytes, a string or \{ value, ttl \}, or give the group a codec \(codec: codecs\.json\(\)\)/)
    await cache.close()
  })
})
