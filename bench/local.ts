/**
 * local bench: the hit path. `group.get` (an async call that copies the
 * value), `getString`, and the synchronous `peek`, over 1k cached keys,
 * against a raw lru-cache `get` of the same entries. Every measurement runs
 * in a fresh process (isolated.ts), and the baseline is measured before and
 * after each candidate.
 */
import { bracketed, type BenchRow } from './harness.js'
import { isolated } from './isolated.js'

const SUITE = 'local hit'
const CASES = new URL('./local-cases.ts', import.meta.url)

/** bench measures the local hit path against raw lru-cache get. */
export function bench(): Promise<BenchRow[]> {
  const run = (name: string) => () => isolated(CASES, name)
  return bracketed(SUITE, run('raw'), [run('peek'), run('get'), run('getString'), run('awaitRaw')])
}
