/**
 * profiles: `tsx bench/profiles.ts DIR [--top 30] [--match dist/]
 * [--against DIR2]` reads the
 * profiles in DIR (from `npm run bench -- cluster --cpu-prof DIR`: one
 * folder per mode; or any `node --cpu-prof` output) and prints where the
 * time and the allocations went, summed over the profiles: CPU self time by
 * file and by function, total (inclusive) time of the functions whose file
 * matches `--match` (shares of the busy, not idle, time), and sampled
 * allocations by function. With the window's
 * request count (window.json, written by the cluster bench) every figure is
 * also given per request, and the busy time by layer (profile-layers.ts);
 * `--against DIR2` (the Map's folder of the same run) prints each layer's µs
 * per request beside DIR2's and the difference: what DIR's mode costs more,
 * layer by layer.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { parseArgs } from 'node:util'
import { layerOf, layerTable, type Frame, type LayerTotals } from './profile-layers.js'

/** CallFrame is where a profile node's code is. */
interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
}

/** CpuProfile is what V8's CPU profiler writes: the call tree, and which node each sample hit. */
interface CpuProfile {
  nodes: Array<{ id: number; callFrame: CallFrame; children?: number[] }>
  samples: number[]
  timeDeltas: number[]
}

/** HeapNode is a node of V8's sampling heap profile: bytes allocated right there, and its callees. */
interface HeapNode {
  callFrame: CallFrame
  selfSize: number
  children: HeapNode[]
}

/** Totals are amounts by name. */
type Totals = Map<string, number>

function add(totals: Totals, name: string, amount: number): void {
  totals.set(name, (totals.get(name) ?? 0) + amount)
}

