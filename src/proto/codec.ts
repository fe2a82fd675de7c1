/**
 * Protobuf codec of the peer wire protocol (DESIGN.md §3), over protobufjs.
 *
 * The schema is embedded as text and parsed once at module load: no file IO,
 * so the package works from dist/ alone. No protobufjs type leaks out of this
 * module: callers see plain objects with `Uint8Array` values and epoch
 * milliseconds.
 *
 * Expire times cross the wire as int64 Unix nanoseconds (mailgun/groupcache
 * v2), which exceed 2^53: they are converted through BigInt, never through a
 * lossy double. In JS we use epoch milliseconds (number, 0 = never).
 */
import protobuf from 'protobufjs'
import { writeGetResponse, type GetResponseFields } from './get-response.js'
import { MAX_EXPIRE_MS, msToUnixNanos, unixNanosToMs } from './expire.js'
export { MAX_EXPIRE_MS, msToUnixNanos, unixNanosToMs } from './expire.js'
import { InvalidArgumentError } from '../errors.js'

/**
 * PROTO_SCHEMA is the text of src/proto/groupcache.proto, embedded so the
 * codec needs no file at runtime; a test checks the two stay identical.
 */
export const PROTO_SCHEMA = `
syntax = "proto2";
package groupcachepb;
message GetRequest { required string group = 1; required string key = 2; }
message GetResponse { optional bytes value = 1; optional double minute_qps = 2; optional int64 expire = 3; optional bool stale = 16; }
message SetRequest { required string group = 1; required string key = 2; optional bytes value = 3; optional int64 expire = 4; }
message BatchRequest { repeated string keys = 1; }
message BatchEntry { optional string key = 1; optional bytes value = 2; optional int64 expire = 3; optional uint32 status = 4; optional string error = 5; optional bool stale = 6; optional double minute_qps = 7; }
message BatchResponse { repeated BatchEntry entries = 1; }
`

/**
 * MAX_BATCH_KEYS bounds a batch request, so one request cannot make a peer
 * decode or load an unbounded number of keys.
 */
export const MAX_BATCH_KEYS = 10_000


/** The message types, built once from the immutable schema. */
const TYPES = loadTypes()

/**
 * loadTypes parses the embedded schema; called once at module load.
 * `resolveAll` is needed for protobufjs to apply proto2 `required` (checked
 * by the generated decoders).
 */
function loadTypes() {
  const root = protobuf.parse(PROTO_SCHEMA).root.resolveAll()
  return Object.freeze({
    getResponse: root.lookupType('groupcachepb.GetResponse'),
    setRequest: root.lookupType('groupcachepb.SetRequest'),
    batchRequest: root.lookupType('groupcachepb.BatchRequest'),
    batchEntry: root.lookupType('groupcachepb.BatchEntry'),
    batchResponse: root.lookupType('groupcachepb.BatchResponse'),
  })
}

/** A decoded message: protobufjs sets only the fields present on the wire as own properties. */
type Decoded = Record<string, unknown>

/** The int64 shape protobufjs writes without needing the `long` package. */
interface Int64Bits {
  low: number
  high: number
  unsigned: boolean
}

/**
 * GetResponseMessage is the body of a peer's 200 answer to a get.
 * `value` is a fresh copy (never a view into the input buffer).
 */
export interface GetResponseMessage {
  value: Uint8Array
  minuteQps?: number
  /** Absolute expiry in epoch milliseconds, 0 = never. */
  expiresAt: number
  /** peercache-only (field 16, ignored by Go): the owner answered a value past its expiry (stale windows). */
  stale?: true
}

/** SetRequestMessage is mailgun's PUT body: store `value` under `group`/`key`. */
export interface SetRequestMessage {
  group: string
  key: string
  value: Uint8Array
  /** Absolute expiry in epoch milliseconds, 0 = never. */
  expiresAt: number
}

