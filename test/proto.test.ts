import { readFileSync } from 'node:fs'
import protobuf from 'protobufjs'
import { describe, expect, it } from 'vitest'
import { InvalidArgumentError } from '../src/errors.js'
import {
  MAX_BATCH_KEYS,
  PROTO_SCHEMA,
  decodeBatchRequest,
  decodeBatchResponse,
  decodeGetResponse,
  decodeSetRequest,
  encodeBatchRequest,
  encodeBatchResponse,
  encodeGetResponse,
  encodeSetRequest,
  msToUnixNanos,
  unixNanosToMs,
  type BatchEntryMessage,
} from '../src/proto/codec.js'
import { decodePercent, parsePeerPath, parsePeerQuery, peerQuery } from '../src/proto/paths.js'
import { mulberry32 } from './helpers/core-helpers.js'

interface GetResponseVector {
  case: string
  value: string
  expireUnixNanos?: string
  hex: string
}

const vectors = JSON.parse(
  readFileSync(new URL('./fixtures/wire-golang.json', import.meta.url), 'utf8'),
) as { getResponse: GetResponseVector[] }

/** Vectors we only decode: mailgun writes expire 0, we omit it. */
const DECODE_ONLY = new Set(['mailgun v2 server: expire always written, 0 = no expiry'])

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const fromHex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'))
const expiresAtOf = (v: GetResponseVector): number =>
  v.expireUnixNanos === undefined ? 0 : unixNanosToMs(BigInt(v.expireUnixNanos))

/** A seeded PRNG, so the random cases are reproducible. */
const prng = mulberry32

function randomBytes(next: () => number, maxLen: number): Uint8Array {
  const out = new Uint8Array(Math.floor(next() * (maxLen + 1)))
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(next() * 256)
  return out
}

/** Returns the error a call throws, or undefined when it succeeds. */
function thrown(fn: () => unknown): unknown {
  try {
    fn()
    return undefined
  } catch (err) {
    return err
  }
}

describe('embedded schema', () => {
  it('matches src/proto/groupcache.proto', () => {
    const file = readFileSync(new URL('../src/proto/groupcache.proto', import.meta.url), 'utf8')
    const fromFile = protobuf.parse(file).root.toJSON()
    const embedded = protobuf.parse(PROTO_SCHEMA).root.toJSON()
    expect(embedded).toEqual(fromFile)
  })
})

describe('GetResponse golden vectors (Go groupcache / mailgun v2)', () => {
  for (const v of vectors.getResponse) {
    if (!DECODE_ONLY.has(v.case)) {
      it(`encodes ${v.case}`, () => {
        const expiresAt = expiresAtOf(v)
        const msg = expiresAt > 0 ? { value: utf8(v.value), expiresAt } : { value: utf8(v.value) }
        expect(hex(encodeGetResponse(msg))).toBe(v.hex)
      })
    }
    it(`decodes ${v.case}`, () => {
      const got = decodeGetResponse(fromHex(v.hex))
      expect(got).toEqual({ value: utf8(v.value), expiresAt: expiresAtOf(v) })
    })
  }

  it('has the vectors this test relies on', () => {
    expect(vectors.getResponse.length).toBeGreaterThanOrEqual(5)
    expect(vectors.getResponse.some((v) => DECODE_ONLY.has(v.case))).toBe(true)
  })

  it('maps 2026-01-01 exactly between ns and ms', () => {
    expect(unixNanosToMs(1767225600000000000n)).toBe(1767225600000)
    const bytes = encodeGetResponse({ value: utf8('hello'), expiresAt: 1767225600000 })
    expect(hex(bytes)).toBe('0a0568656c6c6f188080e8ef9eca9cc318')
  })

  it('writes expire 0 as absent', () => {
    expect(hex(encodeGetResponse({ value: utf8('hello'), expiresAt: 0 }))).toBe('0a0568656c6c6f')
  })
})

