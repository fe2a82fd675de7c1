import { describe, it, expect } from 'vitest'
import { setTimeout as sleep } from 'node:timers/promises'
import { Deadlines, type Deadline, type DeadlineList } from '../src/peers/deadlines.js'

/** Entry is a Deadline that records when it expired. */
class Entry implements Deadline {
  deadlineDue = 0
  deadlinePrev: Deadline | undefined = undefined
  deadlineNext: Deadline | undefined = undefined
  deadlineList: DeadlineList | undefined = undefined
  expiredAt: number[] = []
  constructor(
    readonly name: string,
    readonly log: string[],
    readonly onExpired?: () => void,
  ) {}
  expired(): void {
    this.expiredAt.push(performance.now())
    this.log.push(this.name)
    this.onExpired?.()
  }
}

function timeouts(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length
}

describe('Deadlines', () => {
  it('expires each entry once, in the order added, no sooner than its delay', async () => {
    const deadlines = new Deadlines()
    const log: string[] = []
    const entries = ['a', 'b', 'c'].map((name) => new Entry(name, log))
    const added = performance.now()
    for (const entry of entries) deadlines.add(entry, 20)
    await sleep(80)
    expect(log).toEqual(['a', 'b', 'c'])
    for (const entry of entries) {
      expect(entry.expiredAt).toHaveLength(1)
      expect(entry.expiredAt[0]! - added).toBeGreaterThanOrEqual(19)
      expect(entry.deadlineList).toBeUndefined()
    }
  })

  it('an entry removed before its time never expires, from the head, the middle or the tail', async () => {
    const deadlines = new Deadlines()
    const log: string[] = []
    const entries = ['a', 'b', 'c', 'd', 'e'].map((name) => new Entry(name, log))
    for (const entry of entries) deadlines.add(entry, 20)
    for (const i of [0, 2, 4]) entries[i]!.deadlineList!.remove(entries[i]!)
    await sleep(80)
    expect(log).toEqual(['b', 'd'])
  })

  it('1,000 entries of one delay, 999 settled early: only the last expires, and its timer keeps no process alive', async () => {
    const deadlines = new Deadlines()
    const before = timeouts()
    const log: string[] = []
    const entries = Array.from({ length: 1000 }, (_, i) => new Entry(String(i), log))
    for (const entry of entries) deadlines.add(entry, 30)
    expect(timeouts()).toBe(before) // unref'd: only ref'd timers are active resources
    for (const entry of entries.slice(0, 999)) entry.deadlineList!.remove(entry)
    await sleep(100)
    expect(log).toEqual(['999'])
  })

  it('keeps one list per delay: a shorter delay added later still expires first', async () => {
    const deadlines = new Deadlines()
    const log: string[] = []
    deadlines.add(new Entry('slow', log), 60)
    deadlines.add(new Entry('fast', log), 10)
    await sleep(120)
    expect(log).toEqual(['fast', 'slow'])
  })

  it('a head that leaves early makes the timer re-arm for the next entry, not expire it early', async () => {
    const deadlines = new Deadlines()
    const log: string[] = []
    const first = new Entry('first', log)
    deadlines.add(first, 40)
    await sleep(25)
    const second = new Entry('second', log)
    const secondAdded = performance.now()
    deadlines.add(second, 40)
    first.deadlineList!.remove(first)
    await sleep(100)
    expect(log).toEqual(['second'])
    expect(second.expiredAt[0]! - secondAdded).toBeGreaterThanOrEqual(39)
  })

  it('an expiry that adds entries ends its pass: what it added waits its own delay', async () => {
    const deadlines = new Deadlines()
    const log: string[] = []
    let again = 0
    const requeue = (): void => {
      if (++again < 3) deadlines.add(new Entry(`again${again}`, log, requeue), 15)
    }
    deadlines.add(new Entry('start', log, requeue), 15)
    await sleep(150)
    expect(log).toEqual(['start', 'again1', 'again2'])
  })
})
