/**
 * get-response: GetResponse written by hand, the body of every value an
 * owner serves (the serving hot path). protobufjs builds a writer, a list
 * of operations and then the buffer for each message; here the size is
 * known up front, so the message is one allocation written in one pass.
 * The bytes are exactly protobufjs's (and Go's): the fields present, in
 * field-number order — value (1), minute_qps (2, only when > 0), expire
 * (3, only when set), stale (16, only when true). test/proto.test.ts
 * checks them against protobufjs on random messages.
 */
import { InvalidArgumentError } from '../errors.js'
import { msToUnixNanos } from './expire.js'

/** GetResponseFields are what an owner answers for one key. */
export interface GetResponseFields {
  value: Uint8Array
  expiresAt?: number
  minuteQps?: number
  stale?: boolean | undefined
}

const VALUE_TAG = 0x0a
const MINUTE_QPS_TAG = 0x11
const EXPIRE_TAG = 0x18
/** Field 16, varint: (16 << 3) | 0 = 128, two bytes as a varint. */
const STALE_TAG = [0x80, 0x01] as const

/** writeGetResponse encodes msg (see the file comment). Throws InvalidArgumentError on a value that is not bytes or a bad expiry. */
export function writeGetResponse(msg: GetResponseFields): Uint8Array {
  const value = msg.value
  if (!(value instanceof Uint8Array)) throw new InvalidArgumentError('value must be a Uint8Array')
  const qps = msg.minuteQps !== undefined && msg.minuteQps > 0 ? msg.minuteQps : 0
  const expire = msg.expiresAt === undefined || msg.expiresAt === 0 ? 0n : msToUnixNanos(msg.expiresAt)
  const size = 1 + varintSize(value.byteLength) + value.byteLength + (qps > 0 ? 9 : 0) + (expire > 0n ? 1 + bigVarintSize(expire) : 0) + (msg.stale === true ? 3 : 0)
  const out = Buffer.allocUnsafe(size)
  let at = 0
  out[at++] = VALUE_TAG
  at = writeVarint(out, at, value.byteLength)
  out.set(value, at)
  at += value.byteLength
  if (qps > 0) {
    out[at++] = MINUTE_QPS_TAG
    at = out.writeDoubleLE(qps, at)
  }
  if (expire > 0n) {
    out[at++] = EXPIRE_TAG
    at = writeBigVarint(out, at, expire)
  }
  if (msg.stale === true) {
    out[at++] = STALE_TAG[0]
    out[at++] = STALE_TAG[1]
    out[at++] = 1
  }
  return out
}

/** varintSize is the length of n (a length: below 2^32) as a varint. */
function varintSize(n: number): number {
  let size = 1
  for (let rest = n; rest >= 0x80; rest = Math.floor(rest / 0x80)) size++
  return size
}

function writeVarint(out: Uint8Array, at: number, n: number): number {
  let rest = n
  while (rest >= 0x80) {
    out[at++] = (rest % 0x80) | 0x80
    rest = Math.floor(rest / 0x80)
  }
  out[at++] = rest
  return at
}

/** bigVarintSize is the length of n (positive int64 nanoseconds) as a varint. */
function bigVarintSize(n: bigint): number {
  let size = 1
  for (let rest = n; rest >= 0x80n; rest >>= 7n) size++
  return size
}

function writeBigVarint(out: Uint8Array, at: number, n: bigint): number {
  let rest = n
  while (rest >= 0x80n) {
    out[at++] = Number(rest & 0x7fn) | 0x80
    rest >>= 7n
  }
  out[at++] = Number(rest)
  return at
}
