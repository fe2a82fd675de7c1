/**
 * local bench: the hit path. `group.get` (an async call that copies the
 * value), `getString`, and the synchronous `peek`, over 1k cached keys,
 * against a raw lru-cache `get` of the same entries. Every measurement runs
 * in a fresh process (isolated.ts), and the baseline is measured before and
 * after each candidate. The typed suite compares a typed group's hit (the
 * decoded value kept beside the bytes) with JSON.parse of the same bytes.
 */
import { bracketed, type BenchRow } from './harness.js'
import { isolated } from './isolated.js'

const SUITE = 'local hit'
const TYPED_SUITE = 'typed hit'
const CASES = new URL('./local-cases.ts', import.meta.url)

/**
 * bench measures the local hit path against raw lru-cache get, and a typed
 * group's hit (decoded value kept) against JSON.parse of the same bytes.
 */
export async function bench(): Promise<BenchRow[]> {
  const run = (name: string) => () => isolated(CASES, name)
  const hits = await bracketed(SUITE, run('raw'), [run('peek'), run('get'), run('getString'), run('awaitRaw')])
  const typed = await bracketed(TYPED_SUITE, run('jsonParse'), [run('typedGet'), run('getJSON')])
  return [...hits, ...typed]
}
