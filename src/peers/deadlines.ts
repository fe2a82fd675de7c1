/**
 * deadlines: Deadlines runs the transport deadlines of a peer's requests on
 * one timer per delay, not one timer per request.
 *
 * Why: nearly every peer request is answered long before its deadline and
 * cancels it, so a Node timer per request is pure cost on the hot path (a
 * Timeout object that lives for the whole round trip, and timer list work to
 * add and remove it: about a quarter of an exchange's own CPU, measured).
 * Here a request is its own list entry (no allocation): adding appends it,
 * settling unlinks it (`entry.deadlineList.remove(entry)`), and a single unref'd timer serves the list's head.
 *
 * Invariant: within one DeadlineList every entry has the same delay and the
 * clock only grows, so appending keeps the list in due order and the head is
 * always the next to expire.
 *
 * The clock and the timer are injectable (the constructor's parameters, not
 * an option) so that tests run a list on a manual clock instead of sleeping.
 */

/** Deadline is an entry of a DeadlineList: the request object itself carries the links. */
export interface Deadline {
  /** Called once, when its due time passed while it was still listed. */
  expired(): void
  /** When it is due, on the list's clock (ms). */
  deadlineDue: number
  deadlinePrev: Deadline | undefined
  deadlineNext: Deadline | undefined
  /** The list it is in, or undefined. */
  deadlineList: DeadlineList | undefined
}

/** SetTimer runs `fire` once, `ms` from now on the same clock, without keeping the process alive. */
export type SetTimer = (fire: () => void, ms: number) => void

/** unrefTimer is the real SetTimer: a Node timer, unref'd (a deadline alone must not keep a process alive). */
const unrefTimer: SetTimer = (fire, ms) => {
  setTimeout(fire, ms).unref()
}

/** Deadlines keeps one DeadlineList per delay (a peer uses one or two: its timeout, and half of it). */
export class Deadlines {
  readonly #lists = new Map<number, DeadlineList>()
  readonly #now: () => number
  readonly #setTimer: SetTimer

  /** now is a monotonic clock in ms; setTimer a timer on it (tests pass a manual clock and timer). */
  constructor(now: () => number = performance.now.bind(performance), setTimer: SetTimer = unrefTimer) {
    this.#now = now
    this.#setTimer = setTimer
  }

  /** add lists entry to expire `delayMs` from now. */
  add(entry: Deadline, delayMs: number): void {
    let list = this.#lists.get(delayMs)
    if (list === undefined) {
      list = new DeadlineList(delayMs, this.#now, this.#setTimer)
      this.#lists.set(delayMs, list)
    }
    list.add(entry)
  }
}

/** DeadlineList is the entries of one delay, in due order, and the one timer that expires them. */
export class DeadlineList {
  readonly #delayMs: number
  readonly #now: () => number
  readonly #setTimer: SetTimer
  #head: Deadline | undefined
  #tail: Deadline | undefined
  /** A timer is armed for the head's due time at the latest; it may fire early (the head left): it then re-arms. */
  #armed = false

  constructor(delayMs: number, now: () => number, setTimer: SetTimer) {
    this.#delayMs = delayMs
    this.#now = now
    this.#setTimer = setTimer
  }

  /** add appends entry, due delayMs from now. */
  add(entry: Deadline): void {
    entry.deadlineDue = this.#now() + this.#delayMs
    entry.deadlineList = this
    entry.deadlineNext = undefined
    entry.deadlinePrev = this.#tail
    if (this.#tail === undefined) this.#head = entry
    else this.#tail.deadlineNext = entry
    this.#tail = entry
    if (!this.#armed) this.#arm(this.#delayMs)
  }

  /** remove unlinks entry (it must be in this list). */
  remove(entry: Deadline): void {
    const { deadlinePrev: prev, deadlineNext: next } = entry
    if (prev === undefined) this.#head = next
    else prev.deadlineNext = next
    if (next === undefined) this.#tail = prev
    else next.deadlinePrev = prev
    entry.deadlinePrev = entry.deadlineNext = entry.deadlineList = undefined
  }

  #arm(delayMs: number): void {
    // Whole milliseconds: Node keeps one timer list per distinct delay.
    this.#armed = true
    this.#setTimer(() => this.#fire(), Math.max(1, Math.ceil(delayMs)))
  }

  /** Expires every entry now due (each unlinked before its callback runs), then re-arms for the next. */
  #fire(): void {
    this.#armed = false
    const now = this.#now()
    // Bounded: it stops at the entry that was last when it started (a callback may add more).
    const last = this.#tail
    while (this.#head !== undefined && this.#head.deadlineDue <= now) {
      const entry = this.#head
      this.remove(entry)
      entry.expired()
      if (entry === last) break
    }
    if (this.#head !== undefined) this.#arm(this.#head.deadlineDue - now)
  }
}
