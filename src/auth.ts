/**
 * Peer authentication. When a shared secret is configured, every request one
 * peer sends another carries one header:
 *
 *     Authorization: Peercache t=<unix seconds>,s=<hex HMAC-SHA256>
 *
 * The HMAC is keyed with the secret and computed over
 *
 *     METHOD "\n" RAW_PATH "\n" t "\n" hex(sha256(body))
 *
 * where RAW_PATH is the request target exactly as sent on the wire
 * (percent-encoding and query string included) and body is the exact request
 * bytes (empty for GET). Every part is bound on purpose:
 *
 * - the method, so a signed GET cannot be replayed as a PUT or DELETE;
 * - the raw path, because it names the group and the key: a signature for
 *   one key is worthless for any other key or group;
 * - the body digest, so a captured request cannot be replayed with another
 *   body (a signed PUT of one value cannot carry a different value, and a
 *   signed GET cannot become a PUT with a body);
 * - the timestamp, so a captured request stops working once it leaves the
 *   accepted window (±30 s by default).
 *
 * Secrets rotate without downtime: a list is accepted, the first signs and
 * any verifies. Roll out `[new, old]` everywhere, then `[new]`.
 */

import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { AuthError, InvalidArgumentError } from './errors.js'
import { DEFAULTS } from './options.js'

/**
 * AUTH_HEADER is the header that carries the signature, lowercase because
 * that is how `node:http` exposes incoming header names.
 */
export const AUTH_HEADER = 'authorization'

/** The authentication scheme, matched exactly (case-sensitive). */
const SCHEME = 'Peercache'

/** Default accepted clock skew: 30 seconds either way. */

/**
 * Longest header value verify will parse. A valid one is under 100 chars;
 * the cap keeps a hostile peer from making us run a regex over megabytes.
 */
const MAX_HEADER_LENGTH = 512

/**
 * The strict grammar: scheme, one or more spaces, `t=<digits>`, a comma,
 * optional spaces, `s=<64 lowercase hex>`. Uppercase hex is refused: the
 * signer always emits lowercase, so anything else was not made by a peer.
 */
const HEADER_RE = /^Peercache +t=([0-9]{1,16}), *s=([0-9a-f]{64})$/

/** Options of {@link PeerAuth}. */
export interface PeerAuthOptions {
  /** Shared secrets; the first signs, any verifies (rotation). Non-empty strings, at least 16 bytes each recommended; empty list = invalid. */
  secrets: readonly string[]
  /** Accepted clock skew in milliseconds. @default 30_000 */
  windowMs?: number
  /** Clock in epoch ms, injectable for tests. @default Date.now */
  now?: () => number
}

/** The reasons verify gives, short and stable enough to log and count. */
type AuthFailure = 'missing' | 'malformed' | 'stale' | 'bad signature'

/** A header value that passed the grammar. */
interface ParsedHeader {
  /** The timestamp exactly as sent: it is what the signer signed. */
  tText: string
  t: number
  signature: Buffer
}

/**
 * PeerAuth signs and verifies peer requests with HMAC-SHA256, so that only
 * processes holding a shared secret can read from, write to or evict from
 * the cache through the peer protocol.
 */
export class PeerAuth {
  readonly #keys: readonly Buffer[]
  readonly #windowMs: number
  readonly #now: () => number

  /** Validates the options up front so a misconfiguration fails at startup, not on the first request. */
  constructor(options: PeerAuthOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError('PeerAuth: options must be an object')
    }
    this.#keys = toKeys(options.secrets)
    this.#windowMs = toWindowMs(options.windowMs)
    this.#now = toClock(options.now)
  }

  /** sign returns the Authorization header value for a request, signed with the first secret. */
  sign(method: string, rawPath: string, body?: Uint8Array): string {
    const tText = String(this.#nowSeconds())
    const key = this.#keys[0] as Buffer // toKeys guarantees at least one
    const mac = hmac(key, method, rawPath, tText, body).toString('hex')
    return `${SCHEME} t=${tText},s=${mac}`
  }

  /**
   * verify checks an Authorization header value; returns normally when valid,
   * throws AuthError with a short reason otherwise: 'missing', 'malformed',
   * 'stale' (outside the window), 'bad signature'. It never throws anything
   * else whatever the header holds.
   */
  verify(header: string | string[] | undefined, method: string, rawPath: string, body?: Uint8Array): void {
    const parsed = this.#parseFresh(header)
    if (!this.#matchesAnyKey(parsed, method, rawPath, body)) fail('bad signature')
  }

  /**
   * precheck does the cheap half of verify (present, well-formed, fresh)
   * without the body, so a server can refuse an unsigned or stale request
   * before it reads (and buffers) a body of up to maxRequestBytes.
   */
  precheck(header: string | string[] | undefined): void {
    this.#parseFresh(header)
  }

  #parseFresh(header: string | string[] | undefined): ParsedHeader {
    const value = singleValue(header)
    if (value === undefined) fail('missing')
    const parsed = parseHeader(value)
    if (parsed === undefined) fail('malformed')
    // The window is checked first: it is cheap and says nothing secret.
    if (!this.#isFresh(parsed.t)) fail('stale')
    return parsed
  }

  /** The current time in whole unix seconds, the resolution of `t`. */
  #nowSeconds(): number {
    return Math.floor(this.#now() / 1000)
  }

  /**
   * True when `t` is within the window of now. Compared in whole seconds so
   * that a request signed and verified in the same second has zero skew.
   */
  #isFresh(t: number): boolean {
    return Math.abs(this.#nowSeconds() - t) * 1000 <= this.#windowMs
  }

  /**
   * True when the signature matches the MAC under any secret. Compared in
   * constant time: an ordinary `===` stops at the first differing byte, and
   * timing how long a rejection takes would let an attacker guess a valid
   * signature byte by byte. Every key is tried, without stopping early, so
   * the time does not reveal which secret matched either.
   */
  #matchesAnyKey(parsed: ParsedHeader, method: string, rawPath: string, body: Uint8Array | undefined): boolean {
    let ok = false
    for (const key of this.#keys) {
      const expected = hmac(key, method, rawPath, parsed.tText, body)
      if (constantTimeEqual(expected, parsed.signature)) ok = true
    }
    return ok
  }
}