describe('GetResponse', () => {
  it('round-trips minute_qps only when given', () => {
    const got = decodeGetResponse(encodeGetResponse({ value: utf8('x'), minuteQps: 12.5, expiresAt: 5 }))
    expect(got).toEqual({ value: utf8('x'), minuteQps: 12.5, expiresAt: 5 })
    expect('minuteQps' in decodeGetResponse(encodeGetResponse({ value: utf8('x') }))).toBe(false)
  })

  it('carries the stale flag as peercache-only field 16 (tag 0x80 0x01), absent when not stale', () => {
    const stale = encodeGetResponse({ value: utf8('x'), expiresAt: 0, stale: true })
    expect(hex(stale)).toBe('0a0178' + '800101')
    expect(decodeGetResponse(stale)).toEqual({ value: utf8('x'), expiresAt: 0, stale: true })
    const fresh = encodeGetResponse({ value: utf8('x'), stale: false })
    expect(hex(fresh)).toBe('0a0178')
    expect('stale' in decodeGetResponse(fresh)).toBe(false)
    const entries = [{ key: 'k', status: 200, value: utf8('v'), expiresAt: 7, stale: true as const }, { key: 'j', status: 200, value: utf8('w'), expiresAt: 0 }]
    expect(decodeBatchResponse(encodeBatchResponse(entries))).toEqual(entries)
  })

  it('refuses a body without a value (field 1): an empty body is not an empty value', () => {
    expect(thrown(() => decodeGetResponse(new Uint8Array(0)))).toBeInstanceOf(InvalidArgumentError)
    // minute_qps = 1.0 alone
    expect(thrown(() => decodeGetResponse(fromHex('11000000000000f03f')))).toBeInstanceOf(InvalidArgumentError)
    expect(decodeGetResponse(fromHex('0a00'))).toEqual({ value: new Uint8Array(0), expiresAt: 0 })
  })

  it('round-trips every byte value 0..255', () => {
    const value = Uint8Array.from({ length: 256 }, (_, i) => i)
    expect(decodeGetResponse(encodeGetResponse({ value })).value).toEqual(value)
  })

  it('round-trips a 1 MiB value', () => {
    const next = prng(7)
    const value = Uint8Array.from({ length: 1 << 20 }, () => Math.floor(next() * 256))
    const got = decodeGetResponse(encodeGetResponse({ value, expiresAt: 1767225600123 }))
    expect(got.expiresAt).toBe(1767225600123)
    expect(Buffer.compare(got.value, value)).toBe(0)
  })

  it('returns the value as a plain Uint8Array view of the input, not a copy (caches copy what they keep)', () => {
    const input = Buffer.from('0a0568656c6c6f', 'hex')
    const got = decodeGetResponse(input)
    expect(got.value).toEqual(utf8('hello'))
    expect(Buffer.isBuffer(got.value)).toBe(false)
    expect(got.value.buffer).toBe(input.buffer)
    expect(got.value.byteOffset).toBe(input.byteOffset + 2)
  })

  it('ignores unknown fields', () => {
    // field 9 varint 1, field 10 bytes "zz", then value "hello"
    const got = decodeGetResponse(fromHex('4801' + '52027a7a' + '0a0568656c6c6f'))
    expect(got).toEqual({ value: utf8('hello'), expiresAt: 0 })
  })

  it('rejects a negative expire', () => {
    // expire = -1 (ten-byte varint)
    const err = thrown(() => decodeGetResponse(fromHex('0a0568656c6c6f18ffffffffffffffffff01')))
    expect(err).toBeInstanceOf(InvalidArgumentError)
  })

  it('maps an expire below 1 ms to 1 ms (expired), not to 0 (never)', () => {
    expect(decodeGetResponse(fromHex('0a00' + '1801')).expiresAt).toBe(1)
  })

  it('rejects truncated input', () => {
    expect(thrown(() => decodeGetResponse(fromHex('0a0568656c')))).toBeInstanceOf(InvalidArgumentError)
  })

  it('rejects invalid expiresAt on encode', () => {
    for (const expiresAt of [-1, Number.NaN, Number.POSITIVE_INFINITY, 9_223_372_036_855]) {
      expect(thrown(() => encodeGetResponse({ value: utf8('x'), expiresAt }))).toBeInstanceOf(InvalidArgumentError)
    }
  })
})

