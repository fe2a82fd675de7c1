/**
 * Errors of peercache. Every failure a caller can see is a `PeercacheError`
 * with a stable `code` (match on `code`, never on `message`) and the original
 * failure kept as `cause`. One class per kind of failure, as undici does, so a
 * caller can `instanceof` or switch on `code`.
 *
 * Which errors are final matters to the get path: `NotFoundError` and
 * `LoadError` coming from an owner are the owner loader's answer and are not
 * retried locally (the origin is not hit twice for one failure); every
 * `PeerError` is a transport problem and falls back to a local load.
 */

/** Options every peercache error accepts. */
export interface PeercacheErrorOptions {
  cause?: unknown
}

/**
 * PeercacheError is the base class of every error peercache throws, so
 * `err instanceof PeercacheError` separates our failures from the loader's.
 */
export class PeercacheError extends Error {
  /** A stable, machine-readable identifier such as `ERR_PEERCACHE_CLOSED`. */
  readonly code: string = 'ERR_PEERCACHE'
  override name = 'PeercacheError'

  constructor(message: string, options?: PeercacheErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
  }
}

/** InvalidArgumentError reports a bad key, group name, option or value passed by the caller. */
export class InvalidArgumentError extends PeercacheError {
  override readonly code: string = 'ERR_PEERCACHE_INVALID_ARGUMENT'
  override name = 'InvalidArgumentError'
}

/** ConfigError reports a bad peer configuration (URL, duplicate peer, missing self, unreadable file). */
export class ConfigError extends PeercacheError {
  override readonly code: string = 'ERR_PEERCACHE_CONFIG'
  override name = 'ConfigError'
}

/**
 * LoadError reports that the loader failed: it threw, rejected, returned a
 * value that is not a string or Uint8Array, or (from a peer) the owner's
 * loader failed. Not cached: the next get loads again.
 */
export class LoadError extends PeercacheError {
  override readonly code: string = 'ERR_PEERCACHE_LOAD_FAILED'
  override name = 'LoadError'
}

/**
 * NotFoundError says the key does not exist at the origin. A loader throws it
 * (`throw new NotFoundError(key)`) so that the answer travels between peers as
 * a final "not found" (404) rather than as a failure.
 */
export class NotFoundError extends PeercacheError {
  override readonly code: string = 'ERR_PEERCACHE_NOT_FOUND'
  override name = 'NotFoundError'
}

/**
 * AbortError reports that the caller's own `signal` ended its wait. The
 * signal's reason is kept as `cause`. Only that caller's wait ends: a load
 * shared with other callers goes on.
 */
export class AbortError extends PeercacheError {
  override readonly code: string = 'ERR_PEERCACHE_ABORTED'
  override name = 'AbortError'
}

/**
 * TimeoutError is the AbortError a caller sees when its own signal ended its
 * wait because it timed out (`AbortSignal.timeout(ms)`, whose reason is a
 * DOMException named `TimeoutError`), as `fetch` rejects with that reason.
 * It extends AbortError, so code that handles aborts handles timeouts too;
 * the signal's reason is kept as `cause`. A peer that is too slow is not
 * this error: that is a PeerTimeoutError, and the get loads locally.
 */
export class TimeoutError extends AbortError {
  override readonly code: string = 'ERR_PEERCACHE_TIMEOUT'
  override name = 'TimeoutError'
}

/** ClosedError reports a call on a `Peercache` (or one of its groups) after `close()`. */
export class ClosedError extends PeercacheError {
  override readonly code: string = 'ERR_PEERCACHE_CLOSED'
  override name = 'ClosedError'
}

/**
 * PeerError reports that a peer could not give an answer: the connection
 * failed, it timed out, or it answered something that is not a valid reply.
 * The get path counts it in `peerErrors` and loads locally instead.
 */
export class PeerError extends PeercacheError {
  override readonly code: string = 'ERR_PEERCACHE_PEER'
  override name = 'PeerError'
  /** The base URL of the peer that failed. */
  readonly peer: string

  constructor(peer: string, message: string, options?: PeercacheErrorOptions) {
    super(`peer ${peer}: ${message}`, options)
    this.peer = peer
  }
}

/** PeerUnavailableError: the peer could not be reached (refused, reset, closed, or marked down). */
export class PeerUnavailableError extends PeerError {
  override readonly code: string = 'ERR_PEERCACHE_PEER_UNAVAILABLE'
  override name = 'PeerUnavailableError'
}

/** PeerTimeoutError: the peer did not answer within the request timeout. */
export class PeerTimeoutError extends PeerError {
  override readonly code: string = 'ERR_PEERCACHE_PEER_TIMEOUT'
  override name = 'PeerTimeoutError'
}

/**
 * PeerLoadTimeoutError: the peer was alive (it answered other requests or a
 * liveness probe) but had not answered this one within `loadTimeout` (a
 * peek: within `timeout`): the peer is busy loading, not dead. It fails that
 * request (a get then loads locally) and is never held against the peer's
 * health.
 */
export class PeerLoadTimeoutError extends PeerTimeoutError {
  override readonly code: string = 'ERR_PEERCACHE_PEER_LOAD_TIMEOUT'
  override name = 'PeerLoadTimeoutError'
}

/**
 * PeerBusyError: the peer refused to answer a value now because too many
 * answer bytes wait for clients that do not read them (its
 * `server.maxTotalQueuedBytes` in all, or `server.maxQueuedBytes` on that
 * connection): a 503 marked busy. It fails that request (a get then loads
 * locally) and is never held against the peer's health: the peer answered.
 */
export class PeerBusyError extends PeerError {
  override readonly code: string = 'ERR_PEERCACHE_PEER_BUSY'
  override name = 'PeerBusyError'
}

/** PeerResponseError: the peer answered, but not with a valid reply (status, content type, body). */
export class PeerResponseError extends PeerError {
  override readonly code: string = 'ERR_PEERCACHE_PEER_BAD_RESPONSE'
  override name = 'PeerResponseError'
  /** The HTTP status the peer answered with, when it answered. */
  readonly status: number | undefined

  constructor(peer: string, message: string, options?: PeercacheErrorOptions & { status?: number }) {
    super(peer, message, options)
    this.status = options?.status
  }
}

/** ResponseTooLargeError: the peer's body exceeded `maxResponseBytes`; the body was destroyed. */
export class ResponseTooLargeError extends PeerError {
  override readonly code: string = 'ERR_PEERCACHE_RESPONSE_TOO_LARGE'
  override name = 'ResponseTooLargeError'
}

/** AuthError: a peer request or answer failed authentication (missing, wrong or stale signature). */
export class AuthError extends PeercacheError {
  override readonly code: string = 'ERR_PEERCACHE_AUTH'
  override name = 'AuthError'
}

/** DiscoveryError: a discovery refresh failed (lookup error, empty answer, timeout); the last good peer list stays. */
export class DiscoveryError extends PeercacheError {
  override readonly code: string = 'ERR_PEERCACHE_DISCOVERY'
  override name = 'DiscoveryError'
}

/** True when `err` is an error the get path must not retry locally (the owner's final answer). */
export function isFinalLoadError(err: unknown): boolean {
  return err instanceof NotFoundError || err instanceof LoadError
}

/**
 * CodecError reports that a typed group's codec could not encode a value
 * (from the loader or `set`) or decode cached bytes (e.g. bytes a peer with
 * another codec stored).
 */
export class CodecError extends PeercacheError {
  override readonly code: string = 'ERR_PEERCACHE_CODEC'
  override name = 'CodecError'
}
