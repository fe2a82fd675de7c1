import { createHash, createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { AUTH_HEADER, PeerAuth, parseSecrets } from '../src/auth.js'
import { AuthError, InvalidArgumentError } from '../src/errors.js'

const SECRET = 'test-secret-0123456789'
const OLD = 'old-secret-0123456789'
const NEW = 'new-secret-0123456789'
const T = 1_700_000_000
const T_MS = T * 1000
const PATH = '/_groupcache/users/a%2Fb?x=1'
const BODY = new TextEncoder().encode('{"v":"hello"}')

/** A PeerAuth whose clock reads `ms`. */
function authAt(ms: number, secrets: readonly string[] = [SECRET], windowMs?: number): PeerAuth {
  return new PeerAuth({ secrets, now: () => ms, ...(windowMs === undefined ? {} : { windowMs }) })
}

/** Runs fn and returns the AuthError reason it threw; fails the test on any other outcome. */
function reasonOf(fn: () => void): string {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(AuthError)
    const message = (err as AuthError).message
    expect(message).toMatch(/^peer authentication failed: /)
    expect((err as AuthError).code).toBe('ERR_PEERCACHE_AUTH')
    return message.replace('peer authentication failed: ', '')
  }
  throw new Error('expected verify to throw')
}

/** The signature computed straight from the contract, independently of src/auth.ts. */
function expectedHeader(secret: string, method: string, path: string, t: number, body: Uint8Array): string {
  const bodyDigest = createHash('sha256').update(body).digest('hex')
  const mac = createHmac('sha256', secret).update(`${method}\n${path}\n${t}\n${bodyDigest}`).digest('hex')
  return `Peercache t=${t},s=${mac}`
}

describe('AUTH_HEADER', () => {
  it('is the lowercase node:http name', () => {
    expect(AUTH_HEADER).toBe('authorization')
  })
})

describe('PeerAuth round trip', () => {
  it('verifies what it signs, with and without a body', () => {
    const auth = new PeerAuth({ secrets: [SECRET] })
    expect(() => auth.verify(auth.sign('GET', '/_groupcache/g/k'), 'GET', '/_groupcache/g/k')).not.toThrow()
    expect(() => auth.verify(auth.sign('PUT', PATH, BODY), 'PUT', PATH, BODY)).not.toThrow()
    const batch = '/_peercache/batch/g'
    expect(() => auth.verify(auth.sign('POST', batch, BODY), 'POST', batch, BODY)).not.toThrow()
  })

  it('treats a missing body and an empty body the same', () => {
    const auth = authAt(T_MS)
    const empty = new Uint8Array(0)
    expect(auth.sign('GET', PATH)).toBe(auth.sign('GET', PATH, empty))
    expect(() => auth.verify(auth.sign('GET', PATH), 'GET', PATH, empty)).not.toThrow()
  })

  it('accepts a header given as a one-element array', () => {
    const auth = authAt(T_MS)
    expect(() => auth.verify([auth.sign('GET', PATH)], 'GET', PATH)).not.toThrow()
  })

  it('accepts spaces after the comma', () => {
    const auth = authAt(T_MS)
    const spaced = auth.sign('GET', PATH).replace(',s=', ',  s=')
    expect(() => auth.verify(spaced, 'GET', PATH)).not.toThrow()
  })
})

describe('PeerAuth known answer', () => {
  it('matches the contract computed independently with node:crypto', () => {
    const auth = authAt(T_MS + 999) // t is whole seconds, truncated
    expect(auth.sign('PUT', PATH, BODY)).toBe(expectedHeader(SECRET, 'PUT', PATH, T, BODY))
    expect(auth.sign('GET', '/_groupcache/g/k')).toBe(expectedHeader(SECRET, 'GET', '/_groupcache/g/k', T, new Uint8Array(0)))
  })

  it('matches fixed vectors computed with openssl', () => {
    const auth = authAt(T_MS)
    expect(auth.sign('PUT', PATH, BODY)).toBe(
      'Peercache t=1700000000,s=8be911b47be44549dc9123a486b5d74f81876195be3b1fabb0169a2800fdb486',
    )
    expect(auth.sign('GET', '/_groupcache/g/k')).toBe(
      'Peercache t=1700000000,s=6921eac7ee3a687a4f7e554473f2e3226c6a1047102ae0877c38b973cd28c2f9',
    )
  })

  it('verifies a header produced outside PeerAuth', () => {
    const header = expectedHeader(SECRET, 'DELETE', PATH, T, new Uint8Array(0))
    expect(() => authAt(T_MS).verify(header, 'DELETE', PATH)).not.toThrow()
  })
})

