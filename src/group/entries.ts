/**
 * entries: how values become cache entries and back. A loader's result or a
 * written value becomes an entry that owns its bytes (a copy: later changes
 * by the caller cannot reach the cache), with its expiry (ttl, jitter, the
 * loader's own) and, in a typed group, its decoded value kept beside the
 * bytes so a hit does not decode again. A read turns an entry into what the
 * caller gets: a Buffer copy, or the codec's value.
 */
import { ownedEntry, type CacheEntry } from '../cache.js'
import { copyOut, textDecoder, toBytes } from '../bytes.js'
import { decodeValue, encodeValue, sharesDecoded, type Codec } from '../codecs.js'
import { LoadError } from '../errors.js'
import { describeValue, expiryProblem } from '../inputs.js'
import type { LoadResult, SetOptions } from './options.js'

/** EntryClock is what entries need of the group's context: time for expiries, chance for jitter. */
export interface EntryClock {
  clock: () => number
  random: () => number
}

/** Entries makes and reads one group's entries (see the file comment). */
export class Entries<T> {
  /** The typed group's codec, or undefined (values are bytes). */
  readonly codec: Codec<T> | undefined
  /** True when decoded values are kept in the entries and shared (every codec but bytes()). */
  readonly #keepDecoded: boolean
  /** What a read hands the caller: a copy of the bytes, or the (kept) decoded value. */
  readonly output: (entry: CacheEntry) => T
  readonly #ttl: number
  readonly #ttlJitter: number
  readonly #time: EntryClock
  /**
   * The text of entries read as strings, decoded once per entry: a string
   * read (getString, getJSON) is the Map-like use, and decoding the bytes on
   * every hit cost more than the lookup. Weak: a text lives as long as its
   * entry does (it leaves with the entry's eviction), never past it.
   */
  readonly #texts = new WeakMap<CacheEntry, string>()

  constructor(codec: Codec<T> | undefined, ttl: number, ttlJitter: number, time: EntryClock) {
    this.codec = codec
    this.#keepDecoded = codec !== undefined && sharesDecoded(codec as Codec<unknown>)
    this.#ttl = ttl
    this.#ttlJitter = ttlJitter
    this.#time = time
    this.output = this.#outputOf(codec)
  }

  /** text is an entry's bytes as UTF-8, decoded at its first string read and kept beside it (see #texts). */
  readonly text = (entry: CacheEntry): string => {
    let text = this.#texts.get(entry)
    if (text === undefined) {
      text = textDecoder.decode(entry.value)
      this.#texts.set(entry, text)
    }
    return text
  }

