import { describe, it, expect } from 'vitest'
import * as peercache from '../src/index.js'
import {
  AbortError,
  AuthError,
  ClosedError,
  CodecError,
  ConfigError,
  DiscoveryError,
  InvalidArgumentError,
  LoadError,
  NotFoundError,
  PeerError,
  PeerResponseError,
  PeerLoadTimeoutError,
  PeerBusyError,
  PeerTimeoutError,
  PeerUnavailableError,
  PeercacheError,
  ResponseTooLargeError,
  TimeoutError,
} from '../src/index.js'

/**
 * One row per exported error class (undici's test/errors.js): the `code`s
 * are part of the public contract, so they are spelled out here, not read
 * back from the classes.
 */
const table = [
  { ErrorClass: PeercacheError, name: 'PeercacheError', code: 'ERR_PEERCACHE', parent: Error, peer: false },
  { ErrorClass: InvalidArgumentError, name: 'InvalidArgumentError', code: 'ERR_PEERCACHE_INVALID_ARGUMENT', parent: PeercacheError, peer: false },
  { ErrorClass: ConfigError, name: 'ConfigError', code: 'ERR_PEERCACHE_CONFIG', parent: PeercacheError, peer: false },
  { ErrorClass: LoadError, name: 'LoadError', code: 'ERR_PEERCACHE_LOAD_FAILED', parent: PeercacheError, peer: false },
  { ErrorClass: NotFoundError, name: 'NotFoundError', code: 'ERR_PEERCACHE_NOT_FOUND', parent: PeercacheError, peer: false },
  { ErrorClass: AbortError, name: 'AbortError', code: 'ERR_PEERCACHE_ABORTED', parent: PeercacheError, peer: false },
  { ErrorClass: TimeoutError, name: 'TimeoutError', code: 'ERR_PEERCACHE_TIMEOUT', parent: AbortError, peer: false },
  { ErrorClass: ClosedError, name: 'ClosedError', code: 'ERR_PEERCACHE_CLOSED', parent: PeercacheError, peer: false },
  { ErrorClass: DiscoveryError, name: 'DiscoveryError', code: 'ERR_PEERCACHE_DISCOVERY', parent: PeercacheError, peer: false },
  { ErrorClass: AuthError, name: 'AuthError', code: 'ERR_PEERCACHE_AUTH', parent: PeercacheError, peer: false },
  { ErrorClass: CodecError, name: 'CodecError', code: 'ERR_PEERCACHE_CODEC', parent: PeercacheError, peer: false },
  { ErrorClass: PeerError, name: 'PeerError', code: 'ERR_PEERCACHE_PEER', parent: PeercacheError, peer: true },
  { ErrorClass: PeerUnavailableError, name: 'PeerUnavailableError', code: 'ERR_PEERCACHE_PEER_UNAVAILABLE', parent: PeerError, peer: true },
  { ErrorClass: PeerTimeoutError, name: 'PeerTimeoutError', code: 'ERR_PEERCACHE_PEER_TIMEOUT', parent: PeerError, peer: true },
  { ErrorClass: PeerLoadTimeoutError, name: 'PeerLoadTimeoutError', code: 'ERR_PEERCACHE_PEER_LOAD_TIMEOUT', parent: PeerTimeoutError, peer: true },
  { ErrorClass: PeerBusyError, name: 'PeerBusyError', code: 'ERR_PEERCACHE_PEER_BUSY', parent: PeerError, peer: true },
  { ErrorClass: PeerResponseError, name: 'PeerResponseError', code: 'ERR_PEERCACHE_PEER_BAD_RESPONSE', parent: PeerError, peer: true },
  { ErrorClass: ResponseTooLargeError, name: 'ResponseTooLargeError', code: 'ERR_PEERCACHE_RESPONSE_TOO_LARGE', parent: PeerError, peer: true },
] as const

type PlainErrorClass = new (message: string, options?: { cause?: unknown }) => PeercacheError
type PeerErrorClass = new (peer: string, message: string, options?: { cause?: unknown }) => PeerError

describe('errors', () => {
  it.each(table)('$name: name, code, class chain, cause and message', ({ ErrorClass, name, code, parent, peer }) => {
    const cause = new Error('the root cause')
    const peerUrl = 'http://10.0.0.2:8080'
    const err = peer
      ? new (ErrorClass as PeerErrorClass)(peerUrl, 'went wrong', { cause })
      : new (ErrorClass as PlainErrorClass)('went wrong', { cause })

    expect(err.name).toBe(name)
    expect(err.code).toBe(code)
    expect(err).toBeInstanceOf(ErrorClass)
    expect(err).toBeInstanceOf(parent)
    expect(err).toBeInstanceOf(PeercacheError)
    expect(err).toBeInstanceOf(Error)
    expect(err.cause).toBe(cause)
    expect(typeof err.stack).toBe('string')
    expect(String(err)).toBe(`${name}: ${err.message}`)
    if (peer) {
      expect((err as PeerError).peer).toBe(peerUrl)
      expect(err.message).toBe(`peer ${peerUrl}: went wrong`)
    } else {
      expect(err.message).toBe('went wrong')
    }

    // Without options: no cause property at all, same name and code.
    const bare = peer ? new (ErrorClass as PeerErrorClass)(peerUrl, 'bare') : new (ErrorClass as PlainErrorClass)('bare')
    expect('cause' in bare).toBe(false)
    expect(bare.code).toBe(code)
    expect(bare.name).toBe(name)

    // Codes are unique across the table.
    expect(table.filter((row) => row.code === code)).toHaveLength(1)
  })

  it('PeerResponseError keeps the HTTP status', () => {
    const err = new PeerResponseError('http://p:1', 'bad status', { status: 502 })
    expect(err.status).toBe(502)
    expect(new PeerResponseError('http://p:1', 'no answer').status).toBeUndefined()
  })

  it('the table covers every error class the package exports', () => {
    const exported = Object.entries(peercache)
      .filter(([, value]) => typeof value === 'function' && (value as { prototype?: unknown }).prototype instanceof Error)
      .map(([key]) => key)
      .sort()
    expect(exported).toEqual(table.map((row) => row.name).sort())
  })
})
