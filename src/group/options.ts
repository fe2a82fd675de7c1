/**
 * group-options: what configures a Group — its options, its loader's
 * contract, a get's and a set's options — and the checks that refuse a bad
 * option where it is given (InvalidArgumentError), before a group exists.
 */
import type { Codec } from '../codecs.js'
import { InvalidArgumentError } from '../errors.js'
import { checkInteger, checkProbability, checkTtl } from '../inputs.js'
import { checkOptionNames } from '../option-names.js'
import { GROUP_SCHEMA } from '../options.js'

const MAX_GROUP_NAME_BYTES = 255

/**
 * LoadResult is what a loader returns: the value (bytes or a string, stored
 * as its UTF-8 bytes), or the value with its own expiry.
 */
export type LoadResult =
  | Uint8Array
  | string
  | {
      value: Uint8Array | string
      /** Time to live in milliseconds from now (overrides the group's `ttl`). */
      ttl?: number
      /** Absolute expiry in epoch milliseconds (overrides `ttl`). */
      expiresAt?: number
    }

/**
 * Loader fetches a key's value from the origin. It must be unversioned: the
 * same key must always mean the same value (or one that is fine to serve
 * until it expires), because the result is cached and shared across peers.
 * Throw `NotFoundError` for a key that does not exist; any other throw is a
 * load failure. The signal aborts when nobody waits for this load any more.
 */
export type Loader = (key: string, context: LoaderContext) => LoadResult | Promise<LoadResult>

/** LoaderContext is a loader's second argument: what it may use and say about this one load. */
export interface LoaderContext {
  /** Aborts when nobody waits for this load any more (every caller left), or on close(). */
  readonly signal: AbortSignal
  /**
   * setTtl gives the value this load returns a time to live of `ms`
   * milliseconds (0: it never expires) instead of the group's `ttl`;
   * `ttlJitter` still applies. A `{ ttl }` or `{ expiresAt }` the loader
   * returns wins over it. Throws InvalidArgumentError for a ttl that is not
   * an integer >= 0 or that the wire cannot carry.
   */
  setTtl(ms: number): void
}

/**
 * TypedLoader fetches a typed group's value from the origin; the group's
 * codec turns it into the bytes that are cached and sent. The same contract
 * as Loader (unversioned; throw NotFoundError for a missing key). The value
 * expires after the group's `ttl`, or after what the loader gave
 * `context.setTtl`.
 */
export type TypedLoader<T> = (key: string, context: LoaderContext) => T | Promise<T>

/**
 * SetValue is what `set` takes: bytes or a string in an untyped group (a
 * `Group<Buffer>`), a T in a typed one.
 */
export type SetValue<T> = [T] extends [Buffer] ? Uint8Array | string : T

/** TypedGroupOptions configures a typed group: `load` returns T, `get` resolves to T. */
export interface TypedGroupOptions<T> extends Omit<GroupOptions, 'load' | 'codec'> {
  /**
   * Turns values into the bytes that are cached, counted against
   * `cacheBytes` and sent to peers, and back (`codecs.json()`,
   * `codecs.string()`, `codecs.bytes()` or your own). A decoded value is kept
   * beside its bytes, so a hit does not decode again: it is shared between
   * callers and must not be mutated.
   */
  codec: Codec<T>
  /** Fills a miss on a key this process owns, with a value the codec encodes. Without it, values come only from `set`. */
  load?: TypedLoader<T>
}

/** GroupOptions configures one (untyped) group: values are bytes, `get` resolves to a Buffer. */
export interface GroupOptions {
  /** The group's name: 1..255 UTF-8 bytes, no `/`. The same on every peer. */
  name: string
  /** Budget for main + hot caches, in bytes. 0 disables caching (gets still deduplicate). */
  cacheBytes: number
  /**
   * Fills a miss on a key this process owns. Without it, values come only
   * from `set`: a key nobody stored is not found (its owner answers what it
   * holds, or not found, and loads nothing), as in a key-value store.
   */
  load?: Loader
  /** An untyped group has no codec (its values are bytes); see TypedGroupOptions. */
  codec?: undefined
  /** Longest key accepted, in UTF-8 bytes. @default 65536 */
  maxKeyBytes?: number
  /** Hot is kept to about main / hotCacheRatio when the budget is full. @default 8 */
  hotCacheRatio?: number
  /**
   * Set it to mirror values fetched from their owners into the hot cache by a
   * coin of this probability (groupcache's way). Unset, the hot cache admits
   * by frequency (see README, "Hot cache"). @default the instance's, unset
   */
  hotCacheProbability?: number
  /** Default time to live of loaded values, in milliseconds; 0 = no expiry. @default 0 */
  ttl?: number
  /** Up to this many milliseconds are taken off each ttl at random, so entries do not expire together. @default 0 */
  ttlJitter?: number
  /** Coalesce remote gets of one tick to one owner into one batch request. @default the instance's, true */
  coalesce?: boolean
  /**
   * How long, in milliseconds, the process that ran the loader remembers a
   * NotFoundError it threw (negative caching): gets of that key from any peer
   * reach the owner and are answered not found without an origin load until
   * then. `set`, `remove` and `clear` forget it. Remembered keys take at most
   * cacheBytes / 8 (key bytes + 64 each) beside the caches. 0 = off.
   * @default 0
   */
  notFoundTtl?: number
  /**
   * For this many milliseconds after a value expires, a get answers the
   * stale value at once and starts one refresh in the background (through
   * the key's owner: one per key in the cluster), as RFC 5861's
   * stale-while-revalidate. Needs expiring values (`ttl`). 0 = off.
   * @default 0
   */
  staleWhileRevalidate?: number
  /**
   * For this many milliseconds after a value expires, a get whose load fails
   * (the origin failed; or the owner was unreachable and the local load
   * failed) answers the stale value instead of the error, as RFC 5861's
   * stale-if-error. Expired values are kept this long (or
   * staleWhileRevalidate, the longer). 0 = off.
   * @default 0
   */
  staleIfError?: number
}