/** shortFile turns a script URL into a readable path: from node_modules/ or dist/ on, or the builtin's name. */
function shortFile(url: string): string {
  const path = url.replace(/^file:\/\//, '')
  for (const marker of ['node_modules/', 'dist/', 'bench/', 'demo/']) {
    const at = path.lastIndexOf(marker)
    if (at >= 0) return path.slice(at)
  }
  return path
}

function functionName(frame: CallFrame): string {
  const name = frame.functionName === '' ? '(anonymous)' : frame.functionName
  return frame.url === '' ? name : `${name} ${shortFile(frame.url)}:${frame.lineNumber + 1}`
}

function fileName(frame: CallFrame): string {
  return frame.url === '' ? functionName(frame) : shortFile(frame.url)
}

/** CpuSummary sums CPU profiles. */
class CpuSummary {
  micros = 0
  idleMicros = 0
  readonly selfByFile: Totals = new Map()
  readonly selfByFunction: Totals = new Map()
  readonly totalByFunction: Totals = new Map()
  readonly layers: LayerTotals = new Map()
  readonly #match: string

  constructor(match: string) {
    this.#match = match
  }

  /**
   * add sums one profile; a sample's time is the delta to the next sample.
   * The layers count each sample as one sampling interval (the profile's
   * median delta) instead: on a loaded machine a delta also holds the time
   * the process waited for a core, charged to whatever it was doing.
   */
  add(profile: CpuProfile): void {
    const tick = medianDelta(profile.timeDeltas)
    const byId = new Map(profile.nodes.map((node) => [node.id, node]))
    const parent = new Map<number, number>()
    for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
    for (let i = 0; i < profile.samples.length; i++) {
      const micros = profile.timeDeltas[i + 1] ?? 0
      const node = byId.get(profile.samples[i] as number)
      if (node === undefined) continue
      this.micros += micros
      if (node.callFrame.functionName === '(idle)') {
        this.idleMicros += micros
        continue
      }
      add(this.selfByFile, fileName(node.callFrame), micros)
      add(this.selfByFunction, functionName(node.callFrame), micros)
      const stack: Frame[] = []
      // Credit every matching function on the stack once (recursion counted once).
      const seen = new Set<string>()
      for (let at: number | undefined = node.id; at !== undefined; at = parent.get(at)) {
        const frame = (byId.get(at) as { callFrame: CallFrame }).callFrame
        stack.push(frame)
        const name = functionName(frame)
        if (!shortFile(frame.url).includes(this.#match) || seen.has(name)) continue
        seen.add(name)
        add(this.totalByFunction, name, micros)
      }
      add(this.layers, layerOf(stack), tick)
    }
  }
}

/** medianDelta is a profile's sampling interval in µs: the median time between samples. */
function medianDelta(deltas: readonly number[]): number {
  const sorted = deltas.filter((d) => d > 0).sort((a, b) => a - b)
  return sorted[sorted.length >> 1] ?? 0
}

/** AllocationSummary sums sampling heap profiles. */
class AllocationSummary {
  bytes = 0
  readonly byFunction: Totals = new Map()
  readonly byFile: Totals = new Map()

  add(node: HeapNode): void {
    this.bytes += node.selfSize
    if (node.selfSize > 0) {
      add(this.byFunction, functionName(node.callFrame), node.selfSize)
      add(this.byFile, fileName(node.callFrame), node.selfSize)
    }
    for (const child of node.children) this.add(child)
  }
}

/** table prints the top rows of `totals`: share of `of`, the amount, and the amount per request. */
function table(title: string, totals: Totals, of: number, top: number, unit: (amount: number) => string, requests: number): string {
  const rows = [...totals].sort((a, b) => b[1] - a[1]).slice(0, top)
  const perRequest = (amount: number): string => (requests > 0 ? `${unit(amount / requests).padStart(10)}/req` : '')
  return [title, ...rows.map(([name, amount]) => `${((amount / of) * 100).toFixed(1).padStart(6)}%  ${perRequest(amount)}  ${name}`)].join('\n')
}

function read<T>(dir: string, suffix: string): T[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith(suffix))
    .map((name) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as T)
}

/** Run is one folder's profiles summed, with its window's request count and the apps' CPU time (from window.json). */
interface Run {
  cpu: CpuSummary
  cpuProfiles: number
  requests: number
  cpuMicros: number
}

function summarize(dir: string, match: string): Run {
  const windowFile = join(dir, 'window.json')
  const window = existsSync(windowFile) ? (JSON.parse(readFileSync(windowFile, 'utf8')) as { requests: number; cpuMicros?: number }) : { requests: 0 }
  const cpu = new CpuSummary(match)
  const cpuProfiles = read<CpuProfile>(dir, '.cpuprofile')
  for (const profile of cpuProfiles) cpu.add(profile)
  return { cpu, cpuProfiles: cpuProfiles.length, requests: window.requests, cpuMicros: window.cpuMicros ?? Number.NaN }
}

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '30' }, match: { type: 'string', default: 'dist/' }, against: { type: 'string' } } })
  const dir = positionals[0]
  if (dir === undefined) throw new Error('usage: tsx bench/profiles.ts DIR [--top 30] [--match dist/] [--against DIR2]')
  const top = Number(values.top)
  const run = summarize(dir, values.match)
  const { cpu, requests } = run
  const us = (micros: number): string => `${micros.toFixed(1)} µs`
  console.log(`${run.cpuProfiles} CPU profiles, ${(cpu.micros / 1e6).toFixed(1)} s sampled (${((cpu.idleMicros / cpu.micros) * 100).toFixed(0)}% idle), ${requests} requests in the window\n`)
  // Shares are of the busy (not idle) time. The times are wall-clock samples: on a loaded machine a function
  // preempted by another process is charged for the wait, so trust the shares more than the µs.
  const busy = cpu.micros - cpu.idleMicros
  console.log(table('CPU self time by file (share of busy time)', cpu.selfByFile, busy, top, us, requests), '\n')
  console.log(table('CPU self time by function', cpu.selfByFunction, busy, top, us, requests), '\n')
  console.log(table(`CPU total (inclusive) time of functions in files matching "${values.match}"`, cpu.totalByFunction, busy, top, us, requests), '\n')
  if (requests > 0) printLayers(run, dir, values.against, values.match)
  const allocations = new AllocationSummary()
  const heapProfiles = read<{ head: HeapNode }>(dir, '.heapprofile')
  for (const profile of heapProfiles) allocations.add(profile.head)
  if (heapProfiles.length === 0) return
  const bytes = (amount: number): string => `${amount.toFixed(0)} B`
  console.log(`${heapProfiles.length} allocation profiles, ${(allocations.bytes / 2 ** 20).toFixed(1)} MiB allocated (sampled estimate)\n`)
  console.log(table('allocated bytes by file', allocations.byFile, allocations.bytes, top, bytes, requests), '\n')
  console.log(table('allocated bytes by function', allocations.byFunction, allocations.bytes, top, bytes, requests))
}

/** printLayers prints busy time by layer per request, beside `againstDir`'s when given. */
function printLayers(run: Run, dir: string, againstDir: string | undefined, match: string): void {
  const mine = { layers: run.cpu.layers, requests: run.requests }
  const measured = (r: Run): string => (Number.isFinite(r.cpuMicros) ? `${(r.cpuMicros / r.requests).toFixed(1)} µs/req measured by cpuUsage` : 'no cpuUsage in window.json')
  if (againstDir === undefined) {
    console.log(`CPU by layer (${measured(run)}; a sample is one sampling interval, and its nearest layer-naming frame's)\n${layerTable(mine)}\n`)
    return
  }
  const other = summarize(againstDir, match)
  const names = [basename(dir), basename(againstDir)]
  console.log(`CPU by layer, ${names[0]} (${measured(run)}) against ${names[1]} (${measured(other)})\n`)
  console.log(`${layerTable(mine, { layers: other.cpu.layers, requests: other.requests }, names)}\n`)
}

main()
