/**
 * Discovery without a network: the env form, self derivation, option
 * conflicts, and the refresh loop's rules (keep the last good list, log once
 * per failure streak, never overlap, stop on close) driven by lookup
 * functions the test controls.
 */
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ConfigError, Peercache, type PeercacheEvents } from '../src/index.js'
import { discoveryFromEnv } from '../src/discovery/env.js'
import { addressInHosts, deriveSelf } from '../src/discovery/self.js'
import { waitForPeers } from './helpers/dns-cluster.js'
import { recordingLogger } from './helpers/recording-logger.js'

const SELF = 'http://10.0.0.1:8080'
const A = 'http://10.0.0.2:8080'
const B = 'http://10.0.0.3:8080'

let caches: Peercache[] = []
afterEach(async () => {
  await Promise.all(caches.map((cache) => cache.close()))
  caches = []
})

function make(options: ConstructorParameters<typeof Peercache>[0]): Peercache {
  const cache = new Peercache({ env: {}, ...options })
  caches.push(cache)
  return cache
}

/** until polls a condition on each macrotask turn (bounded), for state that has no event of its own. */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !check(); i++) await new Promise((resolve) => setImmediate(resolve))
  expect(check()).toBe(true)
}

/** Answers is a lookup the test scripts: each call takes the next step (a list, an error, or a promise). */
function scripted(steps: Array<readonly string[] | Error | ((context: { signal: AbortSignal }) => Promise<readonly string[]>)>) {
  const calls = { count: 0, waiters: [] as Array<{ n: number; resolve: () => void }> }
  const lookup = (context: { signal: AbortSignal }): Promise<readonly string[]> => {
    const step = steps[Math.min(calls.count, steps.length - 1)]!
    calls.count++
    for (const w of calls.waiters.filter((w) => calls.count >= w.n)) w.resolve()
    if (step instanceof Error) return Promise.reject(step)
    if (typeof step === 'function') return step(context)
    return Promise.resolve(step)
  }
  const called = (n: number): Promise<void> => (calls.count >= n ? Promise.resolve() : new Promise((resolve) => calls.waiters.push({ n, resolve })))
  return { lookup, calls, called }
}

describe('discovery env', () => {
  it('reads PEERCACHE_DNS=name:port and PEERCACHE_DNS_SRV=name', () => {
    expect(discoveryFromEnv({ PEERCACHE_DNS: 'peercache.default.svc.cluster.local:8080' })).toEqual({ dns: 'peercache.default.svc.cluster.local', port: 8080 })
    expect(discoveryFromEnv({ PEERCACHE_DNS_SRV: '_peercache._tcp.x.svc' })).toEqual({ dns: '_peercache._tcp.x.svc', srv: true })
    expect(discoveryFromEnv({})).toBeUndefined()
  })

  it.each(['name', 'name:', ':8080', 'name:0', 'name:70000', 'name:http'])('rejects PEERCACHE_DNS=%s', (value) => {
    expect(() => discoveryFromEnv({ PEERCACHE_DNS: value })).toThrow(ConfigError)
  })

  it('rejects both PEERCACHE_DNS and PEERCACHE_DNS_SRV', () => {
    expect(() => discoveryFromEnv({ PEERCACHE_DNS: 'a:1', PEERCACHE_DNS_SRV: 'b' })).toThrow(ConfigError)
  })
})

describe('self derivation', () => {
  it('prefers PEERCACHE_SELF, then POD_IP, then HOSTNAME in the hosts file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'peercache-hosts-'))
    const hostsFile = join(dir, 'hosts')
    await writeFile(hostsFile, '127.0.0.1 localhost\n# comment\n127.0.1.1 web-1\n172.18.0.3 web-1 web\nfe80::1 other\n')
    expect(deriveSelf({ env: { PEERCACHE_SELF: SELF, POD_IP: '10.9.9.9' }, port: 1, protocol: 'http' })).toBe(SELF)
    expect(deriveSelf({ env: { POD_IP: '10.0.0.7', HOSTNAME: 'web-1' }, port: 8080, protocol: 'http', hostsFile })).toBe('http://10.0.0.7:8080')
    expect(deriveSelf({ env: { POD_IP: 'fd00::7' }, port: 8080, protocol: 'https' })).toBe('https://[fd00::7]:8080')
    expect(deriveSelf({ env: { HOSTNAME: 'web-1' }, port: 8080, protocol: 'http', hostsFile })).toBe('http://172.18.0.3:8080')
    expect(() => deriveSelf({ env: { HOSTNAME: 'nowhere' }, port: 8080, protocol: 'http', hostsFile })).toThrow(ConfigError)
    expect(() => deriveSelf({ env: { POD_IP: '10.0.0.7' }, port: undefined, protocol: 'http' })).toThrow(ConfigError)
  })

  it('addressInHosts skips loopback addresses and comments', () => {
    expect(addressInHosts('127.0.1.1 h\n::1 h\n10.1.1.1 x h # h\n', 'h')).toBe('10.1.1.1')
    expect(addressInHosts('# 10.1.1.1 h\n', 'h')).toBeUndefined()
  })

  it('a Peercache with DNS discovery takes self from POD_IP and the port', () => {
    const cache = make({ env: { POD_IP: '10.0.0.1' }, discovery: { dns: 'peers.invalid', port: 8080, servers: ['127.0.0.1:9'], intervalMs: 60_000 } })
    expect(cache.self).toBe(SELF)
  })
})

