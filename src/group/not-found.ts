/**
 * not-found: a group's memory of keys its loader said do not exist
 * (negative caching, group option `notFoundTtl`). Only the process that ran
 * the loader remembers, and that is the key's owner while the ring is agreed:
 * so repeated gets of a missing key, from any peer, reach the owner and are
 * answered "not found" without an origin load.
 *
 * Bounded twice: each key is forgotten `ttl` ms after its load, and the whole
 * memory holds at most `maxBytes`, least recently used first out. Rule: the
 * count is what the memory keeps on the heap — the key's and the message's
 * characters as V8 stores them (stringBytes) plus ENTRY_OVERHEAD — and it
 * keeps only the message, truncated to MAX_MESSAGE_CHARS and copied (never
 * the error object, its stack or a string it was sliced from), so a loader
 * with long messages cannot hold more than the cap. `set`, `remove` and
 * `clear` forget keys through the group's local operations.
 */
import { LRUCache } from 'lru-cache'
import { NotFoundError } from '../errors.js'

/**
 * ENTRY_OVERHEAD is what one remembered key costs beside its characters: the
 * two strings' headers, the record and its expiry, the LRU's slots and the
 * slack its Map and arrays keep once keys churn through it. Measured on
 * Node 20 (heap after GC, 60,000 distinct keys through a 1 MiB memory):
 * about 185 bytes while it only fills, up to about 330 once it evicts.
 */
export const ENTRY_OVERHEAD = 320

/** MAX_MESSAGE_CHARS is the longest message kept per key; a longer one is truncated (the key is in the asker's hands anyway). */
export const MAX_MESSAGE_CHARS = 256

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
      sizeCalculation: (remembered, key) => stringBytes(key) + stringBytes(remembered.message) + ENTRY_OVERHEAD,
    })
  }

  /** remember notes that key was not found at `now` (epoch ms), keeping its message truncated. */
  remember(key: string, error: NotFoundError, now: number): void {
    this.#lru.set(key, { message: keptMessage(error.message), expiresAt: now + this.#ttl })
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

  /** bytes is what the memory counts it holds (see the file comment); never above maxBytes. */
  get bytes(): number {
    return this.#lru.calculatedSize
  }

  /** items is the number of keys remembered (expired ones included until they are looked up or pushed out). */
  get items(): number {
    return this.#lru.size
  }
}

/**
 * keptMessage is the message truncated to MAX_MESSAGE_CHARS and flattened
 * into a string of its own: a slice or a concatenation can keep a much
 * longer string alive, which the count would not see.
 */
function keptMessage(message: string): string {
  const truncated = message.length > MAX_MESSAGE_CHARS ? message.slice(0, MAX_MESSAGE_CHARS) : message
  return ONE_BYTE.test(truncated) ? Buffer.from(truncated, 'latin1').toString('latin1') : Buffer.from(truncated, 'utf16le').toString('utf16le')
}

/** ONE_BYTE matches a string V8 stores one byte a character (Latin-1 only). */
const ONE_BYTE = /^[\u0000-\u00ff]*$/

/** stringBytes is what a string's characters take in V8: one byte each if all are Latin-1, else two. */
function stringBytes(text: string): number {
  return ONE_BYTE.test(text) ? text.length : 2 * text.length
}
