/**
 * ring-helpers: what the ring tests share: the Go-compatible ring's options,
 * a hash whose positions can be worked out by hand, a seeded shuffle and the
 * sample keys.
 */
import type { HashFn } from '../../src/ring.js'
import { mulberry32 } from './core-helpers.js'

/** GO is the ring every Go-compatibility test names explicitly: `balanced` is the default. */
export const GO = { ring: 'groupcache' } as const

/** decimalHash hashes decimal strings to their value, so ring positions can be worked out by hand. */
export const decimalHash: HashFn = (s) => Number.parseInt(s, 10) >>> 0

/** prng is a seeded PRNG, so the random cases are reproducible. */
export const prng = mulberry32

/** shuffled returns a copy of items in a random order drawn from `random`. */
export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

/** sampleKeys are 2,000 keys `key-{i}`. */
export const sampleKeys = Array.from({ length: 2000 }, (_, i) => `key-${i}`)
