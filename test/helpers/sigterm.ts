/**
 * sigterm: how every child-process peer of the tests stops: SIGTERM closes
 * the Peercache (gracefully, with its drain) and exits 0, or 1 if close failed.
 */
import type { Peercache } from '../../src/index.js'

/** closeOnSigterm makes SIGTERM close cache once, then exit. */
export function closeOnSigterm(cache: Peercache): void {
  let closing = false
  process.on('SIGTERM', () => {
    if (closing) return
    closing = true
    cache.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  })
}