  /**
   * fromLoader turns what the loader returned into an entry. `ttl` is the
   * load's (setTtl's), else the group's. A value of the wrong kind is the
   * loader's failure (LoadError) and says what to return instead.
   */
  fromLoader(key: string, loaded: unknown, ttl: number | undefined): CacheEntry {
    const defaultTtl = ttl ?? this.#ttl
    if (this.codec !== undefined) return this.decoded({ value: this.#encodeLoaded(key, loaded as T), expiresAt: this.#expiryFromTtl(defaultTtl) })
    const result = loaded as LoadResult
    if (typeof result === 'string' || result instanceof Uint8Array) return { value: ownBytes(result), expiresAt: this.#expiryFromTtl(defaultTtl) }
    if (result !== null && typeof result === 'object' && 'value' in result) {
      const value = result.value
      const problem = expiryProblem(result, this.#time.clock())
      if (problem !== undefined) throw new LoadError(`loader for key ${quoteKey(key)} returned a bad expiry: ${problem}`)
      if (typeof value === 'string' || value instanceof Uint8Array) return { value: ownBytes(value), expiresAt: this.#expiryOf(result, defaultTtl) }
    }
    throw new LoadError(
      `loader for key ${quoteKey(key)} returned ${describeValue(result)}, not a string or Uint8Array: ` +
        'return bytes, a string or { value, ttl }, or give the group a codec (codec: codecs.json()) to cache other values',
    )
  }

  /** forWrite turns a `set` value into the entry the owner stores (not decoded: the owner decodes). */
  forWrite(value: unknown, options: SetOptions): CacheEntry {
    const bytes = this.codec === undefined ? ownBytes(value as Uint8Array | string) : encodeValue(this.codec, value as T)
    return { value: bytes, expiresAt: this.#expiryOf(options, this.#ttl) }
  }

  /**
   * decoded returns entry with its decoded value kept beside the bytes
   * (typed groups, except codecs.bytes()): decoded once per value that enters
   * this process, shared by every hit. Other groups' entries are returned as
   * they are. Throws CodecError for bytes the codec cannot decode.
   */
  decoded(entry: CacheEntry): CacheEntry {
    if (!this.#keepDecoded) return entry
    // Own the bytes before decoding: a codec's decoded value may keep a view of them, and it is cached.
    const { value } = ownedEntry(entry)
    const decoded = decodeValue(this.codec as Codec<T>, value)
    if (entry.stale === true) return { value, expiresAt: entry.expiresAt, decoded, stale: true }
    return { value, expiresAt: entry.expiresAt, decoded }
  }

  /** decodedOrMiss is `decoded`, but bytes that do not decode are only a miss (a peeked value: the loader runs). */
  decodedOrMiss(entry: CacheEntry): CacheEntry | undefined {
    try {
      return this.decoded(entry)
    } catch {
      return undefined
    }
  }

  /** The loader's value through the codec: a value it cannot encode is the loader's failure. */
  #encodeLoaded(key: string, value: T): Uint8Array {
    try {
      return encodeValue(this.codec as Codec<T>, value)
    } catch (err) {
      throw new LoadError(`loader for key ${quoteKey(key)} returned a value the codec cannot encode: ${(err as Error).message}`, { cause: err })
    }
  }

  /** The read's output for this group's kind: a Buffer copy, a fresh decode (bytes()), or the kept decoded value. */
  #outputOf(codec: Codec<T> | undefined): (entry: CacheEntry) => T {
    if (codec === undefined) return entryCopy as (entry: CacheEntry) => T
    if (!this.#keepDecoded) return (entry) => decodeValue(codec, entry.value)
    return (entry) => entry.decoded as T
  }

  /** The expiry of a `{ value, ttl?, expiresAt? }` result: its own, else `ttl` (setTtl's, or the group's). */
  #expiryOf(result: { ttl?: number; expiresAt?: number }, ttl: number): number {
    if (result.expiresAt !== undefined) {
      if (!Number.isFinite(result.expiresAt) || result.expiresAt < 0) throw new LoadError('loader returned an invalid expiresAt')
      return Math.floor(result.expiresAt)
    }
    return this.#expiryFromTtl(result.ttl ?? ttl)
  }

  #expiryFromTtl(ttl: number): number {
    if (!Number.isFinite(ttl) || ttl < 0) throw new LoadError('loader returned an invalid ttl')
    if (ttl === 0) return 0
    const jitter = this.#ttlJitter > 0 ? Math.floor(this.#time.random() * Math.min(this.#ttlJitter, ttl - 1)) : 0
    return this.#time.clock() + ttl - jitter
  }
}

function entryCopy(entry: CacheEntry): Buffer {
  return copyOut(entry.value)
}

/** Copies the loader's bytes so later changes by the loader cannot reach the cache. */
function ownBytes(value: Uint8Array | string): Uint8Array {
  // new Uint8Array(view) copies into an exact-size buffer; Buffer#slice would be a view of the loader's memory.
  return typeof value === 'string' ? toBytes(value) : new Uint8Array(value)
}

/** quoteKey shows a key in a message without flooding it (keys can be 64 KiB). */
export function quoteKey(key: string): string {
  return JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}…` : key)
}
