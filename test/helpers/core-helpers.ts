/**
 * Helpers shared by the core tests (singleflight, cache, group). Tests
 * synchronise on promises they control, never on sleeps.
 */
import { expect } from 'vitest'

/** Deferred is a promise plus the functions that settle it. */
export interface Deferred<T> {
  promise: Promise<T>
  resolve: (value: T) => void
  reject: (reason: unknown) => void
}

/** deferred returns a promise the test settles when it chooses. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void
  let reject!: (reason: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/**
 * flushTasks lets every pending microtask and I/O callback run (one turn of
 * the event loop, no timer). Used only to show that something has NOT
 * happened yet, never to wait for something to happen.
 */
export function flushTasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/** settle reports how a promise ended, without throwing. */
export async function settle<T>(promise: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await promise }
  } catch (error) {
    return { ok: false, error }
  }
}

/** whenAborted resolves once signal has aborted (at once when it already has). */
export function whenAborted(signal: AbortSignal): Promise<unknown> {
  if (signal.aborted) return Promise.resolve(signal.reason)
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(signal.reason), { once: true }))
}

/** mulberry32 is the demo's seeded PRNG in [0, 1): the same seed gives the same sequence. */
export { mulberry32 } from '../../demo/zipf.js'

/** bytesOf returns the UTF-8 bytes of a string. */
export function bytesOf(text: string): Uint8Array {
  return new TextEncoder().encode(text)
}

/**
 * thrownMessage runs fn, expects it to throw an instance of type (with
 * `code` when given), and returns the error's message: the tests of what a
 * user is told compare messages.
 */
export function thrownMessage(fn: () => unknown, type: abstract new (...args: never[]) => Error, code?: string): string {
  let thrown: unknown
  try {
    fn()
  } catch (err) {
    thrown = err
  }
  expect(thrown).toBeInstanceOf(type)
  if (code !== undefined) expect((thrown as { code?: unknown }).code).toBe(code)
  return (thrown as Error).message
}
