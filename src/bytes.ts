/**
 * bytes: conversions between strings and the bytes peercache stores. Values
 * are stored as exact-size Uint8Arrays (not Buffers cut from Node's shared
 * 8 KiB pool), so a small cached value never pins a larger slab and the byte
 * accounting stays true.
 */

/** textDecoder decodes UTF-8 values for getString (stateless, safe to share). */
export const textDecoder = new TextDecoder('utf-8')

const textEncoder = new TextEncoder()

/** toBytes encodes a string as UTF-8 into an array of exactly its size. */
export function toBytes(value: string): Uint8Array {
  return textEncoder.encode(value)
}

/** concatChunks joins body chunks into one exact-size array. */
export function concatChunks(chunks: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.byteLength
  }
  return out
}

/**
 * copyOut returns a caller-owned copy of cached bytes. It takes its memory
 * from Node's Buffer pool (allocUnsafe + set), about six times faster than
 * Uint8Array.prototype.slice for small values; the pool is fine here, since
 * the copy belongs to the caller, not to the cache's accounting.
 */
export function copyOut(value: Uint8Array): Buffer {
  const copy = Buffer.allocUnsafe(value.byteLength)
  copy.set(value)
  return copy
}