describe('SetRequest', () => {
  it('round-trips', () => {
    const msg = { group: 'kv', key: 'a//b ü+%', value: utf8('v(x)'), expiresAt: 1767225600000 }
    expect(decodeSetRequest(encodeSetRequest(msg))).toEqual(msg)
    const plain = { group: 'kv', key: 'k', value: new Uint8Array(0), expiresAt: 0 }
    expect(decodeSetRequest(encodeSetRequest(plain))).toEqual(plain)
  })

  it('rejects a body without the required group or key', () => {
    // only key = "k"
    expect(thrown(() => decodeSetRequest(fromHex('12016b')))).toBeInstanceOf(InvalidArgumentError)
    // only group = "g"
    expect(thrown(() => decodeSetRequest(fromHex('0a0167')))).toBeInstanceOf(InvalidArgumentError)
    expect(thrown(() => decodeSetRequest(new Uint8Array(0)))).toBeInstanceOf(InvalidArgumentError)
  })

  it('decodes an absent value as empty', () => {
    expect(decodeSetRequest(fromHex('0a016712016b'))).toEqual({
      group: 'g',
      key: 'k',
      value: new Uint8Array(0),
      expiresAt: 0,
    })
  })
})

describe('batch messages', () => {
  it('round-trips a batch request', () => {
    const keys = ['a', '', '/foo', 'a//b', 'ü', '100%']
    expect(decodeBatchRequest(encodeBatchRequest(keys))).toEqual(keys)
    expect(decodeBatchRequest(encodeBatchRequest([]))).toEqual([])
  })

  it('accepts MAX_BATCH_KEYS keys and rejects one more', () => {
    const keys = Array.from({ length: MAX_BATCH_KEYS }, (_, i) => `k${i}`)
    expect(decodeBatchRequest(encodeBatchRequest(keys))).toHaveLength(MAX_BATCH_KEYS)
    const tooMany = [...keys, 'one more']
    expect(thrown(() => encodeBatchRequest(tooMany))).toBeInstanceOf(InvalidArgumentError)
    // Build the 10,001-key body without our encoder, as a hostile client would.
    const w = protobuf.Writer.create()
    for (const k of tooMany) w.uint32(0x0a).string(k)
    expect(thrown(() => decodeBatchRequest(w.finish()))).toBeInstanceOf(InvalidArgumentError)
  })

  it('round-trips a batch response', () => {
    const entries: BatchEntryMessage[] = [
      { key: 'a', status: 200, value: utf8('v(a)'), expiresAt: 1767225600000 },
      { key: 'b', status: 200, value: new Uint8Array(0), expiresAt: 0 },
      { key: 'c', status: 404, expiresAt: 0, error: 'not found: c' },
      { key: 'd', status: 503, expiresAt: 0, error: 'loader failed' },
      { key: 'big', status: 200, value: Uint8Array.from({ length: 256 }, (_, i) => i), expiresAt: 9_223_372_036_854 },
    ]
    expect(decodeBatchResponse(encodeBatchResponse(entries))).toEqual(entries)
    expect(decodeBatchResponse(encodeBatchResponse([]))).toEqual([])
  })

  it('rejects an invalid status on encode', () => {
    const bad = [{ key: 'a', status: -1, expiresAt: 0 }]
    expect(thrown(() => encodeBatchResponse(bad))).toBeInstanceOf(InvalidArgumentError)
  })

  it('rejects a negative expire in a batch entry', () => {
    // entries { key "a", expire -1 }
    const entry = '0a0161' + '18ffffffffffffffffff01'
    const body = '0a' + (entry.length / 2).toString(16).padStart(2, '0') + entry
    expect(thrown(() => decodeBatchResponse(fromHex(body)))).toBeInstanceOf(InvalidArgumentError)
  })
})

