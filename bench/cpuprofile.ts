/**
 * cpuprofile: `tsx bench/cpuprofile.ts DIR [--top 30] [--match dist/]` reads
 * every `.cpuprofile` (from `node --cpu-prof`, e.g. `npm run bench -- cluster
 * --cpu-prof DIR`) in DIR and prints where the time went, summed over the
 * profiles: self time by file, self time by function, and total (inclusive)
 * time of the functions whose file matches `--match`.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

/** ProfileNode is one node of V8's call tree, as `.cpuprofile` stores it. */
interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}

/** Profile is the JSON V8 writes: the call tree, and which node each sample hit. */
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

/** Totals are µs by name. */
type Totals = Map<string, number>

function add(totals: Totals, name: string, micros: number): void {
  totals.set(name, (totals.get(name) ?? 0) + micros)
}

/** shortFile turns a script URL into a readable path: from node_modules/ or dist/ on, or the builtin's name. */
function shortFile(url: string): string {
  if (url === '') return '(native / VM)'
  const path = url.replace(/^file:\/\//, '')
  for (const marker of ['node_modules/', 'dist/', 'bench/', 'demo/']) {
    const at = path.lastIndexOf(marker)
    if (at >= 0) return path.slice(at)
  }
  return path
}

function functionName(node: ProfileNode): string {
  const frame = node.callFrame
  const name = frame.functionName === '' ? '(anonymous)' : frame.functionName
  return frame.url === '' ? name : `${name} ${shortFile(frame.url)}:${frame.lineNumber + 1}`
}

/** Summary is the sums over every profile read. */
class Summary {
  totalMicros = 0
  readonly selfByFile: Totals = new Map()
  readonly selfByFunction: Totals = new Map()
  readonly totalByFunction: Totals = new Map()

  /** add sums one profile; a sample's time is the delta to the next sample. */
  add(profile: Profile, match: string): void {
    const byId = new Map(profile.nodes.map((node) => [node.id, node]))
    const parent = new Map<number, number>()
    for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
    for (let i = 0; i < profile.samples.length; i++) {
      const micros = profile.timeDeltas[i + 1] ?? 0
      const node = byId.get(profile.samples[i] as number)
      if (node === undefined) continue
      this.totalMicros += micros
      add(this.selfByFile, node.callFrame.url === '' ? functionName(node) : shortFile(node.callFrame.url), micros)
      add(this.selfByFunction, functionName(node), micros)
      this.#addInclusive(node, byId, parent, micros, match)
    }
  }

  /** #addInclusive credits the sample to every matching function on its stack, once each (recursion counted once). */
  #addInclusive(leaf: ProfileNode, byId: Map<number, ProfileNode>, parent: Map<number, number>, micros: number, match: string): void {
    const seen = new Set<string>()
    for (let node: ProfileNode | undefined = leaf; node !== undefined; node = byId.get(parent.get(node.id) ?? -1)) {
      if (!shortFile(node.callFrame.url).includes(match)) continue
      const name = functionName(node)
      if (seen.has(name)) continue
      seen.add(name)
      add(this.totalByFunction, name, micros)
    }
  }
}

function table(title: string, totals: Totals, of: number, top: number): string {
  const rows = [...totals].sort((a, b) => b[1] - a[1]).slice(0, top)
  const lines = [`${title}`, ...rows.map(([name, micros]) => `${((micros / of) * 100).toFixed(1).padStart(6)}%  ${(micros / 1000).toFixed(0).padStart(7)} ms  ${name}`)]
  return lines.join('\n')
}

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '30' }, match: { type: 'string', default: 'dist/' } } })
  const dir = positionals[0]
  if (dir === undefined) throw new Error('usage: tsx bench/cpuprofile.ts DIR [--top 30] [--match dist/]')
  const files = readdirSync(dir).filter((name) => name.endsWith('.cpuprofile'))
  const summary = new Summary()
  for (const file of files) summary.add(JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile, values.match)
  const top = Number(values.top)
  const of = summary.totalMicros
  console.log(`${files.length} profiles, ${(of / 1e6).toFixed(1)} s sampled\n`)
  console.log(table('self time by file', summary.selfByFile, of, top), '\n')
  console.log(table('self time by function', summary.selfByFunction, of, top), '\n')
  console.log(table(`total (inclusive) time of functions in files matching "${values.match}"`, summary.totalByFunction, of, top))
}

main()
