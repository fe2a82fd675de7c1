/**
 * previous: previous-owner peeking, as galaxycache does it. When the ring
 * changes (a deploy, a scale-up), keys move to new owners whose caches are
 * empty; their old owners still hold them. A new owner about to load a key
 * from the origin first peeks the key's previous owner: a cache-only read
 * that never makes that peer load. Any failure is only a miss.
 */
import type { CacheEntry } from '../cache.js'
import type { Peer } from '../peer.js'

/** peekOwner asks peer's cache for key; resolves undefined on a miss, an expired entry or any failure but the caller's abort. */
export async function peekOwner(
  peer: Peer,
  group: string,
  key: string,
  signal: AbortSignal | undefined,
  clock: () => number,
): Promise<CacheEntry | undefined> {
  if (peer.peek === undefined) return undefined
  try {
    const entry = await peer.peek(group, key, signal === undefined ? {} : { signal })
    if (entry === undefined || (entry.expiresAt !== 0 && entry.expiresAt <= clock())) return undefined
    return entry
  } catch (err) {
    if (signal?.aborted) throw err
    return undefined
  }
}
