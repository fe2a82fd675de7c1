/**
 * option-checks: the Peercache options that interact, checked together at
 * construction, so that every combination either works or is refused there
 * (never accepted, then failing on the first request or at close()).
 *
 * - Every millisecond option drives a timer: above 2^31 - 1 ms Node fires it
 *   after 1 ms, so `timeout: 3e9` would time out every request at once.
 * - A down peer's first probe cannot wait longer than the longest probe (when both are given).
 * - The metrics path must be an absolute path outside the peer endpoint, or
 *   it would shadow (or be shadowed by) a group.
 */
import { InvalidArgumentError } from './errors.js'
import { checkTimerMs, describeValue } from './inputs.js'

/** CombinedOptions is the part of PeercacheOptions checked here (typed loosely: the values are what is checked). */
interface CombinedOptions {
  readonly [name: string]: unknown
  readonly serverTimeouts?: Readonly<Record<string, unknown>> | undefined
  readonly basePath?: string | undefined
}

const TIMER_OPTIONS = ['timeout', 'loadTimeout', 'connectTimeout', 'headersTimeout', 'bodyTimeout', 'probeMinMs', 'probeMaxMs', 'closeTimeout'] as const

/** checkCombinations refuses timer options out of range and options that contradict each other. */
export function checkCombinations(given: object): void {
  const options = given as CombinedOptions
  for (const name of TIMER_OPTIONS) {
    if (options[name] !== undefined) checkTimerMs(name, options[name], 1)
  }
  for (const [name, value] of Object.entries(options.serverTimeouts ?? {})) {
    if (value !== undefined) checkTimerMs(`serverTimeouts.${name}`, value, 1)
  }
  // Only both given can contradict: a probeMinMs alone above the default cap means "probe no sooner than that".
  const probeMinMs = options['probeMinMs'] as number | undefined
  const probeMaxMs = options['probeMaxMs'] as number | undefined
  if (probeMinMs !== undefined && probeMaxMs !== undefined && probeMinMs > probeMaxMs) throw new InvalidArgumentError(`probeMinMs (${probeMinMs}) must not exceed probeMaxMs (${probeMaxMs})`)
  checkMetricsPath(options['metricsPath'], options.basePath ?? '/_groupcache/')
  for (const name of ['clock', 'random'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function') throw new InvalidArgumentError(`${name} must be a function, got ${describeValue(options[name])}`)
  }
  const coalesce = options['coalesce']
  if (coalesce !== undefined && typeof coalesce !== 'boolean') throw new InvalidArgumentError(`coalesce must be a boolean, got ${describeValue(coalesce)}`)
}

/** checkMetricsPath refuses a metrics path that is not absolute or that lies under the peer endpoint. */
function checkMetricsPath(path: unknown, basePath: string): void {
  if (path === undefined) return
  if (typeof path !== 'string' || !path.startsWith('/')) throw new InvalidArgumentError(`metricsPath must be a path starting with "/", got ${describeValue(path)}`)
  if (path.startsWith(basePath) || path.startsWith('/_peercache/')) {
    throw new InvalidArgumentError(`metricsPath ${JSON.stringify(path)} must lie outside the peer endpoint (${basePath}, /_peercache/)`)
  }
}
