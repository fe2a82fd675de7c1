/**
 * options: every option is checked where it is given. An unknown name is an
 * InvalidArgumentError that names the closest valid option, or where a
 * 0.1.0 name went; defaults resolve into the nested shape the internals use.
 */
import { describe, expect, it } from 'vitest'
import { InvalidArgumentError, Peercache, type PeercacheOptions } from '../src/index.js'
import { DEFAULTS, clientOptions, resolveOptions } from '../src/options.js'
import { editDistance } from '../src/option-names.js'
import { thrownMessage } from './helpers/core-helpers.js'

/** refusal is the message of the InvalidArgumentError that constructing a Peercache with options throws. */
function refusal(options: unknown): string {
  return thrownMessage(() => new Peercache({ env: {}, ...(options as PeercacheOptions) }), InvalidArgumentError, 'ERR_PEERCACHE_INVALID_ARGUMENT')
}

describe('unknown option names', () => {
  it.each([
    [{ timout: 10 }, 'unknown option options.timout: did you mean options.transport.timeoutMs?'],
    [{ secrets: 'x' }, 'unknown option options.secrets: did you mean options.secret?'],
    [{ peer: [] }, 'unknown option options.peer: did you mean options.peers?'],
    [{ transport: { timeout: 10 } }, 'unknown option options.transport.timeout: did you mean options.transport.timeoutMs?'],
    [{ deploy: { drain: 10 } }, 'unknown option options.deploy.drain: did you mean options.deploy.drainMs?'],
  ])('refuses %j, naming the closest valid option', (options, message) => {
    expect(refusal(options)).toBe(message)
  })

  it.each([
    ['timeout', 'transport.timeoutMs'],
    ['closeTimeout', 'deploy.closeTimeoutMs'],
    ['drainMs', 'deploy.drainMs'],
    ['serverTls', 'server.tls'],
    ['authWindowMs', 'auth.windowMs'],
    ['failureThreshold', 'health.failureThreshold'],
  ])('says where the 0.1.0 option %s went (%s)', (name, now) => {
    expect(refusal({ [name]: 1 })).toBe(`unknown option options.${name}: it is now ${now}`)
  })

  it('lists the valid options when nothing is close', () => {
    expect(refusal({ zzzzzzzzzzzzzzzzzzzz: 1 })).toMatch(/^unknown option options.zzzzzzzzzzzzzzzzzzzz: valid options are self, peers, /)
  })

  it('refuses an unknown group option, naming the closest one', () => {
    const cache = new Peercache({ env: {} })
    const group = (options: object) => () => cache.group({ name: 'g', cacheBytes: 1, load: () => 'v', ...options } as never)
    expect(group({ maxAge: 1000 })).toThrow(new InvalidArgumentError('unknown option group options.maxAge: peercache calls it group options.ttl (milliseconds)'))
    expect(group({ tll: 1000 })).toThrow(new InvalidArgumentError('unknown option group options.tll: did you mean group options.ttl?'))
    expect(group({ staleWhileRevalidat: 1 })).toThrow(/did you mean group options.staleWhileRevalidate\?/)
  })

  it('refuses a nested group that is not an object', () => {
    expect(refusal({ transport: 5 })).toBe('transport must be an object, got the number 5')
  })

  it('checks nested values with their full names', () => {
    expect(refusal({ transport: { timeoutMs: 0 } })).toMatch(/^transport.timeoutMs must be an integer from 1 to 2147483647 ms/)
    expect(refusal({ health: { probeMinMs: 500, probeMaxMs: 100 } })).toBe('health.probeMinMs (500) must not exceed health.probeMaxMs (100)')
    expect(refusal({ server: { maxConnections: 0 } })).toBe('server.maxConnections must be an integer >= 1, got 0')
    expect(refusal({ deploy: { drainMs: -1 } })).toMatch(/^deploy.drainMs must be an integer from 0/)
  })
})

describe('resolved options', () => {
  it('fills every default; the finer transport timeouts stay unset for the client to derive from timeoutMs', () => {
    const resolved = resolveOptions({ transport: { timeoutMs: 700 } })
    expect(resolved.transport).toEqual({ ...DEFAULTS.transport, timeoutMs: 700 })
    // Set, they would stand for the user's choice: the client would not lengthen a busy owner's headers timeout.
    expect(clientOptions(resolved, undefined)).not.toHaveProperty('headersTimeout')
    expect(resolved.health).toEqual(DEFAULTS.health)
    expect(resolved.server).toEqual(DEFAULTS.server)
    expect(resolved.deploy).toEqual(DEFAULTS.deploy)
    expect(resolved.basePath).toBe('/_groupcache/')
  })

  it('keeps what is given over the defaults, and ignores undefined values', () => {
    const resolved = resolveOptions({ transport: { connectTimeoutMs: 50, headersTimeoutMs: undefined } as never, deploy: { drainMs: 10 } })
    expect(resolved.transport.connectTimeoutMs).toBe(50)
    expect(resolved.transport.headersTimeoutMs).toBeUndefined()
    expect(clientOptions(resolved, undefined)).toMatchObject({ connectTimeout: 50, timeout: DEFAULTS.transport.timeoutMs })
    expect(resolved.deploy).toEqual({ ...DEFAULTS.deploy, drainMs: 10 })
  })
})

describe('editDistance', () => {
  it('is the Levenshtein distance', () => {
    expect(editDistance('', '')).toBe(0)
    expect(editDistance('timout', 'timeout')).toBe(1)
    expect(editDistance('kitten', 'sitting')).toBe(3)
    expect(editDistance('abc', '')).toBe(3)
  })
})
