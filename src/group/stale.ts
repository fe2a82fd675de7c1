/**
 * stale: when a group may answer with a value past its expiry, with the
 * meanings of RFC 5861's Cache-Control extensions:
 *
 *  - within `staleWhileRevalidate` ms after expiry, a get answers the stale
 *    value at once and one refresh starts in the background (through the
 *    key's owner, so one per key in the cluster);
 *  - within `staleIfError` ms after expiry, a get that has to load (past the
 *    first window, or a refresh) answers the stale value when the load
 *    fails: the origin failed, or the owner was unreachable and the local
 *    load failed too.
 *
 * Past both windows an entry is dropped and never served. Entries stay in
 * the caches for the longer window (CachePair's `staleMs`), so the group sees
 * them and asks this policy what to do.
 */
import type { CacheEntry } from '../cache.js'

/** StalePolicy is a group's two windows, in ms after an entry's expiry. */
export class StalePolicy {
  readonly whileRevalidate: number
  readonly ifError: number

  constructor(whileRevalidate: number, ifError: number) {
    this.whileRevalidate = whileRevalidate
    this.ifError = ifError
  }

  /** grace is how long past expiry an entry must be kept: the longer window. */
  get grace(): number {
    return Math.max(this.whileRevalidate, this.ifError)
  }

  /** fresh is true while entry has not expired at `now`. */
  fresh(entry: CacheEntry, now: number): boolean {
    return entry.expiresAt === 0 || entry.expiresAt > now
  }

  /** revalidating is true when an expired entry is within staleWhileRevalidate: answer it, refresh behind. */
  revalidating(entry: CacheEntry, now: number): boolean {
    return now - entry.expiresAt < this.whileRevalidate
  }

  /**
   * usableOnError is true when, a load having failed, entry may still be
   * answered: within either window (within staleWhileRevalidate it would be
   * answered anyway).
   */
  usableOnError(entry: CacheEntry, now: number): boolean {
    return now - entry.expiresAt < this.grace
  }
}

/** markStale returns entry flagged as a stale answer (a copy: the cached entry stays as it is). */
export function markStale(entry: CacheEntry): CacheEntry {
  return entry.stale === true ? entry : { ...entry, stale: true }
}
