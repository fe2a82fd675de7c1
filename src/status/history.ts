/**
 * history: each group's hit ratio over the last minutes, for the status
 * page. It keeps, per group, the cumulative gets and hits as first seen in
 * each minute (a ring buffer of HISTORY_MINUTES samples), so a minute's ratio
 * is the difference between two samples. Samples are taken when a status is
 * made (status(), a peer's gathering, the page), not by a timer: a process
 * nobody looks at does no work for it, and a stretch of minutes without a
 * sample shows as one longer period.
 */
import type { HitRatioPeriod } from './types.js'

/** HISTORY_MINUTES bounds the samples kept per group. */
export const HISTORY_MINUTES = 15

const MINUTE_MS = 60_000

/** Counts are a group's cumulative gets and cache hits. */
export interface Counts {
  gets: number
  hits: number
}

interface Sample extends Counts {
  /** The minute it was taken in, as epoch ms of the minute's start. */
  minute: number
}

/** StatusHistory holds every group's samples (groups are never removed, so it is bounded by the groups made). */
export class StatusHistory {
  readonly #samples = new Map<string, Sample[]>()

  /**
   * observe records group's counts at now (epoch ms) if this minute has no
   * sample yet, and returns the group's periods: one per pair of samples,
   * then the current one (from the last sample to now).
   */
  observe(group: string, now: number, counts: Counts): HitRatioPeriod[] {
    const minute = Math.floor(now / MINUTE_MS) * MINUTE_MS
    let samples = this.#samples.get(group)
    if (samples === undefined) this.#samples.set(group, (samples = []))
    const last = samples[samples.length - 1]
    // A clock that went back leaves the samples as they are (minutes only grow).
    if (last === undefined || minute > last.minute) {
      samples.push({ minute, gets: counts.gets, hits: counts.hits })
      if (samples.length > HISTORY_MINUTES) samples.shift()
    }
    // The current period runs from the last sample to now: one minute long.
    return periods(samples, { minute: samples[samples.length - 1]!.minute + MINUTE_MS, ...counts })
  }
}

function periods(samples: readonly Sample[], now: Sample): HitRatioPeriod[] {
  const out: HitRatioPeriod[] = []
  for (let i = 0; i < samples.length; i++) {
    const from = samples[i] as Sample
    const to = samples[i + 1] ?? now
    const gets = Math.max(0, to.gets - from.gets)
    const hits = Math.max(0, Math.min(gets, to.hits - from.hits))
    const minutes = Math.max(1, Math.round((to.minute - from.minute) / MINUTE_MS))
    out.push({ start: from.minute, minutes, gets, hits, hitRatio: gets === 0 ? null : hits / gets })
  }
  return out
}
