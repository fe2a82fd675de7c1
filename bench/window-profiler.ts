/**
 * window-profiler: V8 profiles of one stretch of a process's life (the
 * cluster benchmark's measured window): a CPU profile (`.cpuprofile`, as
 * `node --cpu-prof` writes, which would also hold start-up and warm-up) and
 * a sampling allocation profile (`.heapprofile`, every sampled allocation,
 * garbage included: what a request allocates, not what stays).
 */
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { join } from 'node:path'

/** Bytes between allocation samples (V8's default is 32 KiB; smaller sees more small objects). */
const ALLOCATION_SAMPLING_BYTES = 4096

/** WindowProfiler profiles this process between start() and stop(). */
export class WindowProfiler {
  readonly #session = new Session()
  readonly #base: string

  constructor(dir: string, name: string) {
    this.#base = join(dir, name)
  }

  async start(): Promise<void> {
    this.#session.connect()
    await this.#session.post('Profiler.enable')
    await this.#session.post('HeapProfiler.enable')
    await this.#session.post('HeapProfiler.startSampling', {
      samplingInterval: ALLOCATION_SAMPLING_BYTES,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    })
    await this.#session.post('Profiler.start')
  }

  /** stop ends both profiles and writes them next to each other. */
  async stop(): Promise<void> {
    const { profile } = await this.#session.post('Profiler.stop')
    const { profile: allocations } = await this.#session.post('HeapProfiler.stopSampling')
    this.#session.disconnect()
    writeFileSync(`${this.#base}.cpuprofile`, JSON.stringify(profile))
    writeFileSync(`${this.#base}.heapprofile`, JSON.stringify(allocations))
  }
}
