/**
 * cluster-timeline: the first seconds of a cluster run's measured window,
 * half a second at a time: how many requests due then were served (as a
 * rate) and how long the slowest took. From a cold start this is where the
 * modes differ: how long each takes to reach its steady pace, which the
 * window's medians spread over the whole window.
 */
import type { Mode } from './cluster-caches.js'
import { median } from './cluster-ratios.js'
import { whole } from './format.js'

/** The window's first seconds are told apart in steps of this many ms (a cold start's warm-up shows there). */
export const TIMELINE_STEP_MS = 500
/** How many steps of the window's start are kept (TIMELINE_STEP_MS each). */
export const TIMELINE_STEPS = 10

/** TimelineStep is the requests due in one step of the window's start: how many were served, and the slowest. */
export interface TimelineStep {
  requests: number
  maxMs: number
}

/** TimedResult is what the table needs of a mode's result. */
interface TimedResult {
  mode: Mode
  timeline: readonly TimelineStep[]
}

/** medianTimeline is each step's median over the rounds (requests and slowest apart). */
export function medianTimeline(timelines: ReadonlyArray<readonly TimelineStep[]>): TimelineStep[] {
  const steps = Math.min(...timelines.map((t) => t.length))
  return Array.from({ length: Number.isFinite(steps) ? steps : 0 }, (_, i) => ({
    requests: median(timelines.map((t) => t[i]!.requests)),
    maxMs: median(timelines.map((t) => t[i]!.maxMs)),
  }))
}

/** timelineTable is one row per mode: each step's served req/s and slowest request, "req/s · ms". */
export function timelineTable(results: readonly TimedResult[]): string {
  const steps = Math.max(0, ...results.map((r) => r.timeline.length))
  if (steps === 0) return ''
  const seconds = (i: number): string => String((i * TIMELINE_STEP_MS) / 1000)
  const head = ['mode: served req/s · slowest', ...Array.from({ length: steps }, (_, i) => `${seconds(i)}–${seconds(i + 1)} s`)]
  const lines = [
    `The window's first ${seconds(steps)} s, by when each request was due (median over the rounds):`,
    '',
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
  ]
  for (const r of results) lines.push(`| ${r.mode} | ${r.timeline.map(cell).join(' | ')} |`)
  return lines.join('\n')
}

function cell(step: TimelineStep): string {
  return `${whole((step.requests * 1000) / TIMELINE_STEP_MS)} · ${step.maxMs.toFixed(0)} ms`
}
