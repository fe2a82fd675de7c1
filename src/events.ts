/**
 * events: the typed notifications a Peercache emits, through mitt and through
 * node:diagnostics_channel (channels `peercache:<event>`, e.g.
 * `peercache:load`, for APMs and tracers). Listening is opt-in and free when
 * nobody listens: emit points check `wants(type)` before building a payload,
 * so the hit path allocates nothing for events.
 */
import diagnostics from 'node:diagnostics_channel'
import mittImport, { type Emitter } from 'mitt'
import type { CacheName } from './cache.js'
import type { Logger } from './logger.js'

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
  /** The peer list changed (setPeers or discovery) and the ring was rebuilt: who joined, who left, the whole new list. */
  'peers-changed': { added: string[]; removed: string[]; peers: readonly string[] }
  /**
   * A get was answered with a value past its expiry (`expiredAt`, epoch ms):
   * within staleWhileRevalidate while a refresh runs, or within staleIfError
   * because the load failed (that failure is logged, and the owner's or the
   * local `load-error` event told it).
   */
  stale: { group: string; key: string; expiredAt: number }
}

/** PeercacheEmitter is the mitt emitter type users subscribe on (`cache.events.on('hit', …)`). */
export type PeercacheEmitter = Emitter<PeercacheEvents>

/** createEmitter makes a new emitter for one Peercache instance (never shared). */
export function createEmitter(): PeercacheEmitter {
  return mitt<PeercacheEvents>()
}

/** EVENT_NAMES lists every event, in the order documented above. */
export const EVENT_NAMES = ['hit', 'miss', 'load', 'load-error', 'evict', 'peer-error', 'peer-down', 'peer-up', 'peers-changed', 'stale'] as const satisfies ReadonlyArray<keyof PeercacheEvents>

/** channelName is the diagnostics_channel name of an event: `peercache:<event>`. */
export function channelName(type: keyof PeercacheEvents): string {
  return `peercache:${type}`
}

/**
 * Notifier delivers an event to the instance's mitt emitter and to its
 * diagnostics channel. Channels are process-wide by design of
 * diagnostics_channel (that is how tracers find them); the payload names
 * the group, and subscribers tell instances apart by it.
 */
export class Notifier {
  readonly emitter: PeercacheEmitter
  readonly #channels: Record<keyof PeercacheEvents, diagnostics.Channel>
  readonly #logger: Logger

  constructor(emitter: PeercacheEmitter, logger: Logger) {
    this.emitter = emitter
    this.#logger = logger
    this.#channels = Object.fromEntries(EVENT_NAMES.map((type) => [type, diagnostics.channel(channelName(type))])) as Record<
      keyof PeercacheEvents,
      diagnostics.Channel
    >
  }

  /** wants is true when a mitt listener or a channel subscriber would receive `type` (cheap when nobody listens). */
  wants(type: keyof PeercacheEvents): boolean {
    return (this.emitter.all.size !== 0 && wants(this.emitter, type)) || this.#channels[type].hasSubscribers
  }

  /** emit delivers the payload; call it only after wants(type), so idle emit points cost nothing. */
  emit<K extends keyof PeercacheEvents>(type: K, payload: PeercacheEvents[K]): void {
    // mitt's own emit would let a throwing listener escape into the get (and skip the others).
    const all = this.emitter.all
    for (const handler of (all.get(type)?.slice() ?? []) as Array<(event: unknown) => unknown>) this.#call(type, () => handler(payload))
    for (const handler of (all.get('*')?.slice() ?? []) as Array<(type: string, event: unknown) => unknown>) this.#call(type, () => handler(type, payload))
    const channel = this.#channels[type]
    if (channel.hasSubscribers) channel.publish(payload)
  }

  /** Runs one listener; its throw or rejection is logged, never passed on. */
  #call(type: keyof PeercacheEvents, listener: () => unknown): void {
    try {
      const result = listener()
      if (isThenable(result)) result.then(undefined, (err: unknown) => this.#listenerFailed(type, err))
    } catch (err) {
      this.#listenerFailed(type, err)
    }
  }

  #listenerFailed(type: keyof PeercacheEvents, err: unknown): void {
    this.#logger.error({ err, event: type }, 'peercache event listener failed')
  }

  /** healthListener logs a peer going down (warn) or coming back (info) and emits `peer-down` / `peer-up`. */
  healthListener(): { down(peer: string, error: Error): void; up(peer: string): void } {
    return {
      down: (peer, error) => {
        this.#logger.warn({ peer, err: error }, 'peer marked down')
        if (this.wants('peer-down')) this.emit('peer-down', { peer, error })
      },
      up: (peer) => {
        this.#logger.info({ peer }, 'peer marked up')
        if (this.wants('peer-up')) this.emit('peer-up', { peer })
      },
    }
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function'
}

/** wants tells whether anyone listens to `type` (or to every event), so callers can skip building a payload. */
export function wants(emitter: PeercacheEmitter, type: keyof PeercacheEvents): boolean {
  const all = emitter.all
  return (all.get(type)?.length ?? 0) > 0 || (all.get('*')?.length ?? 0) > 0
}
