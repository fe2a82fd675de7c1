/**
 * keyv-values: how the values Keyv hands its store become the bytes a group
 * keeps, and back, without losing anything. Keyv hands a store strings (its
 * serializer's output, the default) or, with `serialize: undefined`, the raw
 * `{ value, expires }` object; both must come back as they went in.
 *
 * A well-formed string is kept as its UTF-8 bytes, so the group holds
 * Keyv's own JSON text (readable with `group.getString`, by any peer, a Go
 * one included). Anything else — a raw object, a Buffer, a string with a
 * lone surrogate (UTF-8 cannot carry it) — is kept in V8's structured-clone
 * format (`node:v8` serialize), which keeps Buffers, Dates, Maps, BigInts
 * and undefined as they are. Its first byte is always 0xFF, a byte UTF-8
 * never contains, so the two never collide: that byte alone tells them apart.
 */
import { deserialize, serialize } from 'node:v8'
import { CodecError } from '../errors.js'

/** V8_HEADER is the first byte of every `v8.serialize` output (its version tag); no UTF-8 text contains it. */
const V8_HEADER = 0xff

/** encodeKeyvValue turns what Keyv hands the store into what the group stores (a string is stored as UTF-8). */
export function encodeKeyvValue(value: unknown): string | Uint8Array {
  if (typeof value === 'string' && value.isWellFormed()) return value
  try {
    return serialize(value)
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    throw new CodecError(`peercache/keyv cannot store this value (${message}): store strings, or values structured clone can copy`, { cause: err })
  }
}

/** decodeKeyvValue turns the group's bytes back into what Keyv stored; throws CodecError for bytes that are neither. */
export function decodeKeyvValue(bytes: Buffer): unknown {
  if (bytes.length === 0 || bytes[0] !== V8_HEADER) return bytes.toString('utf8')
  try {
    return deserialize(bytes)
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    throw new CodecError(`peercache/keyv could not read a stored value: ${message}`, { cause: err })
  }
}
