/**
 * gather: waits for several DNS answers, but not for ever for the slow ones.
 * A resolver that answers A and drops AAAA (a broken IPv6 path is common),
 * or an SRV target whose name does not resolve in time, must not fail a
 * refresh that has answers to use. So once the lookup's patience is over,
 * what answered is used and what did not is left out.
 */

/** Outcome is one task's result so far: its answer, its error, or undefined while it is still pending. */
export type Outcome<T> = { answer: T[] } | { error: unknown } | undefined

/**
 * gather waits until every task settled or, once `patience` resolves, until
 * at least one task gave a non-empty answer (at once if one already has).
 * It returns each task's outcome at that moment, in order. It never rejects:
 * the caller decides what a failure is. Invariant: it waits no longer than
 * its slowest task, whose bound is the refresh's signal (cancelled queries
 * reject), so it ends when the refresh does.
 */
export async function gather<T>(tasks: ReadonlyArray<Promise<T[]>>, patience: Promise<void>): Promise<Array<Outcome<T>>> {
  const outcomes: Array<Outcome<T>> = tasks.map(() => undefined)
  let answered!: () => void
  const firstAnswer = new Promise<void>((resolve) => (answered = resolve))
  const settled = tasks.map((task, i) =>
    task.then(
      (answer) => {
        outcomes[i] = { answer }
        if (answer.length > 0) answered()
      },
      (error: unknown) => {
        outcomes[i] = { error }
      },
    ),
  )
  const all = Promise.all(settled)
  await Promise.race([all, patience.then(() => Promise.race([all, firstAnswer]))])
  return [...outcomes]
}

/** answersOf returns every answer an outcome list holds, in order. */
export function answersOf<T>(outcomes: ReadonlyArray<Outcome<T>>): T[] {
  return outcomes.flatMap((outcome) => (outcome !== undefined && 'answer' in outcome ? outcome.answer : []))
}

/** firstError returns the first error an outcome list holds, or a stand-in naming what did not answer in time. */
export function firstError<T>(outcomes: ReadonlyArray<Outcome<T>>, what: string): unknown {
  for (const outcome of outcomes) if (outcome !== undefined && 'error' in outcome) return outcome.error
  return new Error(`${what}: no answer in time`)
}
