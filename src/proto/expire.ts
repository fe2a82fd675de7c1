/**
 * expire: the wire's expiry, absolute Unix nanoseconds in an int64 (mailgun's
 * `expire` fields), and the epoch milliseconds peercache keeps; shared by the
 * protobufjs codec (codec.ts) and the hand-written GetResponse (get-response.ts).
 */
import { InvalidArgumentError } from '../errors.js'

/** Largest epoch-ms value whose nanoseconds fit in int64 (2262-04-11T23:47:16.854Z). */
export const MAX_EXPIRE_MS = 9_223_372_036_854
const NANOS_PER_MS = 1_000_000n

/**
 * msToUnixNanos converts epoch milliseconds to int64 Unix nanoseconds for the
 * wire, exactly (BigInt, since the result exceeds 2^53). A fractional ms is
 * floored. Throws InvalidArgumentError unless `ms` is finite, >= 0 and fits
 * int64 nanoseconds (up to year 2262).
 */
export function msToUnixNanos(ms: number): bigint {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0 || ms >= MAX_EXPIRE_MS + 1) {
    throw new InvalidArgumentError(`expiry must be epoch milliseconds in [0, ${MAX_EXPIRE_MS}], got ${String(ms)}`)
  }
  return BigInt(Math.floor(ms)) * NANOS_PER_MS
}

/**
 * unixNanosToMs converts Unix nanoseconds from the wire to epoch milliseconds
 * by floor division, exactly (the result stays below 2^53 for any int64).
 */
export function unixNanosToMs(ns: bigint): number {
  const q = ns / NANOS_PER_MS
  return Number(ns < 0n && q * NANOS_PER_MS !== ns ? q - 1n : q)
}
