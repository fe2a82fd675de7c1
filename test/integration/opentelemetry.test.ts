/**
 * One trace across two processes (peercache/opentelemetry): this process
 * asks, a child process (test/helpers/otel-peer.ts) owns the keys, each with
 * its own OpenTelemetry SDK and PeercacheInstrumentation, requests signed
 * with a shared secret. A get of a cold key the child owns yields one trace:
 * the asker's get → its fetch (W3C traceparent on the request) → the owner's
 * serve → the owner's load → the owner's own origin span. A coalesced batch
 * carries its first get's context; a failing origin is recorded on both
 * sides.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import type { Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SpanKind, SpanStatusCode } from '@opentelemetry/api'
import { registerInstrumentations } from '@opentelemetry/instrumentation'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { HashRing, Peercache, serverUrl } from '../../src/index.js'
import { PeercacheInstrumentation } from '../../src/integrations/opentelemetry.js'
import { command, reservePorts, startChild, stopCluster, type ChildPeer } from '../helpers/child-procs.js'
import { listenLocal } from '../helpers/cluster.js'
import { startSdk, type OtelSdk, type SpanRecord } from '../helpers/otel-sdk.js'

const OTEL_PEER = fileURLToPath(new URL('../helpers/otel-peer.ts', import.meta.url))
const SECRET = 'the otel test cluster shares this secret'

let sdk: OtelSdk
let deregister: () => void
let dir: string
let owner: ChildPeer
let asker: Peercache
let askerServer: Server
let peers: string[]

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'peercache-otel-'))
  askerServer = await listenLocal()
  const [ownerUrl] = (await reservePorts(1)) as [string]
  peers = [serverUrl(askerServer), ownerUrl]
  owner = await startChild('owner', ownerUrl, peers, { PEERCACHE_SECRET: SECRET, SPANS_FILE: join(dir, 'spans.json') }, OTEL_PEER)
  sdk = startSdk()
  deregister = registerInstrumentations({ instrumentations: [new PeercacheInstrumentation({ recordKeys: true })], tracerProvider: sdk.tracerProvider })
  asker = new Peercache({ env: {}, self: serverUrl(askerServer), peers, secret: SECRET, hotCacheProbability: 0 })
  asker.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => `asker:${key}` })
  askerServer.on('request', asker.handler())
}, 60_000)

afterAll(async () => {
  deregister()
  await stopCluster(asker, askerServer, [owner])
  await sdk.shutdown()
  rmSync(dir, { recursive: true, force: true })
})

beforeEach(() => sdk.resetSpans())

/** ownedKeys returns n keys `${prefix}-<i>` the ring gives to the child. */
function ownedKeys(prefix: string, n: number): string[] {
  const ring = new HashRing(peers)
  const keys: string[] = []
  for (let i = 0; keys.length < n; i++) if (ring.pick(`${prefix}-${i}`) === owner.url) keys.push(`${prefix}-${i}`)
  return keys
}

/** ownerSpans reads the spans the child finished, those of the trace given. */
async function ownerSpans(traceId: string): Promise<SpanRecord[]> {
  await command(owner, 'spans', 'SPANS')
  const all = JSON.parse(readFileSync(join(dir, 'spans.json'), 'utf8')) as SpanRecord[]
  return all.filter((span) => span.traceId === traceId)
}

function one(spans: readonly SpanRecord[], name: string, key?: string): SpanRecord {
  const found = spans.filter((span) => span.name === name && (key === undefined || span.attributes['peercache.key'] === key))
  expect(found, `${name} ${key ?? ''}`).toHaveLength(1)
  return found[0]!
}

