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

/** Deadlines keeps one DeadlineList per delay (a peer uses one or two: its timeout, and half of it). */
export class Deadlines {
  readonly #lists = new Map<number, DeadlineList>()
  readonly #now: () => number

  /** now is a monotonic clock in ms. */
  constructor(now: () => number = performance.now.bind(performance)) {
    this.#now = now
  }

  /** add lists entry to expire `delayMs` from now. */
  add(entry: Deadline, delayMs: number): void {
    let list = this.#lists.get(delayMs)
    if (list === undefined) {
      list = new DeadlineList(delayMs, this.#now)
      this.#lists.set(delayMs, list)
    }
    list.add(entry)
  }
}

/** DeadlineList is the entries of one delay, in due order, and the one timer that expires them. */
export class DeadlineList {
  readonly #delayMs: number
  readonly #now: () => number
  #head: Deadline | undefined
  #tail: Deadline | undefined
  /** Armed for the head's due time at the latest; it may fire early (the head left): it then re-arms. */
  #timer: NodeJS.Timeout | undefined

  constructor(delayMs: number, now: () => number) {
    this.#delayMs = delayMs
    this.#now = now
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
    if (this.#timer === undefined) this.#arm(this.#delayMs)
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
    this.#timer = setTimeout(() => this.#fire(), Math.max(1, Math.ceil(delayMs)))
    this.#timer.unref()
  }

  /** Expires every entry now due (each unlinked before its callback runs), then re-arms for the next. */
  #fire(): void {
    this.#timer = undefined
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
