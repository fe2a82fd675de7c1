/**
 * logger: peercache logs through any pino-shaped object the user passes
 * (pino, bunyan-like, console wrappers). The default does nothing, so a
 * library never writes to the user's stdout uninvited.
 */

/** LogFn is pino's call shape: an object of fields, then a message. */
export type LogFn = (fields: Record<string, unknown>, message?: string) => void

/** Logger is the subset of pino peercache uses. */
export interface Logger {
  debug: LogFn
  info: LogFn
  warn: LogFn
  error: LogFn
}

/** noopLogger is the default logger: every level does nothing. */
export function noopLogger(): Logger {
  const noop: LogFn = () => {}
  return { debug: noop, info: noop, warn: noop, error: noop }
}
