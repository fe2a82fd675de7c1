/**
 * codecs: how a typed group's values become the bytes peercache caches,
 * counts and sends to peers, and back. Bytes stay the unit everywhere (the
 * budget, the wire, a Go peer's view), so a typed group interoperates with
 * any peer; the codec only runs at the edges: once per load or set
 * (encode), once per value that enters this process (decode).
 *
 * A decoded value is kept beside its bytes and handed to every caller that
 * hits it: it is shared, and must not be mutated. `codecs.bytes()` is the
 * exception, and today's behaviour: each read gets a copy of its own.
 */
import { copyOut, textDecoder, toBytes } from './bytes.js'
import { CodecError } from './errors.js'

/**
 * Codec turns a group's values of type T into bytes and back. `decode` must
 * accept whatever `encode` produced on any peer running the same codec;
 * a throw from `decode` rejects the get with CodecError.
 */
export interface Codec<T> {
  encode(value: T): Uint8Array | string
  decode(bytes: Uint8Array): T
}

/**
 * COPY_EACH_READ marks a codec whose decoded values must not be shared
 * between callers (each read decodes afresh): `codecs.bytes()`, whose
 * decode is a copy the caller owns.
 */
export const COPY_EACH_READ: unique symbol = Symbol('peercache.copyEachRead')

/** codecs are the built-in codecs. */
export const codecs = {
  /**
   * json stores `JSON.stringify(value)` as UTF-8 and decodes with
   * `JSON.parse`. A value JSON cannot represent (undefined, a function)
   * fails to encode.
   */
  json<T = unknown>(): Codec<T> {
    return { encode: encodeJson, decode: decodeJson as (bytes: Uint8Array) => T }
  },
  /** string stores the string as UTF-8; decoded strings are immutable, so sharing them is free. */
  string(): Codec<string> {
    return { encode: (value) => value, decode: decodeUtf8 }
  },
  /** bytes stores the bytes as given; each read gets a copy of its own (a Buffer), as an untyped group does. */
  bytes(): Codec<Uint8Array> {
    return { encode: (value) => value, decode: copyOut, [COPY_EACH_READ]: true } as Codec<Uint8Array>
  },
}

function encodeJson(value: unknown): string {
  const text: unknown = JSON.stringify(value)
  if (typeof text !== 'string') throw new CodecError(`JSON cannot encode ${typeof value}`)
  return text
}

function decodeJson(bytes: Uint8Array): unknown {
  return JSON.parse(textDecoder.decode(bytes))
}

function decodeUtf8(bytes: Uint8Array): string {
  return textDecoder.decode(bytes)
}

/** encodeValue runs codec.encode and returns exact-size bytes of our own; a failure becomes CodecError. */
export function encodeValue<T>(codec: Codec<T>, value: T): Uint8Array {
  let encoded: unknown
  try {
    encoded = codec.encode(value)
  } catch (err) {
    throw asCodecError('encode', err)
  }
  if (typeof encoded === 'string') return toBytes(encoded)
  if (encoded instanceof Uint8Array) return new Uint8Array(encoded)
  throw new CodecError(`codec encode returned ${typeof encoded}, not a string or Uint8Array`)
}

/** decodeValue runs codec.decode; a failure becomes CodecError. */
export function decodeValue<T>(codec: Codec<T>, bytes: Uint8Array): T {
  try {
    return codec.decode(bytes)
  } catch (err) {
    throw asCodecError('decode', err)
  }
}

/** sharesDecoded tells whether a codec's decoded values may be kept and shared between callers. */
export function sharesDecoded(codec: Codec<unknown>): boolean {
  return !(COPY_EACH_READ in codec)
}

function asCodecError(what: 'encode' | 'decode', err: unknown): CodecError {
  if (err instanceof CodecError) return err
  const message = err instanceof Error ? err.message : String(err)
  return new CodecError(`codec could not ${what} the value: ${message}`, { cause: err })
}
