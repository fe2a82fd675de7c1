/**
 * close-while-listening: a process that calls `cache.listen()` and, before
 * the server has bound, `cache.close()`; for test/integration/lifecycle.test.ts.
 *
 *   node --import tsx test/helpers/close-while-listening.ts
 *
 * It prints how listen() ended (`listened` or the error's code) and then
 * does nothing: if close() left the server open, the process never exits.
 */
import { Peercache } from '../../src/index.js'

const cache = new Peercache({ env: {} })
const listening = cache.listen(0, '127.0.0.1')
const closed = cache.close()
const outcome = await listening.then(
  () => 'listened',
  (err: unknown) => (err as { code?: string }).code ?? String(err),
)
await closed
process.stdout.write(`${outcome}\n`)