describe('random garbage', () => {
  const decoders: [string, (b: Uint8Array) => unknown][] = [
    ['GetResponse', decodeGetResponse],
    ['SetRequest', decodeSetRequest],
    ['BatchRequest', decodeBatchRequest],
    ['BatchResponse', decodeBatchResponse],
  ]
  for (const [name, decode] of decoders) {
    it(`${name}: 2,000 random inputs decode or throw InvalidArgumentError`, () => {
      const next = prng(0xc0ffee + name.length)
      let rejected = 0
      for (let i = 0; i < 2000; i++) {
        const err = thrown(() => decode(randomBytes(next, 64)))
        if (err !== undefined) {
          expect(err, `input #${i}`).toBeInstanceOf(InvalidArgumentError)
          rejected++
        }
      }
      expect(rejected).toBeGreaterThan(0)
    })
  }

  it('survives deeply nested groups', () => {
    const body = new Uint8Array(100_000).fill(0x0b) // start-group tags, field 1
    for (const [, decode] of decoders) {
      const err = thrown(() => decode(body))
      expect(err).toBeInstanceOf(InvalidArgumentError)
    }
  })
})

describe('ns <-> ms conversion', () => {
  it('converts 0', () => {
    expect(msToUnixNanos(0)).toBe(0n)
    expect(unixNanosToMs(0n)).toBe(0)
  })

  it('converts 2026-01-01T00:00:00Z', () => {
    expect(msToUnixNanos(1767225600000)).toBe(1767225600000000000n)
    expect(unixNanosToMs(1767225600000000000n)).toBe(1767225600000)
    expect(unixNanosToMs(1767225600000999999n)).toBe(1767225600000)
  })

  it('converts the last ms that fits int64 ns (2262-04-11)', () => {
    const last = 9_223_372_036_854
    expect(new Date(last).toISOString()).toBe('2262-04-11T23:47:16.854Z')
    expect(msToUnixNanos(last)).toBe(9_223_372_036_854_000_000n)
    expect(unixNanosToMs(9_223_372_036_854_775_807n)).toBe(last)
    const got = decodeGetResponse(encodeGetResponse({ value: utf8('x'), expiresAt: last }))
    expect(got.expiresAt).toBe(last)
    // int64 max itself on the wire decodes exactly
    const w = protobuf.Writer.create().uint32(0x0a).bytes(utf8('x')).uint32(0x18)
    w.int64({ low: 0xffffffff, high: 0x7fffffff, unsigned: false } as unknown as number)
    expect(decodeGetResponse(w.finish()).expiresAt).toBe(last)
  })

  it('floors fractional ms and rejects invalid ms', () => {
    expect(msToUnixNanos(1.9)).toBe(1_000_000n)
    for (const ms of [-1, -0.5, Number.NaN, Number.POSITIVE_INFINITY, 9_223_372_036_855, Number.MAX_SAFE_INTEGER]) {
      expect(thrown(() => msToUnixNanos(ms)), String(ms)).toBeInstanceOf(InvalidArgumentError)
    }
  })

  it('floors negative ns', () => {
    expect(unixNanosToMs(-1n)).toBe(-1)
    expect(unixNanosToMs(-1_000_000n)).toBe(-1)
  })
})

describe('peercache query (gen, fresh): what a Go peer never reads', () => {
  it('round-trips; nothing to say is no query at all', () => {
    expect(peerQuery(0, false)).toBe('')
    for (const [generation, fresh] of [[0, true], [7, false], [1_770_000_000_000, true], [Number.MAX_SAFE_INTEGER, false]] as const) {
      const query = peerQuery(generation, fresh)
      expect(parsePeerQuery(`/_groupcache/kv/k${query}`)).toEqual({ generation, fresh })
    }
    expect(parsePeerQuery('/_groupcache/kv/k')).toEqual({ generation: 0, fresh: false })
    expect(parsePeerQuery('/_groupcache/kv/k?other=1&gen=12&x')).toEqual({ generation: 12, fresh: false })
  })

  it('refuses a gen that is not a safe non-negative integer', () => {
    for (const bad of ['gen=', 'gen=x', 'gen=-1', 'gen=1.5', 'gen=1e3', 'gen=99999999999999999', `gen=${2 ** 53}`]) {
      expect(parsePeerQuery(`/p?${bad}`), bad).toBeUndefined()
    }
  })
})

