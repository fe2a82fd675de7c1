/**
 * inputs: the checks that make every value, expiry and option a caller or a
 * loader gives either work here and over the wire alike, or fail at once with
 * a typed error. The rule: what the wire cannot carry is refused where it is
 * given, before any allocation or request — never stored locally and then
 * refused by the owner. The wire carries a value as bytes and an expiry as
 * int64 Unix nanoseconds (up to 2262-04-11); Node's timers take at most
 * 2^31 - 1 ms (a longer delay fires after 1 ms).
 */
import { AbortError, InvalidArgumentError } from './errors.js'
import { MAX_EXPIRE_MS } from './proto/codec.js'

/** MAX_TIMER_MS is the longest delay setTimeout honours; a millisecond option above it would fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** ExpirySpec is a ttl (ms from now) and/or an absolute expiry (epoch ms), as set options and loader results carry. */
export interface ExpirySpec {
  ttl?: unknown
  expiresAt?: unknown
}

/**
 * checkValue refuses a value that is not a string or Uint8Array: a number
 * would otherwise become that many zero bytes, an object an empty value.
 */
export function checkValue(value: unknown): asserts value is Uint8Array | string {
  if (typeof value !== 'string' && !(value instanceof Uint8Array)) {
    throw new InvalidArgumentError(`value must be a string or Uint8Array, got ${describeValue(value)}`)
  }
}

/**
 * checkWriteOptions checks the options of set/remove and refuses to start
 * when their signal has already aborted: a write that was cancelled before
 * it began changes nothing, wherever the key lives.
 */
export function checkWriteOptions(options: unknown, now: number): void {
  if (options === undefined) return
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError(`options must be an object, got ${describeValue(options)}`)
  const problem = expiryProblem(options as ExpirySpec, now)
  if (problem !== undefined) throw new InvalidArgumentError(problem)
  const signal = (options as { signal?: unknown }).signal
  if (signal === undefined) return
  if (!(signal instanceof AbortSignal)) throw new InvalidArgumentError(`signal must be an AbortSignal, got ${describeValue(signal)}`)
  if (signal.aborted) throw new AbortError('aborted before the write started', { cause: signal.reason })
}

/**
 * expiryProblem says what is wrong with a ttl/expiresAt pair, or undefined:
 * each must be a finite number >= 0, and the expiry they make must fit the
 * wire (at most MAX_EXPIRE_MS epoch ms), `now` being the clock's time.
 */
export function expiryProblem(spec: ExpirySpec, now: number): string | undefined {
  const { ttl, expiresAt } = spec
  if (expiresAt !== undefined && !isMs(expiresAt, MAX_EXPIRE_MS)) {
    return `expiresAt must be epoch milliseconds from 0 to ${MAX_EXPIRE_MS}, got ${describeValue(expiresAt)}`
  }
  if (ttl !== undefined && !isMs(ttl, MAX_EXPIRE_MS - now)) {
    return `ttl must be milliseconds from 0 to ${MAX_EXPIRE_MS - now} (an expiry the wire can carry), got ${describeValue(ttl)}`
  }
  return undefined
}

/** checkTtl refuses a group ttl that is not an integer number of ms whose expiry the wire can carry. */
export function checkTtl(ttl: unknown, now: number): void {
  const problem = Number.isInteger(ttl) ? expiryProblem({ ttl }, now) : `ttl must be an integer, got ${describeValue(ttl)}`
  if (problem !== undefined) throw new InvalidArgumentError(problem)
}

/** checkTimerMs refuses a millisecond option that is not an integer from min to MAX_TIMER_MS. */
export function checkTimerMs(name: string, value: unknown, min: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_TIMER_MS) {
    throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${MAX_TIMER_MS} ms, got ${describeValue(value)}`)
  }
}

/** describeValue names a value's kind for an error message without echoing it (it may be large or secret). */
export function describeValue(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'number') return `the number ${String(value)}`
  if (typeof value === 'object') return `an object (${Object.prototype.toString.call(value)})`
  return `a ${typeof value}`
}

function isMs(value: unknown, max: number): boolean {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= max
}

/** checkInteger throws InvalidArgumentError unless value is a safe integer >= min. */
export function checkInteger(name: string, value: unknown, min: number): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got ${String(value)}`)
  }
}

/** checkProbability throws InvalidArgumentError unless value is a number in [0, 1]. */
export function checkProbability(name: string, value: unknown): void {
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
    throw new InvalidArgumentError(`${name} must be a number from 0 to 1, got ${String(value)}`)
  }
}
