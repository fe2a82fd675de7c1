/**
 * A typed door onto parse-prometheus-text-format (a real Prometheus text
 * parser, ported from the Python client's), which ships no types.
 *
 * The library groups a histogram's samples in a way that loses labels: it
 * merges the `_bucket` lines of every label set into one `buckets` object and
 * drops the labelled `_sum`/`_count` lines. `parseSamples` therefore also
 * offers every sample line with its own labels, parsed by the same library:
 * the text with its `# TYPE` lines removed, so each series is an untyped
 * family of its own name.
 */
import { createRequire } from 'node:module'

/** ParsedSample is one sample of a counter, gauge or untyped family. */
export interface ParsedSample {
  value?: string
  labels?: Record<string, string>
  /** Histogram families only: le → cumulative count (labels lost, see above). */
  buckets?: Record<string, string>
  count?: string
  sum?: string
}

/** ParsedFamily is one metric family as the library returns it. */
export interface ParsedFamily {
  name: string
  help: string
  type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED'
  metrics: ParsedSample[]
}

const require = createRequire(import.meta.url)
const parse = require('parse-prometheus-text-format') as (text: string) => ParsedFamily[]

/** parsePrometheus parses exposition text into families (throws on an invalid line). */
export function parsePrometheus(text: string): ParsedFamily[] {
  return parse(text)
}

/** FlatSample is one sample line: its full name (with any _bucket/_sum/_count suffix), labels and value. */
export interface FlatSample {
  name: string
  labels: Record<string, string>
  value: number
}

/** parseSamples returns every sample line of the text with its own labels (see the file comment). */
export function parseSamples(text: string): FlatSample[] {
  const untyped = text
    .split('\n')
    .filter((line) => !line.startsWith('# TYPE '))
    .join('\n')
  return parse(untyped).flatMap((family) =>
    family.metrics.map((m) => ({ name: family.name, labels: m.labels ?? {}, value: toNumber(m.value ?? 'NaN') })),
  )
}

/** toNumber reads a sample value as Prometheus writes it (+Inf, -Inf, NaN included). */
export function toNumber(text: string): number {
  if (text === '+Inf') return Infinity
  if (text === '-Inf') return -Infinity
  return Number(text)
}