describe('PeerAuth secrets', () => {
  it('rejects a wrong secret as a bad signature', () => {
    const header = authAt(T_MS, ['some-other-secret-xyz']).sign('GET', PATH)
    expect(reasonOf(() => authAt(T_MS).verify(header, 'GET', PATH))).toBe('bad signature')
  })

  it('accepts an old secret while rotating', () => {
    const header = authAt(T_MS, [OLD]).sign('GET', PATH)
    expect(() => authAt(T_MS, [NEW, OLD]).verify(header, 'GET', PATH)).not.toThrow()
  })

  it('signs with the first secret', () => {
    const header = authAt(T_MS, [NEW, OLD]).sign('PUT', PATH, BODY)
    expect(header).toBe(expectedHeader(NEW, 'PUT', PATH, T, BODY))
    expect(() => authAt(T_MS, [NEW]).verify(header, 'PUT', PATH, BODY)).not.toThrow()
    expect(reasonOf(() => authAt(T_MS, [OLD]).verify(header, 'PUT', PATH, BODY))).toBe('bad signature')
  })
})

describe('PeerAuth window', () => {
  const header = authAt(T_MS).sign('GET', PATH)

  it('accepts exactly 30 s of skew either way', () => {
    expect(() => authAt(T_MS + 30_000).verify(header, 'GET', PATH)).not.toThrow()
    expect(() => authAt(T_MS - 30_000).verify(header, 'GET', PATH)).not.toThrow()
  })

  it('rejects 31 s of skew either way as stale', () => {
    expect(reasonOf(() => authAt(T_MS + 31_000).verify(header, 'GET', PATH))).toBe('stale')
    expect(reasonOf(() => authAt(T_MS - 31_000).verify(header, 'GET', PATH))).toBe('stale')
  })

  it('honours a custom window', () => {
    expect(() => authAt(T_MS + 5_000, [SECRET], 5_000).verify(header, 'GET', PATH)).not.toThrow()
    expect(reasonOf(() => authAt(T_MS + 6_000, [SECRET], 5_000).verify(header, 'GET', PATH))).toBe('stale')
  })

  it('rejects t = 0 and far-future t as stale, not as an error', () => {
    const mac = 'a'.repeat(64)
    expect(reasonOf(() => authAt(T_MS).verify(`Peercache t=0,s=${mac}`, 'GET', PATH))).toBe('stale')
    expect(reasonOf(() => authAt(T_MS).verify(`Peercache t=9007199254740991,s=${mac}`, 'GET', PATH))).toBe('stale')
  })
})

describe('PeerAuth tampering', () => {
  const auth = authAt(T_MS)
  const header = auth.sign('PUT', PATH, BODY)

  it('rejects another method (a signed GET is not a PUT)', () => {
    expect(reasonOf(() => auth.verify(header, 'DELETE', PATH, BODY))).toBe('bad signature')
    const get = auth.sign('GET', PATH)
    expect(reasonOf(() => auth.verify(get, 'PUT', PATH, BODY))).toBe('bad signature')
    expect(reasonOf(() => auth.verify(get, 'PUT', PATH))).toBe('bad signature')
  })

  it('rejects another path, including another encoding of the same key', () => {
    expect(reasonOf(() => auth.verify(header, 'PUT', '/_groupcache/users/other', BODY))).toBe('bad signature')
    expect(reasonOf(() => auth.verify(header, 'PUT', '/_groupcache/users/a/b?x=1', BODY))).toBe('bad signature')
    expect(reasonOf(() => auth.verify(header, 'PUT', '/_groupcache/users/a%2Fb', BODY))).toBe('bad signature')
  })

  it('rejects another body', () => {
    const other = new TextEncoder().encode('{"v":"HELLO"}')
    expect(reasonOf(() => auth.verify(header, 'PUT', PATH, other))).toBe('bad signature')
    expect(reasonOf(() => auth.verify(header, 'PUT', PATH))).toBe('bad signature')
  })

  it('rejects another t inside the window', () => {
    const moved = header.replace(`t=${T}`, `t=${T + 1}`)
    expect(moved).not.toBe(header)
    expect(reasonOf(() => auth.verify(moved, 'PUT', PATH, BODY))).toBe('bad signature')
  })

  it('rejects a flipped signature digit', () => {
    const last = header.at(-1) === '0' ? '1' : '0'
    expect(reasonOf(() => auth.verify(header.slice(0, -1) + last, 'PUT', PATH, BODY))).toBe('bad signature')
  })
})

