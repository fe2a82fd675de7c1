/**
 * abort-fanout: one 'abort' listener per signal, however many waits share
 * it. A caller that hands one signal to many gets at once (getMany over 20
 * keys, a request-scoped signal) would otherwise add a listener per key to
 * it, and Node warns past 10 (MaxListenersExceededWarning). Rule: an
 * AbortFanout adds one listener to a signal while any wait on it is
 * pending, and removes it when the last one settles.
 */
import { AbortError, TimeoutError } from './errors.js'

/** Waiting is one signal's listener and the waits it will reject. */
interface Waiting {
  readonly onAbort: () => void
  readonly rejects: Set<() => void>
}

/** AbortFanout makes promises abortable by a signal, with one listener per signal for all of them. */
export class AbortFanout {
  /** Only signals with pending waits are here (each entry is removed with its listener). */
  readonly #waiting = new Map<AbortSignal, Waiting>()

  /**
   * wait settles with `promise`, or rejects with an AbortError carrying the
   * signal's reason as soon as `signal` aborts, whichever comes first.
   */
  wait<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
    if (signal.aborted) return Promise.reject(toAbortError(signal.reason))
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => reject(toAbortError(signal.reason))
      this.#add(signal, onAbort)
      promise.then(
        (value) => {
          this.#remove(signal, onAbort)
          resolve(value)
        },
        (err: unknown) => {
          this.#remove(signal, onAbort)
          reject(err)
        },
      )
    })
  }

  #add(signal: AbortSignal, reject: () => void): void {
    let waiting = this.#waiting.get(signal)
    if (waiting === undefined) {
      const rejects = new Set<() => void>()
      const onAbort = (): void => {
        this.#waiting.delete(signal)
        for (const rejectOne of rejects) rejectOne()
      }
      waiting = { onAbort, rejects }
      this.#waiting.set(signal, waiting)
      signal.addEventListener('abort', onAbort, { once: true })
    }
    waiting.rejects.add(reject)
  }

  #remove(signal: AbortSignal, reject: () => void): void {
    const waiting = this.#waiting.get(signal)
    if (waiting === undefined || !waiting.rejects.delete(reject) || waiting.rejects.size > 0) return
    signal.removeEventListener('abort', waiting.onAbort)
    this.#waiting.delete(signal)
  }
}

/**
 * toAbortError wraps a signal's reason in our typed AbortError (kept as
 * `cause`): a TimeoutError when the signal timed out (AbortSignal.timeout).
 */
export function toAbortError(reason: unknown): AbortError {
  if (reason instanceof AbortError) return reason
  const why = reason instanceof Error ? reason.message : String(reason)
  if ((reason as Error | null)?.name === 'TimeoutError') return new TimeoutError(`timed out: ${why}`, { cause: reason })
  return new AbortError(`aborted: ${why}`, { cause: reason })
}