describe('a trace across two processes', () => {
  it('a cold key the other process owns: asker get → asker fetch → owner serve → owner load → the origin’s span', async () => {
    const [key] = ownedKeys('cold', 1) as [string]
    expect(await asker.getGroup('kv')!.getString(key)).toBe(`owner:${key}`)
    const mine = sdk.spans()
    const get = one(mine, 'peercache.get')
    const fetch = one(mine, 'peercache.fetch')
    expect(mine).toHaveLength(2)
    expect(get).toMatchObject({ kind: SpanKind.INTERNAL, parentSpanId: undefined })
    expect(get.attributes).toMatchObject({ 'peercache.hit': false, 'peercache.source': 'peer', 'peercache.status': 'ok' })
    expect(fetch).toMatchObject({ kind: SpanKind.CLIENT, traceId: get.traceId, parentSpanId: get.spanId })
    const port = Number(new URL(owner.url).port)
    expect(fetch.attributes).toMatchObject({ 'peercache.peer': owner.url, 'server.address': '127.0.0.1', 'server.port': port, 'peercache.key': key })

    const theirs = await ownerSpans(get.traceId)
    const serve = one(theirs, 'peercache.serve')
    const load = one(theirs, 'peercache.load')
    const query = one(theirs, 'origin.query')
    expect(theirs).toHaveLength(3)
    expect(serve).toMatchObject({ kind: SpanKind.SERVER, parentSpanId: fetch.spanId })
    expect(serve.attributes).toEqual({ 'peercache.group': 'kv', 'peercache.key': key, 'peercache.batch.size': 1, 'peercache.source': 'local', 'peercache.status': 'ok' })
    expect(load).toMatchObject({ kind: SpanKind.INTERNAL, parentSpanId: serve.spanId })
    expect(query.parentSpanId).toBe(load.spanId)
  })

  it('a coalesced batch carries its first get’s trace: one serve span, sized, over the owner’s loads', async () => {
    const keys = ownedKeys('batched', 3)
    expect(await Promise.all(keys.map((key) => asker.getGroup('kv')!.getString(key)))).toEqual(keys.map((key) => `owner:${key}`))
    const mine = sdk.spans()
    const first = one(mine, 'peercache.fetch', keys[0])
    for (const key of keys) expect(one(mine, 'peercache.fetch', key).parentSpanId).toBe(one(mine, 'peercache.get', key).spanId)
    const theirs = await ownerSpans(first.traceId)
    const serve = one(theirs, 'peercache.serve')
    expect(serve.parentSpanId).toBe(first.spanId)
    expect(serve.attributes).toMatchObject({ 'peercache.batch.size': 3, 'peercache.source': 'local' })
    expect(serve.attributes).not.toHaveProperty('peercache.key')
    const loads = theirs.filter((span) => span.name === 'peercache.load')
    expect(loads.map((span) => span.attributes['peercache.key']).sort()).toEqual([...keys].sort())
    for (const load of loads) expect(load.parentSpanId).toBe(serve.spanId)
  })

  it('a failing origin: the error is recorded on the owner’s load and serve, and on the asker’s fetch and get', async () => {
    const [key] = ownedKeys('fail', 1) as [string]
    await expect(asker.getGroup('kv')!.get(key)).rejects.toThrow('origin down')
    const mine = sdk.spans()
    const get = one(mine, 'peercache.get')
    const fetch = one(mine, 'peercache.fetch')
    for (const span of [get, fetch]) {
      expect(span.status.code).toBe(SpanStatusCode.ERROR)
      expect(span.attributes).toMatchObject({ 'peercache.status': 'error', 'error.type': 'ERR_PEERCACHE_LOAD_FAILED' })
    }
    const theirs = await ownerSpans(get.traceId)
    const serve = one(theirs, 'peercache.serve')
    const load = one(theirs, 'peercache.load')
    expect(serve.parentSpanId).toBe(fetch.spanId)
    expect(load).toMatchObject({ parentSpanId: serve.spanId, status: { code: SpanStatusCode.ERROR, message: 'origin down' }, exceptions: ['origin down'] })
    expect(serve.status.code).toBe(SpanStatusCode.ERROR)
    expect(serve.exceptions).toHaveLength(1)
  })
})