describe('GetResponse written by hand (src/proto/get-response.ts)', () => {
  /** What protobufjs writes for the same message: the reference the hand-written encoder must match byte for byte. */
  const reference = protobuf.parse(PROTO_SCHEMA).root.lookupType('groupcachepb.GetResponse')
  const expected = (value: Uint8Array, minuteQps: number, expiresAt: number, stale: boolean): string => {
    const out: Record<string, unknown> = { value }
    if (minuteQps > 0) out['minuteQps'] = minuteQps
    if (stale) out['stale'] = true
    if (expiresAt > 0) {
      const ns = msToUnixNanos(expiresAt)
      out['expire'] = { low: Number(ns & 0xffffffffn) | 0, high: Number(ns >> 32n) | 0, unsigned: false }
    }
    return hex(reference.encode(out).finish())
  }

  it('matches protobufjs on 2,000 random messages (value sizes across the varint boundaries, rates, expiries, stale)', () => {
    const next = prng(23)
    const sizes = [0, 1, 127, 128, 300, 16_383, 16_384]
    for (let i = 0; i < 2000; i++) {
      const value = i < sizes.length ? new Uint8Array(sizes[i]!).fill(i) : randomBytes(next, 400)
      const minuteQps = next() < 0.3 ? 0 : next() < 0.5 ? next() * 1e-3 : next() * 1e6
      const expiresAt = next() < 0.3 ? 0 : Math.floor(next() * 9_223_372_036_854)
      const stale = next() < 0.2
      expect(hex(encodeGetResponse({ value, minuteQps, expiresAt, stale }))).toBe(expected(value, minuteQps, expiresAt, stale))
    }
  })

  it('round-trips through the decoder, and refuses what protobufjs refused (a value that is not bytes, an expiry past int64)', () => {
    const value = utf8('hello')
    expect(decodeGetResponse(encodeGetResponse({ value, minuteQps: 2.5, expiresAt: 1_700_000_000_123, stale: true }))).toEqual({ value, minuteQps: 2.5, expiresAt: 1_700_000_000_123, stale: true })
    expect(thrown(() => encodeGetResponse({ value: 'x' as unknown as Uint8Array }))).toBeInstanceOf(InvalidArgumentError)
    expect(thrown(() => encodeGetResponse({ value, expiresAt: 9_223_372_036_855 }))).toBeInstanceOf(InvalidArgumentError)
  })
})

describe('decodePercent / parsePeerPath', () => {
  it('returns an unescaped text itself, decodes escapes, and refuses a malformed one', () => {
    const plain = 'user:42:profile'
    expect(decodePercent(plain)).toBe(plain)
    expect(decodePercent('a%2Fb%20%E2%82%AC')).toBe('a/b €')
    expect(decodePercent('%zz')).toBeUndefined()
    expect(decodePercent('%E2%82')).toBeUndefined()
  })

  it('splits group and key at the first slash, after decoding, as Go does', () => {
    expect(parsePeerPath('g/k%2Fwith%2Fslashes')).toEqual({ ok: true, group: 'g', key: 'k/with/slashes' })
    expect(parsePeerPath('g%2Fh/k')).toEqual({ ok: true, group: 'g', key: 'h/k' })
    expect(parsePeerPath('no-slash')).toEqual({ ok: false, status: 400, message: 'bad request' })
    expect(parsePeerPath('g/%')).toMatchObject({ ok: false, status: 400 })
  })
})
