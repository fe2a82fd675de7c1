/**
 * logger: peercache logs through any pino-shaped object the user passes
 * (pino, bunyan-like, console wrappers). Without one it writes its warnings
 * and errors to stderr (stderrLogger): a peer that is down, refuses us or
 * is configured differently must not go unnoticed by a newcomer. It never
 * writes to stdout, and `logger: false` silences it.
 */
import { DEFAULTS } from './options.js'

/** LogFn is pino's call shape: an object of fields, then a message. */
export type LogFn = (fields: Record<string, unknown>, message?: string) => void

/** Logger is the subset of pino peercache uses. */
export interface Logger {
  debug: LogFn
  info: LogFn
  warn: LogFn
  error: LogFn
}

/** noopLogger does nothing at every level (`logger: false`). */
export function noopLogger(): Logger {
  const noop: LogFn = () => {}
  return { debug: noop, info: noop, warn: noop, error: noop }
}

/** StderrLoggerOptions configure the default logger (for tests: where it writes). */
export interface StderrLoggerOptions {
  /** Where lines go. @default process.stderr */
  stream?: { write(line: string): unknown }
  /** How many subjects (peers, groups) it remembers a streak for; the oldest is forgotten first. @default 1024 */
  maxSubjects?: number
}

/**
 * stderrLogger is the default logger: `warn` and `error` become one line
 * each on stderr, `debug` and `info` are silent. Once per streak: a
 * message about a subject (its `peer`, else `group`, else `source`) is
 * written once, then dropped until an info about that subject ends the
 * streak ("peer marked up", "peer discovery answers again"), so a dead peer
 * costs a line or two, not one per key. Debug lines end nothing. Subjects
 * are remembered in a bounded map, the one heard from longest ago forgotten first.
 */
export function stderrLogger(options: StderrLoggerOptions = {}): Logger {
  const stream = options.stream ?? process.stderr
  const streaks = new StreakFilter(options.maxSubjects ?? DEFAULTS.logger.maxSubjects)
  const written: ReadonlySet<string> = new Set(DEFAULTS.logger.levels)
  // An info (a peer marked up, discovery answering again) ends its subject's streak; a debug line is only detail.
  const quiet = (name: keyof Logger): LogFn => (name === 'info' ? (fields) => streaks.ended(fields) : () => {})
  const level = (name: keyof Logger): LogFn => {
    if (!written.has(name)) return quiet(name)
    return (fields, message = '') => {
      if (!streaks.repeats(fields, message)) stream.write(formatLine(name, fields, message))
    }
  }
  return { debug: level('debug'), info: level('info'), warn: level('warn'), error: level('error') }
}

/** Messages remembered per subject: a subject logs a handful of distinct warnings at most. */
const MAX_MESSAGES_PER_SUBJECT = 16

/** StreakFilter remembers, per subject, the messages written since its last info, to drop their repeats. */
class StreakFilter {
  readonly #written = new Map<string, Set<string>>()
  readonly #max: number

  constructor(max: number) {
    this.#max = max
  }

  /** repeats is true when message was written about its subject since the subject's last info (drop it). */
  repeats(fields: Record<string, unknown>, message: string): boolean {
    const subject = subjectOf(fields)
    const written = this.#written.get(subject) ?? new Set<string>()
    if (written.has(message)) return true
    if (written.size >= MAX_MESSAGES_PER_SUBJECT) written.clear()
    written.add(message)
    // Re-inserted: the Map's first key is the subject heard from longest ago.
    this.#written.delete(subject)
    this.#written.set(subject, written)
    // Invariant: at most #max subjects are remembered.
    if (this.#written.size > this.#max) this.#written.delete(this.#written.keys().next().value as string)
    return false
  }

  /** ended ends the subject's streaks: an info about it (a recovery) was logged, so its next warning is news. */
  ended(fields: Record<string, unknown>): void {
    this.#written.delete(subjectOf(fields))
  }
}

/** subjectOf names what a log line is about: its peer, group or discovery source ('' for none). */
function subjectOf(fields: Record<string, unknown>): string {
  for (const name of ['peer', 'group', 'source']) {
    const value = fields[name]
    if (typeof value === 'string') return `${name}=${value}`
  }
  return ''
}

/** Longest line written, in characters: a field may carry a peer's error body. */
const MAX_LINE = 2000

/** formatLine writes `peercache warn: message key=value … err=Name: message` and a newline. */
export function formatLine(level: string, fields: Record<string, unknown>, message: string): string {
  let line = `peercache ${level}: ${message}`
  for (const [name, value] of Object.entries(fields)) {
    if (value !== undefined) line += ` ${name}=${formatValue(value)}`
  }
  if (line.length > MAX_LINE) line = `${line.slice(0, MAX_LINE)}…`
  return `${line.replace(/\n/g, ' ')}\n`
}

function formatValue(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`
  if (typeof value === 'string') return value
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}
