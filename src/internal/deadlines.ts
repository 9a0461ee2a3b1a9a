/**
 * The timeouts of a connection's commands: one fiber for all of them, not one (and a timer) per
 * command, since `Effect.timeout` around each command would fork two fibers and start a timer per
 * call, more than the rest of a call costs.
 *
 * A command's deadline goes into a min-heap (and out again when its reply comes); one keeper fiber
 * sleeps until the earliest deadline and expires what is due. The keeper runs only while there are
 * deadlines: it is started by the first `add` and stops when it wakes to an empty heap, so that an
 * idle connection holds no fiber for it (a fiber costs some 5 KB, and a fleet holds a thousand idle
 * connections). Most commands share the connection's `commandTimeout`, so a new deadline
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
import * as Fiber from "effect/Fiber"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"

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
  private rang = false

  /** Whether a keeper runs now. */
  private running = false

  /**
   * `expire` is called once for each deadline that passes before it is removed; `start` runs the
   * keeper when a deadline comes while none runs (without it, the keeper is the caller's to run).
   */
  constructor(
    private readonly now: () => number,
    private readonly expire: (deadline: Deadline<A>) => void,
    private readonly start?: (keeper: Effect.Effect<void>) => void
  ) {}

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
    if (!this.running && this.start !== undefined) {
      this.running = true
      this.target = deadline.at
      this.start(this.keeper)
    } else if (deadline.at < this.target) this.ring()
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
    // A keeper that has not begun to wait yet finds the ring when it does.
    if (wake === undefined) this.rang = true
    else wake()
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

  // `rung` and `keeper` are made when used, not with each instance: a fleet's thousand idle
  // connections would hold a thousand of each, and most never run a command with a deadline.

  /** Waits until `add` rings, for a deadline earlier than the current target. */
  private get rung(): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      if (this.rang) {
        this.rang = false
        return resume(Effect.void)
      }
      this.wake = () => resume(Effect.void)
      return Effect.sync(() => {
        this.wake = undefined
      })
    })
  }

  /**
   * The keeper: sleeps until the earliest deadline (or until an earlier one is added), expires what
   * is due, and so on until the heap is empty; then it ends, unless nobody would start it again (no
   * `start`), in which case it waits for the next deadline. It starts by waiting, so that a keeper
   * started inside `add` expires nothing before `add` has returned.
   */
  get keeper(): Effect.Effect<void> {
    return Effect.suspend(() => {
      // The earliest deadline now: one added since the last step included, so its ring can go.
      this.rang = false
      this.target = this.heap.length > 0 ? this.heap[0].at : Number.POSITIVE_INFINITY
      const wait = this.target === Number.POSITIVE_INFINITY ?
        this.rung :
        Effect.raceFirst(Clock.sleep(Duration.millis(Math.max(0, this.target - this.now()))), this.rung)
      return Effect.map(wait, () => {
        this.target = this.expireDue()
        if (this.target !== Number.POSITIVE_INFINITY || this.start === undefined) return true
        this.running = false
        return false
      })
    }).pipe(Effect.repeat({ while: (more) => more }), Effect.asVoid)
  }

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
 * The deadlines of one connection, on the current `Clock`: their keeper runs, while there are
 * deadlines, with the current fiber's services, and is interrupted when the scope closes.
 *
 * @internal
 */
export const make = <A>(
  expire: (deadline: Deadline<A>) => void
): Effect.Effect<Deadlines<A>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const runtime = yield* Effect.runtime<never>()
    const run = Runtime.runFork(runtime)
    let keeper: Fiber.RuntimeFiber<void> | undefined
    let closed = false
    // Not `Effect.addFinalizer`, which would keep the fiber's refs as long as the connection.
    yield* Scope.addFinalizer(
      yield* Effect.scope,
      Effect.suspend(() => {
        closed = true
        return keeper === undefined ? Effect.void : Fiber.interrupt(keeper)
      })
    )
    return new Deadlines<A>(() => clock.unsafeCurrentTimeMillis(), expire, (effect) => {
      // At once, in this step: under TestClock its first sleep is then registered before the clock
      // can move.
      if (!closed) keeper = run(Effect.interruptible(effect), { immediate: true })
    })
  })