describe('discovery options', () => {
  it('refuses peers and discovery together, and bad shapes', () => {
    expect(() => make({ self: SELF, peers: [SELF], discovery: () => [SELF] })).toThrow(ConfigError)
    expect(() => make({ self: SELF, discovery: { dns: '', port: 1 } })).toThrow(ConfigError)
    expect(() => make({ self: SELF, discovery: { dns: 'x', port: 0 } })).toThrow(ConfigError)
    expect(() => make({ self: SELF, discovery: { dns: 'x' } })).toThrow(ConfigError)
    expect(() => make({ self: SELF, discovery: { lookup: 'no' as never } })).toThrow(ConfigError)
    expect(() => make({ self: SELF, discovery: { lookup: () => [], intervalMs: 0 } })).toThrow()
  })

  it('static PEERCACHE_PEERS wins over PEERCACHE_DNS only when peers is given as an option', () => {
    const cache = make({ env: { PEERCACHE_DNS: 'peers.invalid:8080', POD_IP: '10.0.0.1' } })
    expect(cache.self).toBe(SELF)
    const fixed = make({ env: { PEERCACHE_DNS: 'peers.invalid:8080' }, self: SELF, peers: [SELF, A] })
    expect(fixed.peers).toEqual([SELF, A])
  })
})

describe('the refresh loop', () => {
  it('applies a changed answer through the setPeers path and emits peers-changed once per change', async () => {
    const script = scripted([[SELF, A], [A, SELF], [SELF, A, B]])
    const cache = make({ self: SELF, discovery: { lookup: script.lookup, intervalMs: 1 } })
    const events: Array<PeercacheEvents['peers-changed']> = []
    cache.events.on('peers-changed', (e) => events.push(e))
    await waitForPeers(cache, [SELF, A, B])
    expect(events).toEqual([
      { added: [SELF, A], removed: [], peers: [SELF, A] },
      { added: [B], removed: [], peers: [SELF, A, B] },
    ])
    cache.setPeers([SELF])
    expect(events.at(-1)).toEqual({ added: [], removed: [A, B], peers: [SELF] })
  })

  it('keeps the last good list on a failure, an empty answer, an invalid URL or a timeout, and logs once per streak', async () => {
    // A lookup that answers only when its deadline aborts it: a timeout.
    const slow = ({ signal }: { signal: AbortSignal }): Promise<readonly string[]> =>
      new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)))
    const script = scripted([[SELF, A], new Error('SERVFAIL'), [], ['ftp://x'], ['not a url'], slow, [SELF, A, B]])
    const { warns, infos, logger } = recordingLogger()
    const cache = make({ self: SELF, logger, discovery: { lookup: script.lookup, intervalMs: 1, timeoutMs: 20 } })
    await waitForPeers(cache, [SELF, A])
    await script.called(6)
    expect(cache.peers).toEqual([SELF, A])
    await waitForPeers(cache, [SELF, A, B])
    expect(warns.filter((m) => m.includes('discovery failed'))).toHaveLength(1)
    expect(infos.filter((m) => m.includes('answers again'))).toHaveLength(1)
  })

  it('never overlaps: a lookup that ignores its signal delays the next one until it settles', async () => {
    const releases: Array<(peers: readonly string[]) => void> = []
    let running = 0
    let most = 0
    const hang = (): Promise<readonly string[]> => {
      running++
      most = Math.max(most, running)
      return new Promise<readonly string[]>((resolve) => releases.push(resolve)).finally(() => running--)
    }
    const script = scripted([[SELF], hang])
    const { warns, logger } = recordingLogger()
    const cache = make({ self: SELF, logger, discovery: { lookup: script.lookup, intervalMs: 1, timeoutMs: 5 } })
    await script.called(2)
    await until(() => warns.length === 1)
    // No event marks "a tick started nothing": give the 1 ms ticks a bounded chance to misbehave.
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(script.calls.count).toBe(2)
    releases[0]!([SELF, B])
    await script.called(3)
    expect(most).toBe(1)
    expect(cache.peers).toEqual([SELF]) // the answer that arrived after its deadline did not count
  })

  it('a process the answer leaves out owns nothing but still asks its peers', async () => {
    const cache = make({ self: SELF, discovery: { lookup: () => [A, B], intervalMs: 60_000 } })
    await waitForPeers(cache, [A, B])
    for (let i = 0; i < 50; i++) expect(cache.ownerOf(`k-${i}`)).toMatch(/^http:\/\/10\.0\.0\.[23]:8080$/)
  })

  it('close() stops the loop and is idempotent', async () => {
    const script = scripted([[SELF]])
    const cache = make({ self: SELF, discovery: { lookup: script.lookup, intervalMs: 1 } })
    await script.called(3)
    await Promise.all([cache.close(), cache.close()])
    const count = script.calls.count
    // Closing cleared the timer: another round of timers passes without a call.
    await new Promise((resolve) => setImmediate(resolve))
    await new Promise((resolve) => setTimeout(resolve, 5))
    expect(script.calls.count).toBe(count)
  })
})