/** SetOptions are the options of `group.set`. */
export interface SetOptions extends GetOptions {
  /** Time to live in milliseconds (default: the group's ttl). */
  ttl?: number
  /** Absolute expiry in epoch milliseconds (overrides ttl). */
  expiresAt?: number
}

/** GetOptions are a caller's options for one get. */
export interface GetOptions {
  /** Ends this caller's wait (rejecting with AbortError); a shared load goes on for others. */
  signal?: AbortSignal
}

/** validateGroupName throws InvalidArgumentError unless name is a usable group name. */
export function validateGroupName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError('group name must be a non-empty string')
  if (name.includes('/')) throw new InvalidArgumentError(`group name ${JSON.stringify(name)} must not contain "/"`)
  if (!name.isWellFormed()) throw new InvalidArgumentError('group name contains a lone surrogate')
  if (Buffer.byteLength(name, 'utf8') > MAX_GROUP_NAME_BYTES) {
    throw new InvalidArgumentError(`group name exceeds ${MAX_GROUP_NAME_BYTES} bytes`)
  }
}

/** validateGroupOptions refuses unknown names and bad values (InvalidArgumentError) before a group exists. */
export function validateGroupOptions(options: GroupOptions | TypedGroupOptions<unknown>, now: number): void {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('group options must be an object')
  checkOptionNames(options, GROUP_SCHEMA, 'group options')
  validateGroupName(options.name)
  if (options.load !== undefined && typeof options.load !== 'function') throw new InvalidArgumentError('group option load must be a function')
  checkInteger('cacheBytes', options.cacheBytes, 0)
  if (options.maxKeyBytes !== undefined) checkInteger('maxKeyBytes', options.maxKeyBytes, 1)
  if (options.hotCacheRatio !== undefined) checkInteger('hotCacheRatio', options.hotCacheRatio, 1)
  if (options.ttl !== undefined) checkTtl(options.ttl, now)
  if (options.ttlJitter !== undefined) checkInteger('ttlJitter', options.ttlJitter, 0)
  if (options.notFoundTtl !== undefined) checkInteger('notFoundTtl', options.notFoundTtl, 0)
  if (options.staleWhileRevalidate !== undefined) checkInteger('staleWhileRevalidate', options.staleWhileRevalidate, 0)
  if (options.staleIfError !== undefined) checkInteger('staleIfError', options.staleIfError, 0)
  if (options.hotCacheProbability !== undefined) checkProbability('hotCacheProbability', options.hotCacheProbability)
  if (options.coalesce !== undefined && typeof options.coalesce !== 'boolean') throw new InvalidArgumentError('coalesce must be a boolean')
  if (options.load === undefined) refuseLoaderOnly(options)
  const codec = options.codec as Partial<Codec<unknown>> | undefined
  if (codec !== undefined && (typeof codec?.encode !== 'function' || typeof codec.decode !== 'function')) {
    throw new InvalidArgumentError('group option codec must have encode and decode functions')
  }
}

/** LOADER_ONLY are the options that only a loader gives a use to: they remember or refresh what a loader said. */
const LOADER_ONLY = ['notFoundTtl', 'staleWhileRevalidate', 'staleIfError'] as const

/** refuseLoaderOnly throws InvalidArgumentError for a loader-only option set (above 0) in a group without `load`. */
function refuseLoaderOnly(options: GroupOptions | TypedGroupOptions<unknown>): void {
  for (const name of LOADER_ONLY) {
    if (options[name] !== undefined && options[name] !== 0) {
      throw new InvalidArgumentError(`group option ${name} needs load: a group without a loader has nothing to remember or refresh; drop ${name} or give the group a load`)
    }
  }
}
