/**
 * The timeouts of a connection's commands: one fiber for all of them, not one (and a timer) per
 * command, since `Effect.timeout` around each command would fork two fibers and start a timer per
 * call, more than the rest of a call costs.
 *
 * A command's deadline goes into a min-heap (and out again when its reply comes); one keeper fiber
 * sleeps until the earliest deadline and expires what is due. Most commands share the connection's `commandTimeout`, so a new deadline
 * is rarely the earliest: the keeper is woken early only then, and otherwise wakes once per timeout.
 * The keeper sleeps on the fiber's `Clock`, so that `TestClock` drives command timeouts in tests.
 *
 * Plain mutable state, confined to this module: every operation is a synchronous block.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

/**
 * A deadline in the heap: what expires, and when.
 *
 * @internal
 */
export interface Deadline<A> {
  readonly item: A
  readonly timeout: Duration.Duration
  /** When it expires, in the clock's milliseconds. */
  readonly at: number
  /** Its position in the heap; -1 once out of it. */
  index: number
}

/** @internal */
export class Deadlines<A> {
  private readonly heap: Array<Deadline<A>> = []
  /** The deadline the keeper sleeps until; `Infinity` while it waits for one. */
  private target = Number.POSITIVE_INFINITY
  private wake: (() => void) | undefined = undefined

  /** `expire` is called once for each deadline that passes before it is removed. */
  constructor(private readonly now: () => number, private readonly expire: (deadline: Deadline<A>) => void) {}

  get size(): number {
    return this.heap.length
  }

  /** A deadline for `item`, `timeout` from now: it expires when it passes, unless it is removed first. */
  add(timeout: Duration.Duration, item: A): Deadline<A> {
    const deadline: Deadline<A> = {
      item,
      timeout,
      at: this.now() + Duration.toMillis(timeout),
      index: this.heap.length
    }
    this.heap.push(deadline)
    this.up(deadline.index)
    if (deadline.at < this.target) this.ring()
    return deadline
  }

  /** Takes a deadline out (its command got its reply, or gave up): it will not expire. */
  remove(deadline: Deadline<A>): void {
    const index = deadline.index
    if (index < 0) return
    deadline.index = -1
    const last = this.heap.pop()!
    if (last === deadline) return
    this.heap[index] = last
    last.index = index
    this.down(index)
    this.up(last.index)
  }

  private ring(): void {
    const wake = this.wake
    this.wake = undefined
    if (wake !== undefined) wake()
  }

  /** Expires every deadline that has passed; the earliest that has not, if any. */
  private expireDue(): number {
    const now = this.now()
    while (this.heap.length > 0 && this.heap[0].at <= now) {
      const deadline = this.heap[0]
      this.remove(deadline)
      this.expire(deadline)
    }
    return this.heap.length > 0 ? this.heap[0].at : Number.POSITIVE_INFINITY
  }

  /** Waits until `add` rings, for a deadline earlier than the current target. */
  private readonly rung: Effect.Effect<void> = Effect.async<void>((resume) => {
    this.wake = () => resume(Effect.void)
    return Effect.sync(() => {
      this.wake = undefined
    })
  })

  /** The keeper: forked once per connection, for its lifetime. */
  readonly keeper: Effect.Effect<never> = Effect.suspend(() => {
    this.target = this.expireDue()
    if (this.target === Number.POSITIVE_INFINITY) return this.rung
    return Effect.raceFirst(Clock.sleep(Duration.millis(Math.max(0, this.target - this.now()))), this.rung)
  }).pipe(Effect.forever)

  private up(index: number): void {
    const heap = this.heap
    const item = heap[index]
    while (index > 0) {
      const parent = (index - 1) >> 1
      if (heap[parent].at <= item.at) break
      heap[index] = heap[parent]
      heap[index].index = index
      index = parent
    }
    heap[index] = item
    item.index = index
  }

  private down(index: number): void {
    const heap = this.heap
    const item = heap[index]
    const n = heap.length
    for (;;) {
      const left = 2 * index + 1
      if (left >= n) break
      const right = left + 1
      const child = right < n && heap[right].at < heap[left].at ? right : left
      if (heap[child].at >= item.at) break
      heap[index] = heap[child]
      heap[index].index = index
      index = child
    }
    heap[index] = item
    item.index = index
  }
}

/**
 * The deadlines of one connection, with their keeper forked in the current scope, on the current
 * `Clock`.
 *
 * @internal
 */
export const make = <A>(
  expire: (deadline: Deadline<A>) => void
): Effect.Effect<Deadlines<A>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const deadlines = new Deadlines<A>(() => clock.unsafeCurrentTimeMillis(), expire)
    yield* Effect.forkScoped(Effect.interruptible(deadlines.keeper))
    return deadlines
  })
