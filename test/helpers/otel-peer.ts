/**
 * otel-peer: a peercache peer in its own process, traced by
 * PeercacheInstrumentation into the real OpenTelemetry SDK (otel-sdk.ts),
 * for test/integration/opentelemetry.test.ts.
 *
 *   PEERCACHE_SELF=http://127.0.0.1:PORT PEERCACHE_PEERS=... PEERCACHE_SECRET=... \
 *     TAG=owner SPANS_FILE=/tmp/x.json node --import tsx test/helpers/otel-peer.ts
 *
 * Configured from the environment like child-peer.ts, it creates group `kv`
 * whose loader runs inside a span of its own (`origin.query`, as an app's
 * database client would make) and answers `${TAG}:${key}`, or fails with
 * `origin down` for keys that start with `fail`. It listens on its self
 * URL's port and prints READY. One command on stdin: `spans` writes the
 * spans finished so far as JSON to SPANS_FILE, then prints `SPANS`.
 * SIGTERM closes it.
 */
import { writeFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { registerInstrumentations } from '@opentelemetry/instrumentation'
import { Peercache } from '../../src/index.js'
import { PeercacheInstrumentation } from '../../src/integrations/opentelemetry.js'
import { startSdk } from './otel-sdk.js'
import { closeOnSigterm } from './sigterm.js'

const tag = process.env.TAG ?? 'child'
const spansFile = process.env.SPANS_FILE
if (spansFile === undefined) throw new Error('otel-peer needs SPANS_FILE')

const sdk = startSdk()
registerInstrumentations({ instrumentations: [new PeercacheInstrumentation({ recordKeys: true })], tracerProvider: sdk.tracerProvider })
const origin = sdk.tracerProvider.getTracer('origin')

const cache = new Peercache({})
if (cache.self === undefined) throw new Error('otel-peer needs PEERCACHE_SELF')
cache.group({
  name: 'kv',
  cacheBytes: 1 << 20,
  load: (key) =>
    origin.startActiveSpan('origin.query', (span) => {
      span.end()
      if (key.startsWith('fail')) throw new Error('origin down')
      return `${tag}:${key}`
    }),
})

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line !== 'spans') return
  writeFileSync(spansFile, JSON.stringify(sdk.spans()))
  process.stdout.write('SPANS\n')
})

await cache.listen(Number(new URL(cache.self).port), '127.0.0.1')
closeOnSigterm(cache)
process.stdout.write('READY\n')
