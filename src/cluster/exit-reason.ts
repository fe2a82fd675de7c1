/**
 * exit-reason: how a forkPeerWorkers worker tells its primary why it is
 * dying. The primary only sees an exit code; the reason (EADDRINUSE: the
 * peer port is taken) is in the worker. clusterPeers, in a worker that
 * forkPeerWorkers forked, watches for the uncaught error that kills the
 * process (`uncaughtExceptionMonitor`: it observes, the process still dies
 * as it would) and sends its code and message over the cluster's IPC
 * channel before the process exits.
 */

/** EXIT_REASON_TYPE marks the IPC message; anything else the app sends is ignored. */
const EXIT_REASON_TYPE = 'peercache:worker-exit-reason'

/** MAX_REASON_CHARS bounds the reason a worker can make its primary keep and log. */
const MAX_REASON_CHARS = 300

/** ExitReasonMessage is the IPC message a dying worker sends. */
interface ExitReasonMessage {
  type: typeof EXIT_REASON_TYPE
  reason: string
}

/** exitReasonOf returns the reason a worker's IPC message carries, or undefined for any other message. */
export function exitReasonOf(message: unknown): string | undefined {
  if (typeof message !== 'object' || message === null) return undefined
  const { type, reason } = message as Partial<ExitReasonMessage>
  return type === EXIT_REASON_TYPE && typeof reason === 'string' ? reason.slice(0, MAX_REASON_CHARS) : undefined
}

/** sendExitReason is the monitor a worker installs: it reports the error that kills it (code, then message). */
function sendExitReason(err: unknown): void {
  const code = (err as { code?: unknown } | null)?.code
  const text = err instanceof Error ? err.message : String(err)
  const reason = (typeof code === 'string' && !text.includes(code) ? `${code}: ${text}` : text).slice(0, MAX_REASON_CHARS)
  const message: ExitReasonMessage = { type: EXIT_REASON_TYPE, reason }
  try {
    process.send?.(message)
  } catch {
    // The channel is already closed: the primary falls back to the exit code.
  }
}

/**
 * reportExitReasonToPrimary makes this process send the primary the error
 * that kills it, once (a second call adds nothing). Only in a worker of
 * forkPeerWorkers (it set PEERCACHE_WORKER_INDEX and the IPC channel): a
 * PM2 worker's messages go to PM2.
 */
export function reportExitReasonToPrimary(env: Record<string, string | undefined>): void {
  if (env.PEERCACHE_WORKER_INDEX === undefined || process.send === undefined) return
  if (process.listeners('uncaughtExceptionMonitor').includes(sendExitReason)) return
  process.on('uncaughtExceptionMonitor', sendExitReason)
}
