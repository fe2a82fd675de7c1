/**
 * not-found: a group's memory of keys its loader said do not exist
 * (negative caching, group option `notFoundTtl`). Only the process that ran
 * the loader remembers, and that is the key's owner while the ring is agreed:
 * so repeated gets of a missing key, from any peer, reach the owner and are
 * answered "not found" without an origin load.
 *
 * Bounded twice: each key is forgotten `ttl` ms after its load, and the whole
 * memory holds at most `maxBytes` (key bytes + ENTRY_OVERHEAD each), least
 * recently used first out. `set`, `remove` and `clear` forget keys through
 * the group's local operations.
 */
import { LRUCache } from 'lru-cache'
import { NotFoundError } from '../errors.js'

/** ENTRY_OVERHEAD estimates what one remembered key costs beside its UTF-8 bytes (the record, the LRU's slots). */
export const ENTRY_OVERHEAD = 64

interface Remembered {
  readonly message: string
  readonly expiresAt: number
}

/** NotFoundMemory remembers not-found answers for a while. */
export class NotFoundMemory {
  readonly #ttl: number
  readonly #lru: LRUCache<string, Remembered>

  constructor(ttl: number, maxBytes: number) {
    this.#ttl = ttl
    this.#lru = new LRUCache<string, Remembered>({
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: (_, key) => Buffer.byteLength(key, 'utf8') + ENTRY_OVERHEAD,
    })
  }

  /** remember notes that key was not found at `now` (epoch ms). */
  remember(key: string, error: NotFoundError, now: number): void {
    this.#lru.set(key, { message: error.message, expiresAt: now + this.#ttl })
  }

  /** recall returns a NotFoundError for key while it is remembered, else undefined (an expired memory is dropped). */
  recall(key: string, now: number): NotFoundError | undefined {
    const remembered = this.#lru.get(key)
    if (remembered === undefined) return undefined
    if (remembered.expiresAt > now) return new NotFoundError(remembered.message)
    this.#lru.delete(key)
    return undefined
  }

  /** forget drops key (a set or remove made it exist again, or may have). */
  forget(key: string): void {
    this.#lru.delete(key)
  }

  /** clear forgets every key. */
  clear(): void {
    this.#lru.clear()
  }

  /** items is the number of keys remembered (expired ones included until they are looked up or pushed out). */
  get items(): number {
    return this.#lru.size
  }
}
