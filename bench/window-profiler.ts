/**
 * window-profiler: a V8 CPU profile of one stretch of a process's life (the
 * cluster benchmark's measured window), written as a `.cpuprofile` file like
 * `node --cpu-prof` writes, which would also hold start-up and warm-up.
 */
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { join } from 'node:path'

/** WindowProfiler profiles this process between start() and stop(). */
export class WindowProfiler {
  readonly #session = new Session()
  readonly #file: string

  constructor(dir: string, name: string) {
    this.#file = join(dir, `${name}.cpuprofile`)
  }

  async start(): Promise<void> {
    this.#session.connect()
    await this.#session.post('Profiler.enable')
    await this.#session.post('Profiler.start')
  }

  /** stop ends the profile and writes it; it returns the file's path. */
  async stop(): Promise<string> {
    const { profile } = await this.#session.post('Profiler.stop')
    this.#session.disconnect()
    writeFileSync(this.#file, JSON.stringify(profile))
    return this.#file
  }
}