/**
 * BatchEntryMessage is one key's answer in a batch response. `status` is
 * HTTP-like: 200 ok, 404 not found, 503 loader failed (0 if absent on the
 * wire). `value` is absent when the sender did not write it (treat as empty
 * for a 200); `error` carries a failure's message.
 */
export interface BatchEntryMessage {
  key: string
  status: number
  value?: Uint8Array
  /** Absolute expiry in epoch milliseconds, 0 = never. */
  expiresAt: number
  error?: string
  /** The key's request rate at its owner (GetResponse's minute_qps), when the owner tells it. */
  minuteQps?: number
  /** The value is past its expiry, answered within the owner's stale windows. */
  stale?: true
}

/**
 * encodeGetResponse builds the body of a 200 answer to a get. Field 1 is
 * always written (empty value = `0a00`); expire only when `expiresAt > 0`, so
 * a plain value is byte-identical to Go groupcache's; minute_qps only when
 * given and above 0 (the owner's request rate for the key; Go ignores it). The result may be a Node Buffer (a Uint8Array).
 */
export function encodeGetResponse(msg: GetResponseFields): Uint8Array {
  return writeGetResponse(msg)
}

/**
 * decodeGetResponse parses a peer's 200 body. An absent or 0 expire is 0
 * (never), unknown fields are ignored (as Go does). The value (field 1) is
 * required: every groupcache server writes it, even empty (`0a00`), so a
 * body without it is not an answer (it must not be cached as an empty
 * value). Throws InvalidArgumentError on undecodable input, a missing value
 * or a negative expire.
 *
 * The value is a view of `bytes`, not a copy: most answers are copied once
 * for the caller and never cached, and an array over 64 bytes costs a
 * microsecond to allocate. What keeps it copies it (caches own their bytes:
 * cache.ts).
 */
export function decodeGetResponse(bytes: Uint8Array): GetResponseMessage {
  const m = decodeWith(TYPES.getResponse, bytes, 'GetResponse')
  const value = viewOf(m['value'])
  if (value === undefined) throw new InvalidArgumentError('GetResponse has no value (field 1)')
  const out: GetResponseMessage = { value, expiresAt: readExpire(m) }
  if (has(m, 'minuteQps')) out.minuteQps = m['minuteQps'] as number
  if (m['stale'] === true) out.stale = true
  return out
}

/**
 * encodeSetRequest builds mailgun's PUT body. Value is always written; expire
 * only when `expiresAt > 0`.
 */
export function encodeSetRequest(msg: SetRequestMessage): Uint8Array {
  const out: Decoded = {
    group: checkString(msg.group, 'group'),
    key: checkString(msg.key, 'key'),
    value: checkBytes(msg.value, 'value'),
  }
  setExpire(out, msg.expiresAt)
  return TYPES.setRequest.encode(out).finish()
}

/**
 * decodeSetRequest parses a PUT body. Throws InvalidArgumentError when it is
 * undecodable, lacks the required group or key, or has a negative expire.
 */
export function decodeSetRequest(bytes: Uint8Array): SetRequestMessage {
  const m = decodeWith(TYPES.setRequest, bytes, 'SetRequest')
  return {
    group: m['group'] as string,
    key: m['key'] as string,
    value: copyBytes(m['value']) ?? new Uint8Array(0),
    expiresAt: readExpire(m),
  }
}

/**
 * encodeBatchRequest builds the body of a batch get. Throws
 * InvalidArgumentError beyond MAX_BATCH_KEYS keys, which the peer would reject.
 */
export function encodeBatchRequest(keys: readonly string[]): Uint8Array {
  checkBatchSize(keys.length)
  keys.forEach((k) => checkString(k, 'key'))
  return TYPES.batchRequest.encode({ keys: [...keys] }).finish()
}

/**
 * decodeBatchRequest parses a batch get body, counting keys as it reads so it
 * stops at MAX_BATCH_KEYS + 1 (InvalidArgumentError) instead of decoding an
 * unbounded list. Unknown fields are skipped.
 */
