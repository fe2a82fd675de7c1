/**
 * format: how the benchmarks' tables print a figure, so that every table
 * prints it alike; a figure that is not a number (a mode without a
 * redis-server) prints as a dash.
 */

/** whole prints a count or a rate, rounded, with thousands separators. */
export function whole(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '—'
}

/** ms prints milliseconds with one decimal. */
export function ms(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(1)} ms` : '—'
}

/** us prints microseconds, whole. */
export function us(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(0)} µs` : '—'
}

/** pct prints a share as a percentage with one decimal. */
export function pct(share: number): string {
  return Number.isFinite(share) ? `${(share * 100).toFixed(1)}%` : '—'
}
