/**
 * otel-store: the store peercache's OpenTelemetry spans bind to each
 * tracing channel's `start`, so that a traced call runs with its span's
 * context active (a loader's own spans nest under its load span).
 *
 * diagnostics_channel calls a bound store's `run(value, fn)` up to Node 25.8,
 * and from 25.9 its `withScope(value)`, a scope it disposes after the call;
 * an AsyncLocalStorage has both. OpenTelemetry's context is not an
 * AsyncLocalStorage but a context manager behind `context`: `run` is
 * `context.with`, and `withScope` is the manager's `attach` (experimental,
 * in @opentelemetry/context-async-hooks 2.x, reached through the API's
 * `_getContextManager`). A manager without `attach` leaves the call in its
 * caller's context: its spans are still made and linked (they find their
 * parents through the traced calls, otel-spans.ts); only spans the traced
 * call makes itself lose their parent.
 */
import type { AsyncLocalStorage } from 'node:async_hooks'
import { context, type Context } from '@opentelemetry/api'

/** Scope is what withScope returns: disposing it restores the previous context. */
interface Scope {
  [Symbol.dispose](): void
}

/** Attachable is the part of a context manager withScope uses (its `attach` is experimental, so it may be absent). */
interface Attachable {
  attach?(active: Context): { dispose?(): void; [Symbol.dispose]?(): void }
}

const NO_SCOPE: Scope = { [Symbol.dispose]() {} }

/** contextStore is the store (see the file comment), typed as the AsyncLocalStorage diagnostics_channel asks for. */
export function contextStore(): AsyncLocalStorage<Context> {
  const store = {
    run: <R>(active: Context, fn: () => R): R => context.with(active, fn),
    withScope: (active: Context): Scope => attach(active),
  }
  return store as unknown as AsyncLocalStorage<Context>
}

/** attach makes active the current context until the returned scope is disposed, when the manager can. */
function attach(active: Context): Scope {
  const manager = (context as unknown as { _getContextManager?(): Attachable })._getContextManager?.()
  const token = manager?.attach?.(active)
  if (token === undefined) return NO_SCOPE
  const dispose = token[Symbol.dispose] ?? token.dispose
  return { [Symbol.dispose]: () => dispose?.call(token) }
}
