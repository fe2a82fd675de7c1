/**
 * cluster-flags: the cluster bench's command line (`npm run bench -- cluster
 * …`), read into Flags. The load is closed loop unless `--rate` is given;
 * `--cold` and `--alone` change how a mode starts and what the apps are, and
 * combine with either load.
 */
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { MODES, type Mode } from './cluster-caches.js'

/** The modes an `--alone` run compares: peercache with no peers against the same app on a Map (Redis has no "alone"). */
export const ALONE_MODES: readonly Mode[] = ['peercache', 'map']
/** The warm-up a mode gets before it is measured unless `--warmup`/`--warmup-requests` say otherwise: at least this long, and this many requests. */
export const DEFAULT_WARMUP = { secs: 5, requests: 100_000 } as const
/** The open loop's share of the Map's closed-loop max when `--rate` has no number (or `auto`). */
export const AUTO_RATE_SHARE = 0.6

/** Flags are the cluster bench's command-line options. */
export interface Flags {
  secs: number
  warmupSecs: number
  warmupRequests: number
  rounds: number
  modes: Mode[]
  cpuProfDir: string | undefined
  /** Open loop: requests/s over the apps, 'auto' (a share of the Map's closed-loop max, measured first), or undefined (closed loop). */
  rate: number | 'auto' | undefined
  /** Open loop: the most requests in flight at once. */
  maxInFlight: number
  cold: boolean
  alone: boolean
}

/** parseFlags reads the cluster flags from `npm run bench`'s arguments (suite names are positionals). */
export function parseFlags(argv: readonly string[]): Flags {
  const { values } = parseArgs({
    args: withRateValue(argv),
    allowPositionals: true,
    options: {
      secs: { type: 'string', default: '20' },
      warmup: { type: 'string', default: String(DEFAULT_WARMUP.secs) },
      'warmup-requests': { type: 'string', default: String(DEFAULT_WARMUP.requests) },
      rounds: { type: 'string', default: '1' },
      modes: { type: 'string' },
      'cpu-prof': { type: 'string' },
      rate: { type: 'string' },
      'max-in-flight': { type: 'string', default: '1024' },
      cold: { type: 'boolean', default: false },
      alone: { type: 'boolean', default: false },
    },
  })
  const alone = values.alone
  const modes = parseModes(values.modes ?? (alone ? ALONE_MODES : MODES).join(','), alone)
  const dir = values['cpu-prof']
  const rounds = Math.max(1, count('--rounds', values.rounds))
  return {
    secs: seconds('--secs', values.secs),
    warmupSecs: seconds('--warmup', values.warmup),
    warmupRequests: count('--warmup-requests', values['warmup-requests']),
    // --alone compares two orders of the same pair: at least one round of each.
    rounds: alone ? Math.max(2, rounds) : rounds,
    modes,
    cpuProfDir: dir === undefined ? undefined : resolve(dir),
    rate: parseRate(values.rate),
    maxInFlight: Math.max(1, count('--max-in-flight', values['max-in-flight'])),
    cold: values.cold,
    alone,
  }
}

/**
 * withRateValue lets `--rate` stand without a value (`--rate --secs 5`,
 * `--rate cluster`, or last): parseArgs would take the next argument as its
 * value, or fail; it then means `--rate auto`.
 */
function withRateValue(argv: readonly string[]): string[] {
  const args = [...argv]
  for (let i = 0; i < args.length; i++) {
    if (args[i] !== '--rate') continue
    const next = args[i + 1]
    // A suite name (a lowercase word) or a flag after it is not its value; anything else is, and is checked.
    if (next === undefined || next.startsWith('-') || (next !== 'auto' && /^[a-z]+$/.test(next))) args.splice(i + 1, 0, 'auto')
  }
  return args
}

function parseModes(raw: string, alone: boolean): Mode[] {
  const modes = raw.split(',').filter((m) => m !== '')
  const allowed = alone ? ALONE_MODES : MODES
  const unknown = modes.filter((m) => !allowed.includes(m as Mode))
  if (unknown.length > 0 || modes.length === 0) throw new Error(`--modes takes a comma-separated list of ${allowed.join(', ')}${alone ? ' with --alone' : ''}; got ${raw}`)
  return modes as Mode[]
}

function parseRate(raw: string | undefined): number | 'auto' | undefined {
  if (raw === undefined) return undefined
  if (raw === 'auto') return 'auto'
  const rate = Number(raw)
  if (!Number.isFinite(rate) || rate < 1 || rate > 1e6) throw new Error(`--rate takes requests per second from 1 to 1000000, or auto (${AUTO_RATE_SHARE * 100}% of the Map's closed-loop max); got ${raw}`)
  return rate
}

function count(flag: string, raw: string): number {
  const value = Number(raw)
  if (raw.trim() === '' || !Number.isInteger(value) || value < 0 || value > 1e8) throw new Error(`${flag} takes a whole number from 0 to 100000000, got ${raw}`)
  return value
}

function seconds(flag: string, raw: string): number {
  const value = Number(raw)
  if (raw.trim() === '' || !Number.isFinite(value) || value < 1 || value > 3600) throw new Error(`${flag} takes seconds from 1 to 3600, got ${raw}`)
  return value
}

/** variantName names a run's variant for its headings and BENCHMARKS.md section: rate, cold, alone, or closed. */
export function variantName(flags: Pick<Flags, 'rate' | 'cold' | 'alone'>): 'closed' | 'rate' | 'cold' | 'alone' {
  if (flags.alone) return 'alone'
  if (flags.cold) return 'cold'
  return flags.rate !== undefined ? 'rate' : 'closed'
}
