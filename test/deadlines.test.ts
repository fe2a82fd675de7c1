/**
 * Deadlines on a manual clock and timer (injected), so every expiry is
 * checked at the exact time it is due and no test sleeps: the real timer is
 * only asked to keep no process alive, and to fire at all.
 */
import { describe, it, expect } from 'vitest'
import { Deadlines, type Deadline, type DeadlineList } from '../src/peers/deadlines.js'
import { deferred } from './helpers/core-helpers.js'

/** Entry is a Deadline that records when (on the clock the test gives) it expired. */
class Entry implements Deadline {
  deadlineDue = 0
  deadlinePrev: Deadline | undefined = undefined
  deadlineNext: Deadline | undefined = undefined
  deadlineList: DeadlineList | undefined = undefined
  expiredAt: number[] = []
  constructor(
    readonly name: string,
    readonly log: string[],
    readonly clock: () => number,
    readonly onExpired?: () => void,
  ) {}
  expired(): void {
    this.expiredAt.push(this.clock())
    this.log.push(this.name)
    this.onExpired?.()
  }
}

/**
 * ManualTime is a clock and a timer that move only when the test says:
 * advance(ms) runs, in due order, every timer due by then, each at its own
 * due time (a timer set by a callback runs too if it falls due in the span).
 */
class ManualTime {
  now = 0
  readonly #timers: Array<{ at: number; fire: () => void }> = []
  readonly clock = (): number => this.now
  readonly setTimer = (fire: () => void, ms: number): void => {
    this.#timers.push({ at: this.now + ms, fire })
  }

  /** pending is the number of timers set and not yet run. */
  get pending(): number {
    return this.#timers.length
  }

  advance(ms: number): void {
    const end = this.now + ms
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at)
      const next = this.#timers[0]
      if (next === undefined || next.at > end) break
      this.#timers.shift()
      this.now = next.at
      next.fire()
    }
    this.now = end
  }
}

function timeouts(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length
}

/** setup returns Deadlines on a ManualTime, and a maker of entries on its clock logging to one log. */
function setup(): { time: ManualTime; deadlines: Deadlines; log: string[]; entry: (name: string, onExpired?: () => void) => Entry } {
  const time = new ManualTime()
  const log: string[] = []
  return { time, deadlines: new Deadlines(time.clock, time.setTimer), log, entry: (name, onExpired) => new Entry(name, log, time.clock, onExpired) }
}

describe('Deadlines', () => {
  it('expires each entry once, in the order added, when its delay has passed and not before', () => {
    const { time, deadlines, log, entry } = setup()
    const entries = ['a', 'b', 'c'].map((name) => entry(name))
    for (const e of entries) deadlines.add(e, 20)
    time.advance(19.9)
    expect(log).toEqual([])
    time.advance(0.1)
    expect(log).toEqual(['a', 'b', 'c'])
    time.advance(100)
    for (const e of entries) {
      expect(e.expiredAt).toEqual([20])
      expect(e.deadlineList).toBeUndefined()
    }
  })

  it('an entry removed before its time never expires, from the head, the middle or the tail', () => {
    const { time, deadlines, log, entry } = setup()
    const entries = ['a', 'b', 'c', 'd', 'e'].map((name) => entry(name))
    for (const e of entries) deadlines.add(e, 20)
    for (const i of [0, 2, 4]) entries[i]!.deadlineList!.remove(entries[i]!)
    time.advance(100)
    expect(log).toEqual(['b', 'd'])
  })

  it('1,000 entries of one delay, 999 settled early: only the last expires, on one timer', () => {
    const { time, deadlines, log, entry } = setup()
    const entries = Array.from({ length: 1000 }, (_, i) => entry(String(i)))
    for (const e of entries) deadlines.add(e, 30)
    expect(time.pending).toBe(1)
    for (const e of entries.slice(0, 999)) e.deadlineList!.remove(e)
    time.advance(100)
    expect(log).toEqual(['999'])
    expect(time.pending).toBe(0)
  })

  it('keeps one list per delay: a shorter delay added later still expires first', () => {
    const { time, deadlines, log, entry } = setup()
    deadlines.add(entry('slow'), 60)
    time.advance(5)
    deadlines.add(entry('fast'), 10)
    time.advance(10)
    expect(log).toEqual(['fast'])
    time.advance(45)
    expect(log).toEqual(['fast', 'slow'])
  })

  it('a head that leaves early makes the timer re-arm for the next entry, not expire it early', () => {
    const { time, deadlines, log, entry } = setup()
    const first = entry('first')
    deadlines.add(first, 40)
    time.advance(25)
    const second = entry('second')
    deadlines.add(second, 40)
    first.deadlineList!.remove(first)
    // The timer armed for the first entry fires at 40: nothing is due, it re-arms for 65.
    time.advance(39.9)
    expect(log).toEqual([])
    time.advance(0.1)
    expect(log).toEqual(['second'])
    expect(second.expiredAt).toEqual([65])
  })

  it('an expiry that adds entries ends its pass: what it added waits its own delay', () => {
    const { time, deadlines, log, entry } = setup()
    let again = 0
    const requeue = (): void => {
      if (++again < 3) deadlines.add(entry(`again${again}`, requeue), 15)
    }
    deadlines.add(entry('start', requeue), 15)
    time.advance(15)
    expect(log).toEqual(['start'])
    time.advance(15)
    expect(log).toEqual(['start', 'again1'])
    time.advance(100)
    expect(log).toEqual(['start', 'again1', 'again2'])
  })

  it('by default runs on a real timer that keeps no process alive, and fires', async () => {
    const deadlines = new Deadlines()
    const before = timeouts()
    const fired = deferred()
    const log: string[] = []
    deadlines.add(new Entry('real', log, () => performance.now(), () => fired.resolve()), 5)
    expect(timeouts()).toBe(before) // unref'd: only ref'd timers are active resources
    await fired.promise
    expect(log).toEqual(['real'])
  })
})