describe('PeerAuth malformed headers', () => {
  const auth = authAt(T_MS)
  const good = auth.sign('GET', PATH)
  const mac = good.slice(good.indexOf('s=') + 2)
  const check = (header: unknown): string =>
    reasonOf(() => auth.verify(header as string | string[] | undefined, 'GET', PATH))

  it('reports a missing header', () => {
    expect(check(undefined)).toBe('missing')
    expect(check('')).toBe('missing')
    expect(check([])).toBe('missing')
  })

  it.each([
    ['another scheme', `Bearer ${mac}`],
    ['lowercase scheme', good.replace('Peercache', 'peercache')],
    ['scheme only', 'Peercache'],
    ['no space after scheme', good.replace('Peercache ', 'Peercache')],
    ['uppercase hex (the signer only emits lowercase)', `Peercache t=${T},s=${mac.toUpperCase()}`],
    ['non-hex signature', `Peercache t=${T},s=${'g'.repeat(64)}`],
    ['short signature', `Peercache t=${T},s=${mac.slice(2)}`],
    ['long signature', `Peercache t=${T},s=${mac}00`],
    ['non-numeric t', `Peercache t=abc,s=${mac}`],
    ['negative t', `Peercache t=-1,s=${mac}`],
    ['fractional t', `Peercache t=1.5,s=${mac}`],
    ['t beyond a safe integer', `Peercache t=9999999999999999,s=${mac}`],
    ['t too long', `Peercache t=${'1'.repeat(40)},s=${mac}`],
    ['fields swapped', `Peercache s=${mac},t=${T}`],
    ['missing t', `Peercache s=${mac}`],
    ['missing s', `Peercache t=${T}`],
    ['trailing garbage', `${good},x=1`],
    ['newline inside', good.replace(',', ',\n')],
    ['10 kB header', `${good}${' '.repeat(10_000)}`],
    ['10 kB of junk', 'x'.repeat(10_240)],
  ])('rejects %s as malformed', (_name, header) => {
    expect(check(header)).toBe('malformed')
  })

  it('rejects an array of two headers, even two valid ones', () => {
    expect(check([good, good])).toBe('malformed')
  })

  it('rejects non-string values from untyped callers as malformed', () => {
    expect(check(42)).toBe('malformed')
    expect(check({})).toBe('malformed')
    expect(check([42])).toBe('malformed')
    expect(check(null)).toBe('missing')
  })
})

describe('PeerAuth constructor', () => {
  it.each([
    ['no secrets', { secrets: [] }],
    ['an empty secret', { secrets: [''] }],
    ['a non-string secret', { secrets: [42] }],
    ['secrets not an array', { secrets: 'abc' }],
    ['missing secrets', {}],
    ['a negative window', { secrets: [SECRET], windowMs: -1 }],
    ['a NaN window', { secrets: [SECRET], windowMs: Number.NaN }],
    ['an infinite window', { secrets: [SECRET], windowMs: Number.POSITIVE_INFINITY }],
    ['a string window', { secrets: [SECRET], windowMs: '30000' }],
    ['a clock that is not a function', { secrets: [SECRET], now: 5 }],
  ])('throws InvalidArgumentError on %s', (_name, options) => {
    expect(() => new PeerAuth(options as never)).toThrow(InvalidArgumentError)
  })

  it('throws InvalidArgumentError on no options', () => {
    expect(() => new PeerAuth(undefined as never)).toThrow(InvalidArgumentError)
  })

  it('accepts a zero window (same second only)', () => {
    const auth = authAt(T_MS + 500, [SECRET], 0)
    expect(() => auth.verify(auth.sign('GET', PATH), 'GET', PATH)).not.toThrow()
    expect(reasonOf(() => authAt(T_MS + 1_000, [SECRET], 0).verify(auth.sign('GET', PATH), 'GET', PATH))).toBe('stale')
  })
})

describe('parseSecrets', () => {
  it('returns undefined for nothing', () => {
    expect(parseSecrets(undefined)).toBeUndefined()
    expect(parseSecrets('')).toBeUndefined()
    expect(parseSecrets(' , ,')).toBeUndefined()
    expect(parseSecrets([])).toBeUndefined()
    expect(parseSecrets(['', '  '])).toBeUndefined()
  })

  it('splits an env-style list, trimming blanks', () => {
    expect(parseSecrets('abc')).toEqual(['abc'])
    expect(parseSecrets('new, old')).toEqual(['new', 'old'])
    expect(parseSecrets(' new ,, old ,')).toEqual(['new', 'old'])
  })

  it('keeps an array as a list (no comma split), trimmed, and returns a copy', () => {
    const input = [' a,b ', 'c', '']
    const out = parseSecrets(input)
    expect(out).toEqual(['a,b', 'c'])
    expect(out).not.toBe(input)
  })

  it('throws InvalidArgumentError on a non-string entry', () => {
    expect(() => parseSecrets([42] as never)).toThrow(InvalidArgumentError)
    expect(() => parseSecrets(42 as never)).toThrow(InvalidArgumentError)
  })

  it('feeds PeerAuth', () => {
    const secrets = parseSecrets(`${NEW},${OLD}`) ?? []
    const header = authAt(T_MS, [OLD]).sign('GET', PATH)
    expect(() => authAt(T_MS, secrets).verify(header, 'GET', PATH)).not.toThrow()
  })
})
