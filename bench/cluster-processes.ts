/**
 * cluster-processes: every process the cluster benchmark has running, so
 * that each is stopped by its PID on every path: the end of a mode, an
 * error, Ctrl-C, SIGTERM, and (SIGKILL, synchronously) the parent's exit.
 */

/** Stoppable is a process we started: graceful stop, or SIGKILL now. */
export interface Stoppable {
  stop(): Promise<void>
  killNow(): void
}

/** Processes tracks the live processes of a run. */
export class Processes {
  readonly #live = new Set<Stoppable>()

  /** add tracks a started process and returns it. */
  add<T extends Stoppable>(process: T): T {
    this.#live.add(process)
    return process
  }

  /** stopAll stops every tracked process in parallel and resolves once all are reaped. */
  async stopAll(): Promise<void> {
    const live = [...this.#live]
    this.#live.clear()
    await Promise.all(live.map((process) => process.stop().catch(() => process.killNow())))
  }

  /** killAllNow SIGKILLs every tracked process synchronously (for process.on('exit')). */
  killAllNow(): void {
    for (const process of this.#live) process.killNow()
  }
}
