/**
 * profile-layers: CPU profile samples summed by layer (node:http, net and
 * streams, undici, the peer client, the peer endpoint, protobuf, the group
 * and its caches, UTF-8 coding, the app, GC, …), so that two runs (peercache
 * and the Map at the same offered rate) can be compared layer by layer in µs
 * per request. A sample belongs to the layer of the frame nearest its leaf
 * that names one: a native function (`writev`) or a generic Node internal
 * (events, promises) counts for the code that called it, so a socket write
 * is net's and an emit is its emitter's.
 */

/** Frame is the part of a V8 call frame the layers read. */
export interface Frame {
  functionName: string
  url: string
}

/** Rule maps a frame to a layer: the first rule that matches names it. */
interface Rule {
  layer: string
  test(frame: Frame): boolean
}

const url = (...parts: string[]) => (frame: Frame) => parts.some((part) => frame.url.includes(part))
const named = (...names: string[]) => (frame: Frame) => frame.url === '' && names.includes(frame.functionName)

/** RULES, most specific first. */
const RULES: readonly Rule[] = [
  { layer: 'GC', test: named('(garbage collector)') },
  { layer: 'V8 (program)', test: named('(program)') },
  { layer: 'UTF-8 coding (Buffer toString/write, TextDecoder)', test: (f) => named('utf8Slice', 'latin1Slice', 'asciiSlice', 'utf8Write', 'decodeUTF8', 'encodeInto', 'encodeUtf8String')(f) || url('node:internal/encoding')(f) },
  { layer: 'undici', test: url('node_modules/undici/') },
  { layer: 'ioredis', test: url('node_modules/ioredis/', 'node_modules/redis-parser/', 'node_modules/denque/') },
  { layer: 'protobuf (peercache codec, protobufjs)', test: url('dist/proto/', 'node_modules/protobufjs/', 'node_modules/@protobufjs/') },
  { layer: 'peer endpoint (answering: handler, serve)', test: url('dist/peers/handler', 'dist/peers/serve', 'dist/peers/batch-answer', 'dist/peers/paths', 'dist/endpoint/') },
  { layer: 'peer client (asking: batcher, client, pool, exchange)', test: url('dist/peers/') },
  { layer: 'group (group, flights, stats, admission, caches) + lru-cache', test: url('dist/', 'node_modules/lru-cache/') },
  { layer: 'app + bench harness (serve, Map, IPC)', test: url('/bench/', '/demo/') },
  { layer: 'node:http', test: url('node:_http', 'node:http') },
  { layer: 'net + streams (socket writes and reads: answers, peer traffic)', test: url('node:net', 'node:stream', 'node:internal/stream', 'node:internal/streams/', 'node:internal/net') },
  { layer: 'timers + microtask queue', test: url('node:internal/process/task_queues', 'node:internal/timers', 'node:timers') },
]

/** OTHER is the layer of a sample no frame on its stack names. */
const OTHER = 'other (Node internals, natives)'

/** layerOf is the layer of the frame nearest the leaf that names one (`stack` runs leaf first). */
export function layerOf(stack: Iterable<Frame>): string {
  for (const frame of stack) {
    for (const rule of RULES) if (rule.test(frame)) return rule.layer
  }
  return OTHER
}

/** LayerTotals are µs of busy (not idle) samples by layer. */
export type LayerTotals = Map<string, number>

/** layerTable compares µs per request by layer: this run, the other run ("against"), and the difference. */
export function layerTable(mine: { layers: LayerTotals; requests: number }, against?: { layers: LayerTotals; requests: number }, names = ['this', 'against']): string {
  const perReq = (run: { layers: LayerTotals; requests: number }, layer: string): number => (run.layers.get(layer) ?? 0) / run.requests
  const layers = [...new Set([...mine.layers.keys(), ...(against?.layers.keys() ?? [])])]
  const sortKey = (layer: string): number => perReq(mine, layer) - (against === undefined ? 0 : perReq(against, layer))
  layers.sort((a, b) => sortKey(b) - sortKey(a))
  const busy = (run: { layers: LayerTotals }): number => [...run.layers.values()].reduce((sum, v) => sum + v, 0)
  // Sampled µs are the main thread's; cpuUsage also counts V8's and libuv's other threads and the profilers'
  // own work, and on a loaded machine the sampler misses ticks: trust the shares more than the µs.
  const head = against === undefined ? ['layer', `${names[0]} µs/req (sampled)`, 'share of busy'] : ['layer', `${names[0]} µs/req`, `${names[1]} µs/req`, `${names[0]} − ${names[1]}`, 'share of the difference']
  const lines = [`| ${head.join(' | ')} |`, `|---|${head.slice(1).map(() => '---:').join('|')}|`]
  const fmt = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '—')
  const pct = (n: number): string => (Number.isFinite(n) ? `${(n * 100).toFixed(0)}%` : '—')
  const total = 'total (busy samples)'
  const figure = (run: { layers: LayerTotals; requests: number }, layer: string): number => (layer === total ? busy(run) / run.requests : perReq(run, layer))
  for (const layer of [...layers, total]) {
    const m = figure(mine, layer)
    if (against === undefined) {
      lines.push(`| ${layer} | ${fmt(m)} | ${pct(m / figure(mine, total))} |`)
      continue
    }
    const a = figure(against, layer)
    lines.push(`| ${layer} | ${fmt(m)} | ${fmt(a)} | ${fmt(m - a)} | ${pct((m - a) / (figure(mine, total) - figure(against, total)))} |`)
  }
  return lines.join('\n')
}