export function decodeBatchRequest(bytes: Uint8Array): string[] {
  const keys: string[] = []
  readRepeated(bytes, 'BatchRequest', (reader) => {
    checkBatchSize(keys.length + 1)
    keys.push(reader.string())
  })
  return keys
}

/**
 * encodeBatchResponse builds the body of a batch answer, one entry per key.
 * Key and status are always written; value and error when present; expire
 * only when `expiresAt > 0`.
 */
export function encodeBatchResponse(entries: readonly BatchEntryMessage[]): Uint8Array {
  return TYPES.batchResponse.encode({ entries: entries.map(toWireEntry) }).finish()
}

/**
 * decodeBatchResponse parses a batch answer, bounded like decodeBatchRequest
 * (a peer never answers more entries than the keys it may be asked).
 * Throws InvalidArgumentError on undecodable input or a negative expire.
 */
export function decodeBatchResponse(bytes: Uint8Array): BatchEntryMessage[] {
  const entries: BatchEntryMessage[] = []
  readRepeated(bytes, 'BatchResponse', (reader) => {
    checkBatchSize(entries.length + 1)
    entries.push(fromWireEntry(TYPES.batchEntry.decode(reader, reader.uint32()) as unknown as Decoded))
  })
  return entries
}

/**
 * decodeBatchEntry parses the bytes of one BatchEntry (one `entries` field's
 * payload), for answers read as they stream in. Throws InvalidArgumentError
 * on undecodable input or a negative expire.
 */
export function decodeBatchEntry(bytes: Uint8Array): BatchEntryMessage {
  return fromWireEntry(decodeWith(TYPES.batchEntry, bytes, 'BatchEntry'))
}

/** toWireEntry maps one BatchEntryMessage to the object protobufjs encodes. */
function toWireEntry(e: BatchEntryMessage): Decoded {
  const status = e.status
  if (!Number.isInteger(status) || status < 0 || status > 0xffff_ffff) {
    throw new InvalidArgumentError(`batch entry status must be a uint32, got ${String(status)}`)
  }
  const out: Decoded = { key: checkString(e.key, 'key'), status }
  if (e.value !== undefined) out['value'] = checkBytes(e.value, 'value')
  if (e.error !== undefined) out['error'] = checkString(e.error, 'error')
  if (e.minuteQps !== undefined && e.minuteQps > 0) out['minuteQps'] = e.minuteQps
  if (e.stale === true) out['stale'] = true
  setExpire(out, e.expiresAt)
  return out
}

/** fromWireEntry maps one decoded BatchEntry to a BatchEntryMessage. */
function fromWireEntry(m: Decoded): BatchEntryMessage {
  const out: BatchEntryMessage = {
    key: has(m, 'key') ? (m['key'] as string) : '',
    status: has(m, 'status') ? (m['status'] as number) : 0,
    expiresAt: readExpire(m),
  }
  // A view, as in decodeGetResponse: what keeps it copies it.
  const value = viewOf(m['value'])
  if (value !== undefined) out.value = value
  if (has(m, 'error')) out.error = m['error'] as string
  if (has(m, 'minuteQps')) out.minuteQps = m['minuteQps'] as number
  if (m['stale'] === true) out.stale = true
  return out
}

/**
 * decodeWith runs a generated decoder and turns every failure (truncation,
 * bad wire type, missing required field, nesting too deep) into
 * InvalidArgumentError.
 */
function decodeWith(type: protobuf.Type, bytes: Uint8Array, what: string): Decoded {
  checkInput(bytes, what)
  try {
    return type.decode(bytes) as unknown as Decoded
  } catch (err) {
    throw undecodable(what, err)
  }
}

/**
 * readRepeated walks a message whose only known field is repeated field 1
 * (length-delimited), calling `onItem` with the reader positioned on each
 * item; other fields are skipped. Errors other than ours become
 * InvalidArgumentError.
 */
