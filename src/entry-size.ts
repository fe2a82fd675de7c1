/**
 * entry-size: what one cached entry costs against a group's budget, and the
 * copies that keep the budget honest (a value that owns exactly its bytes; a
 * value of its own for an entry that outlives a slab chunk's reuse).
 */
import type { CacheEntry } from './cache.js'
import { chunkBytes } from './slab.js'

/**
 * ENTRY_OVERHEAD_BYTES is what one entry costs on the heap beyond its key and
 * value bytes, counted in its size so that the budget bounds memory whatever
 * the entry sizes (8 MB of 5-byte entries once held 1.68 M entries in 663 MB).
 * Measured on Node 20 x64 (`npm run bench -- memory`, BENCHMARKS.md): the
 * lru-cache Map slot and index arrays with their growth slack (~110 B), the
 * key string's header (~24 B), the CacheEntry object (~40 B), the Uint8Array
 * and its ArrayBuffer objects (~200 B).
 */
export const ENTRY_OVERHEAD_BYTES = 400

/**
 * OFF_HEAP_OVERHEAD_BYTES is what a value too large for a slab chunk (over
 * 1 MiB) costs beyond its bytes: the malloc'd backing store of its own and
 * its bookkeeping (V8 BackingStore, ArrayBufferExtension, allocator headers)
 * and the fragmentation of freed ones. Measured with ENTRY_OVERHEAD_BYTES.
 * A value of 65 bytes to 1 MiB counts its slab chunk (slab.ts) instead.
 */
export const OFF_HEAP_OVERHEAD_BYTES = 512

/** Largest typed array V8 keeps on its heap (V8_TYPED_ARRAY_MAX_SIZE_IN_HEAP). */
export const ON_HEAP_MAX_BYTES = 64

/**
 * entrySize is what one entry costs against the budget: its key's UTF-8
 * bytes, its value's storage (its bytes on V8's heap up to 64 bytes, else
 * its slab chunk, else its bytes and their backing store's overhead), its
 * bytes once more when a decoded value is kept beside them, and the
 * measured memory overhead of an entry.
 */
export function entrySize(entry: CacheEntry, key: string): number {
  const valueBytes = entry.value.byteLength
  const decoded = entry.decoded === undefined ? 0 : valueBytes
  return Buffer.byteLength(key, 'utf8') + storedBytes(valueBytes) + decoded + ENTRY_OVERHEAD_BYTES
}

/** storedBytes is what a value of valueBytes takes where it is kept (see entrySize). */
export function storedBytes(valueBytes: number): number {
  if (valueBytes <= ON_HEAP_MAX_BYTES) return valueBytes
  return chunkBytes(valueBytes) ?? valueBytes + OFF_HEAP_OVERHEAD_BYTES
}

/**
 * detached is entry with a value of its own. A cached entry's value is a
 * view of a slab chunk that the cache gives to another value once this one
 * is evicted, at the next store: an entry that outlives the current
 * synchronous step (a promise's result, a stale answer kept across a load)
 * must be detached first.
 */
export function detached(entry: CacheEntry): CacheEntry {
  const copy: { value: Uint8Array; expiresAt: number; decoded?: unknown; stale?: true } = { value: entry.value.slice(), expiresAt: entry.expiresAt }
  if (entry.decoded !== undefined) copy.decoded = entry.decoded
  if (entry.stale === true) copy.stale = true
  return copy
}

/**
 * ownedEntry is entry with a value that owns exactly its bytes. Invariant:
 * every cached value does, so the budget counts what it pins and nobody
 * else's buffer changes it. A peer's answer is a view of the response body
 * (codec.ts): it is copied here, when it is kept, not for every get.
 */
export function ownedEntry(entry: CacheEntry): CacheEntry {
  const value = entry.value
  // A value of up to ON_HEAP_MAX_BYTES is copied whatever it is: V8 keeps
  // such an array on its heap, and reading its `buffer` would move it to a
  // malloc'd store of its own (hundreds of bytes per cached value, measured
  // in the memory bench), while a copy of it is cheap and stays on the heap.
  if (value.byteLength > ON_HEAP_MAX_BYTES && value.byteOffset === 0 && value.byteLength === value.buffer.byteLength) return entry
  return { ...entry, value: new Uint8Array(value) }
}