/**
 * parseSecrets turns a configured secret value into the list PeerAuth takes,
 * so an environment variable (`PEERCACHE_SECRET=new,old`) and an array in
 * code are handled the same way: split on commas (strings only), trim, drop
 * blanks. Returns undefined when nothing is left, meaning "auth disabled".
 * A secret cannot itself contain a comma when given as a string.
 */
export function parseSecrets(value: string | readonly string[] | undefined): string[] | undefined {
  if (value === undefined) return undefined
  const parts = typeof value === 'string' ? value.split(',') : value
  if (!Array.isArray(parts)) throw new InvalidArgumentError('secrets must be a string or an array of strings')
  const secrets = parts.map(trimSecret).filter((s) => s !== '')
  return secrets.length === 0 ? undefined : secrets
}

/** Trims one configured secret; a non-string entry is a configuration error. */
function trimSecret(part: unknown): string {
  if (typeof part !== 'string') throw new InvalidArgumentError('secrets must be strings')
  return part.trim()
}

/** Checks the secrets and keeps them as Buffers, the form HMAC keys are used in. */
function toKeys(secrets: unknown): Buffer[] {
  if (!Array.isArray(secrets) || secrets.length === 0) {
    throw new InvalidArgumentError('PeerAuth: secrets must be a non-empty array of strings')
  }
  return secrets.map((secret: unknown, i) => {
    if (typeof secret !== 'string' || secret === '') {
      throw new InvalidArgumentError(`PeerAuth: secrets[${i}] must be a non-empty string`)
    }
    return Buffer.from(secret, 'utf8')
  })
}

/** Checks windowMs: a finite, non-negative number of milliseconds. */
function toWindowMs(windowMs: unknown): number {
  if (windowMs === undefined) return DEFAULTS.auth.windowMs
  if (typeof windowMs !== 'number' || !Number.isFinite(windowMs) || windowMs < 0) {
    throw new InvalidArgumentError('PeerAuth: windowMs must be a finite number >= 0')
  }
  return windowMs
}

/** Checks the injected clock. */
function toClock(now: unknown): () => number {
  if (now === undefined) return Date.now
  if (typeof now !== 'function') throw new InvalidArgumentError('PeerAuth: now must be a function')
  return now as () => number
}

/**
 * Reduces what node gives for the header to one string. Repeated headers
 * (an array of several) are refused: two signatures on one request is not
 * something a peer sends.
 */
function singleValue(header: unknown): string | undefined {
  if (Array.isArray(header)) {
    if (header.length === 0) return undefined
    return header.length === 1 ? singleValue(header[0]) : ''
  }
  if (header === undefined || header === null || header === '') return undefined
  // Anything else that is not a string cannot match the grammar: let parseHeader refuse it.
  return typeof header === 'string' ? header : ''
}

/** Parses a header value against the strict grammar; undefined when it does not match. */
function parseHeader(value: string): ParsedHeader | undefined {
  if (value.length > MAX_HEADER_LENGTH) return undefined
  const match = HEADER_RE.exec(value)
  if (match === null) return undefined
  const tText = match[1] ?? ''
  const t = Number(tText)
  if (!Number.isSafeInteger(t)) return undefined
  return { tText, t, signature: Buffer.from(match[2] ?? '', 'hex') }
}

/** Computes the raw HMAC-SHA256 of the signed string (see the module comment). */
function hmac(key: Buffer, method: string, rawPath: string, tText: string, body: Uint8Array | undefined): Buffer {
  const bodyDigest = createHash('sha256')
    .update(body ?? new Uint8Array(0))
    .digest('hex')
  return createHmac('sha256', key).update(`${method}\n${rawPath}\n${tText}\n${bodyDigest}`).digest()
}

/** timingSafeEqual throws on different lengths; here that is just "not equal". */
function constantTimeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}

/** Throws the AuthError for a reason; typed `never` so callers narrow after it. */
function fail(reason: AuthFailure): never {
  throw new AuthError(`peer authentication failed: ${reason}`)
}

/** authFrom makes the signer/verifier of the given secret(s) (the option, else PEERCACHE_SECRET), or undefined when none is set. */
export function authFrom(secret: string | readonly string[] | undefined, windowMs: number, now: () => number): PeerAuth | undefined {
  const secrets = parseSecrets(secret)
  if (secrets === undefined) return undefined
  return new PeerAuth({ secrets, windowMs, now })
}