function readRepeated(bytes: Uint8Array, what: string, onItem: (reader: protobuf.Reader) => void): void {
  checkInput(bytes, what)
  try {
    const reader = protobuf.Reader.create(bytes)
    while (reader.pos < reader.len) {
      const tag = reader.uint32()
      if (tag === 0x0a) onItem(reader)
      else reader.skipType(tag & 7)
    }
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw err
    throw undecodable(what, err)
  }
}

/** undecodable wraps a protobufjs failure, keeping it as `cause`. */
function undecodable(what: string, err: unknown): InvalidArgumentError {
  const reason = err instanceof Error ? err.message : String(err)
  return new InvalidArgumentError(`undecodable ${what}: ${reason}`, { cause: err })
}

/** checkInput rejects a non-Uint8Array input before protobufjs sees it. */
function checkInput(bytes: Uint8Array, what: string): void {
  if (!(bytes instanceof Uint8Array)) throw new InvalidArgumentError(`${what} input must be a Uint8Array`)
}

/** checkBatchSize enforces MAX_BATCH_KEYS. */
function checkBatchSize(count: number): void {
  if (count > MAX_BATCH_KEYS) throw new InvalidArgumentError(`batch exceeds ${MAX_BATCH_KEYS} keys`)
}

/** checkBytes guards encoders: protobufjs would base64-decode a string given for bytes. */
function checkBytes(value: Uint8Array, field: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new InvalidArgumentError(`${field} must be a Uint8Array`)
  return value
}

/** checkString guards encoders against non-string fields. */
function checkString(value: string, field: string): string {
  if (typeof value !== 'string') throw new InvalidArgumentError(`${field} must be a string`)
  return value
}

/** has tells whether a decoded message carried `field` on the wire. */
function has(m: Decoded, field: string): boolean {
  return Object.prototype.hasOwnProperty.call(m, field)
}

/** viewOf is a decoded bytes field as a plain Uint8Array view of the input (protobufjs gives a Buffer for a Buffer input). */
function viewOf(value: unknown): Uint8Array | undefined {
  return value instanceof Uint8Array ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength) : undefined
}

/** copyBytes copies a decoded bytes field out of the (possibly pooled) input buffer. */
function copyBytes(value: unknown): Uint8Array | undefined {
  return value instanceof Uint8Array ? new Uint8Array(value) : undefined
}

/** setExpire writes the int64 expire field only for a positive expiry. */
function setExpire(out: Decoded, expiresAt: number | undefined): void {
  if (expiresAt === undefined || expiresAt === 0) return
  out['expire'] = toInt64Bits(msToUnixNanos(expiresAt))
}

/**
 * readExpire reads the expire field as epoch ms: absent or 0 is 0 (never),
 * negative is invalid, and a positive value below 1 ms maps to 1 (already
 * expired) rather than to 0, which would mean never.
 */
function readExpire(m: Decoded): number {
  if (!has(m, 'expire')) return 0
  const ns = int64ToBigInt(m['expire'])
  if (ns < 0n) throw new InvalidArgumentError(`negative expire ${ns} ns`)
  return ns === 0n ? 0 : Math.max(1, unixNanosToMs(ns))
}

/** toInt64Bits splits a bigint into the low/high words protobufjs writes exactly. */
function toInt64Bits(ns: bigint): Int64Bits {
  return { low: Number(BigInt.asUintN(32, ns)), high: Number(BigInt.asIntN(32, ns >> 32n)), unsigned: false }
}

/**
 * int64ToBigInt converts what protobufjs decoded for an int64: a Long (the
 * `long` package, a protobufjs dependency) read exactly from its words, or a
 * number if protobufjs was built without Long.
 */
function int64ToBigInt(value: unknown): bigint {
  if (typeof value === 'number') return BigInt(Math.trunc(value))
  const { low, high } = value as { low: number; high: number }
  return (BigInt(high | 0) << 32n) | BigInt(low >>> 0)
}
