/**
 * recording-logger: a pino-shaped logger that keeps the messages of the
 * warn and info levels, so tests can check what was logged and how often.
 */
import type { Logger } from '../../src/index.js'

/** RecordingLogger is a Logger and what it recorded. */
export interface RecordingLogger {
  logger: Logger
  warns: string[]
  infos: string[]
}

/** recordingLogger makes a logger that records warn and info messages (debug and error are dropped). */
export function recordingLogger(): RecordingLogger {
  const warns: string[] = []
  const infos: string[] = []
  const noop = (): void => {}
  return { warns, infos, logger: { debug: noop, error: noop, warn: (_f, m) => warns.push(m ?? ''), info: (_f, m) => infos.push(m ?? '') } }
}
