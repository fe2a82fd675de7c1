/**
 * events: the typed notifications a Peercache emits, through mitt. Listening
 * is opt-in and free when nobody listens: emitters check `wants(type)` before
 * building a payload, so the hit path allocates nothing for events.
 */
import mittImport, { type Emitter } from 'mitt'
import type { CacheName } from './cache.js'

// mitt ships ESM at run time but CJS-shaped types, so under NodeNext the
// default import is typed as the module object: accept either shape.
const mitt = (typeof mittImport === 'function' ? mittImport : mittImport.default) as typeof mittImport.default

/** PeercacheEvents maps each event name to its payload. */
export type PeercacheEvents = {
  /** A get was answered from a cache. */
  hit: { group: string; key: string; cache: CacheName }
  /** A get found nothing cached and went to load (possibly joining a load in flight). */
  miss: { group: string; key: string }
  /** A value was loaded: by this process's loader (`local`) or fetched from its owner (`peer`). */
  load: { group: string; key: string; durationMs: number; source: 'local' | 'peer'; peer?: string }
  /** The loader (or the owner's loader) failed for this key. */
  'load-error': { group: string; key: string; error: Error }
  /** An entry was pushed out of a cache to make room. */
  evict: { group: string; key: string; cache: CacheName; bytes: number }
  /** A peer could not answer; the key was loaded locally instead. */
  'peer-error': { group: string; key: string; peer: string; error: Error }
  /** A peer was marked down after failures; its keys go elsewhere until it is back. */
  'peer-down': { peer: string; error: Error }
  /** A peer that was down answered a probe again. */
  'peer-up': { peer: string }
}

/** PeercacheEmitter is the mitt emitter type users subscribe on (`cache.events.on('hit', …)`). */
export type PeercacheEmitter = Emitter<PeercacheEvents>

/** createEmitter makes a new emitter for one Peercache instance (never shared). */
export function createEmitter(): PeercacheEmitter {
  return mitt<PeercacheEvents>()
}

/** wants tells whether anyone listens to `type` (or to every event), so callers can skip building a payload. */
export function wants(emitter: PeercacheEmitter, type: keyof PeercacheEvents): boolean {
  const all = emitter.all
  return (all.get(type)?.length ?? 0) > 0 || (all.get('*')?.length ?? 0) > 0
}
