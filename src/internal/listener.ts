/**
 * The inside of an `EventListener`: its queue, its history, its bound and its end marker, and the
 * operations that the registry's dispatch fiber performs on it.
 *
 * The queue is a `Queue.Dequeue` of its own (`ListenerQueue`), so that `Stream.fromQueue` reads it,
 * because it keeps a promise that Effect's `Queue` cannot: **an event leaves the queue only into
 * the hands of a `take` that returns it.** Effect's `Queue.take` completes a waiting taker's
 * `Deferred` with the item; if the taker's fiber is interrupted before it resumes, the interruption
 * only removes the taker, and the item is gone. Here:
 *
 * - A take that finds an entry resumes its fiber at once, in the same step, from inside the
 *   `Effect.async` that started it. The runtime then continues that fiber from a fresh run loop: no
 *   interruption can come in between (an interruption is only seen when a fiber starts running or
 *   yields, and a run loop yields after 2 048 steps, not 2), so the event reaches the caller.
 * - A take that waits is handed its entries by dispatch. If its fiber is interrupted before it
 *   resumes, its canceller puts the entries back at the head of the queue, in order, and hands them
 *   to the next waiting take.
 *
 * So `take`, `poll`, `stream`, `Effect.timeout(take)` and `Effect.race` over a `take` never lose an
 * event to an interruption of the fiber that runs the take. (An `Effect.race` discards the result of
 * a side that finished after the other won; a `take` finishes the moment it is handed an event, so
 * this needs both to finish in the same instant, and is left to the combinator.)
 *
 * The end marker (`Closed`) goes behind the pending events of a closed listener and stays there:
 * takes see it and fail, and leave it for every later take. Bounds are applied here, by the single
 * dispatch fiber, so drops are counted exactly and the marker is never the one dropped.
 *
 * Mutable state, confined to this module: dispatch writes it in one synchronous block per batch;
 * takes, in the synchronous body of their `Effect.async`; fibers never interleave inside one.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Effectable from "effect/Effectable"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import type { EventFilter } from "../EventFilter.js"
import type { ListenerClosed } from "../QmpError.js"
import type { QmpEvent } from "../QmpMessage.js"
import { History } from "./history.js"
import { Ring } from "./ring.js"

/**
 * The end marker: why the listener gives no more events.
 *
 * @internal
 */
export class Closed {
  constructor(readonly error: ListenerClosed) {}
}

/** @internal */
export type Entry = QmpEvent | Closed

/** A fiber waiting in a take, and the entries dispatch has handed it so far. */
interface Waiter {
  readonly min: number
  /** The `Effect.async` callback of the waiting fiber. */
  readonly resume: (effect: Effect.Effect<Array<Entry>>) => void
  readonly taken: Array<Entry>
  /** Set once `resume` was called: the fiber owns `taken` when it resumes. */
  resumed: boolean
}

/** Consecutive takes served by `Effect.async` at once, after which a take yields to other fibers first. */
const takesBeforeYield = 1024

/** Thrown by a fast take that finds no event at the head: the slow path then runs. */
const notReady = new (class NotReady {})()

const dequeueVariance = { _Out: (_: never) => _ }

/**
 * A listener's queue of pending events, ending with the end marker once the listener is closed.
 *
 * @internal
 */
export class ListenerQueue extends Effectable.Class<Entry> implements Queue.Dequeue<Entry> {
  readonly [Queue.DequeueTypeId] = dequeueVariance

  /** Pending entries, oldest first; the marker only last. */
  readonly ring = new Ring<Entry>()
  /** The end marker, while it is in `ring`. */
  marker: Closed | undefined = undefined
  /** Fibers waiting for entries, first come first served; there are some only while `ring` is empty. */
  private waiters: Array<Waiter> = []
  private served = 0
  private shutdownFlag = false

  /** Pending events, the marker not counted. */
  get pending(): number {
    return this.ring.length - (this.marker === undefined ? 0 : 1)
  }

  /** Adds an event at the tail, or hands it to the first waiting take. */
  offer(event: QmpEvent): void {
    this.ring.offer(event)
    if (this.waiters.length > 0) this.serve()
  }

  /** Puts the marker behind the pending events; every waiting take sees it. */
  close(marker: Closed): void {
    this.marker = marker
    this.ring.offer(marker)
    if (this.waiters.length > 0) this.serve()
  }

  /** Drops the oldest pending event (a sliding bound), if there is one. */
  dropOldest(): void {
    if (this.pending > 0) this.ring.poll(undefined)
  }

  /** Drops the pending events and returns them; the marker stays. */
  drain(): Array<QmpEvent> {
    const events: Array<QmpEvent> = []
    while (this.pending > 0) events.push(this.ring.poll(undefined) as QmpEvent)
    return events
  }

  /** Drops the pending events and the marker. */
  reset(): void {
    this.drain()
    this.ring.poll(undefined)
    this.marker = undefined
  }

  /** Hands pending entries to waiting takes, oldest waiter first. The marker is handed, and stays. */
  private serve(): void {
    while (this.waiters.length > 0 && this.ring.length > 0) {
      const waiter = this.waiters[0]
      const head = this.ring.peek(undefined)!
      if (head instanceof Closed) {
        const waiters = this.waiters
        this.waiters = []
        for (const w of waiters) {
          w.taken.push(head)
          this.resume(w)
        }
        return
      }
      waiter.taken.push(this.ring.poll(undefined)!)
      if (waiter.taken.length >= waiter.min) {
        this.waiters.shift()
        this.resume(waiter)
      }
    }
  }

  private resume(waiter: Waiter): void {
    waiter.resumed = true
    waiter.resume(Exit.succeed(waiter.taken))
  }

  /** The fiber of a waiting take was interrupted: its entries go back to the head, for the next take. */
  private cancel(waiter: Waiter): void {
    if (!waiter.resumed) {
      const index = this.waiters.indexOf(waiter)
      if (index !== -1) this.waiters.splice(index, 1)
    }
    for (let i = waiter.taken.length - 1; i >= 0; i--) {
      const entry = waiter.taken[i]
      if (!(entry instanceof Closed)) this.ring.offerFirst(entry)
    }
    waiter.taken.length = 0
    if (this.waiters.length > 0) this.serve()
  }

  /** Up to `max` entries from the head, at once; the marker is included and left in place. */
  private pollUpTo(max: number): Array<Entry> {
    const taken: Array<Entry> = []
    while (taken.length < max && this.ring.length > 0) {
      const head = this.ring.peek(undefined)!
      taken.push(head)
      if (head instanceof Closed) break
      this.ring.poll(undefined)
    }
    return taken
  }

  /**
   * Takes between `min` and `max` entries (the marker counts, ends the take, and stays in the queue),
   * waiting for `min` of them: atomic with respect to the interruption of the taking fiber.
   */
  takeEntries(min: number, max: number): Effect.Effect<Array<Entry>> {
    const take = this.takeEntriesNow(min, max)
    const yieldThenTake = Effect.zipRight(Effect.yieldNow(), take)
    // A take served from here resumes its fiber from a fresh run loop, which resets the count of
    // steps after which the runtime yields: a loop of such takes would never let other fibers run.
    return Effect.suspend(() => {
      if (++this.served < takesBeforeYield) return take
      this.served = 0
      return yieldThenTake
    })
  }

  private takeEntriesNow(min: number, max: number): Effect.Effect<Array<Entry>> {
    return Effect.async<Array<Entry>>((resume) => {
      if (this.shutdownFlag) {
        resume(Effect.interrupt)
        return
      }
      const taken = this.pollUpTo(max)
      if (taken.length >= min || this.marker !== undefined && taken[taken.length - 1] === this.marker) {
        resume(Exit.succeed(taken))
        return
      }
      const waiter: Waiter = { min, resume, taken, resumed: false }
      this.waiters.push(waiter)
      return Effect.sync(() => this.cancel(waiter))
    })
  }

  /**
   * The fast path of a take: when an event is at the head, `poll` removes it and returns it from an
   * `Effect.sync`, whose value the runtime passes to the caller's continuation in the same step (no
   * interruption can come between). Otherwise `poll` throws `notReady`, and `slow` runs instead: the
   * `catchAllDefect` frame it sits in is skipped on success, and costs nothing then.
   */
  fastOrSlow<A, E>(poll: () => A, slow: Effect.Effect<A, E>): Effect.Effect<A, E> {
    return Effect.catchAllDefect(Effect.sync(poll), (defect) => defect === notReady ? slow : Effect.die(defect))
  }

  /** The head if it is an event, removed; else throws `notReady`. */
  readonly pollEvent = (): QmpEvent => {
    const head = this.ring.peek(undefined)
    if (head === undefined || head instanceof Closed || this.shutdownFlag) throw notReady
    this.ring.poll(undefined)
    return head
  }

  /** One entry, waiting for it. */
  readonly takeOne: Effect.Effect<Entry> = this.fastOrSlow(
    this.pollEvent,
    Effect.map(this.takeEntries(1, 1), (entries) => entries[0])
  )

  // ---- Queue.Dequeue<Entry> -----------------------------------------------------------------------

  commit(): Effect.Effect<Entry> {
    return this.takeOne
  }

  get take(): Effect.Effect<Entry> {
    return this.takeOne
  }

  get takeAll(): Effect.Effect<Chunk.Chunk<Entry>> {
    return Effect.map(this.takeEntries(0, Number.POSITIVE_INFINITY), Chunk.unsafeFromArray)
  }

  takeUpTo(max: number): Effect.Effect<Chunk.Chunk<Entry>> {
    return Effect.map(this.takeEntries(0, max), Chunk.unsafeFromArray)
  }

  takeBetween(min: number, max: number): Effect.Effect<Chunk.Chunk<Entry>> {
    // `Stream.fromQueue(queue, { maxChunkSize: 1 })` pulls with `takeBetween(1, 1)`: one event, fast.
    const slow = Effect.map(this.takeEntries(Math.min(min, max), max), Chunk.unsafeFromArray)
    return min <= 1 && max === 1 ? this.fastOrSlow(() => Chunk.of<Entry>(this.pollEvent()), slow) : slow
  }

  capacity(): number {
    return Number.POSITIVE_INFINITY
  }

  isActive(): boolean {
    return !this.shutdownFlag
  }

  get size(): Effect.Effect<number> {
    return Effect.sync(() => this.pending - this.waiters.length)
  }

  unsafeSize(): Option.Option<number> {
    return this.shutdownFlag ? Option.none() : Option.some(this.pending - this.waiters.length)
  }

  get isFull(): Effect.Effect<boolean> {
    return Effect.succeed(false)
  }

  get isEmpty(): Effect.Effect<boolean> {
    return Effect.sync(() => this.pending === 0)
  }

  /** As any `Queue`: waiting takes are interrupted, and so is every later one. Listeners never call it. */
  get shutdown(): Effect.Effect<void> {
    return Effect.sync(() => {
      this.shutdownFlag = true
      const waiters = this.waiters
      this.waiters = []
      for (const waiter of waiters) {
        this.cancel(waiter)
        waiter.resume(Effect.interrupt)
      }
    })
  }

  get isShutdown(): Effect.Effect<boolean> {
    return Effect.sync(() => this.shutdownFlag)
  }

  get awaitShutdown(): Effect.Effect<void> {
    return Effect.never
  }
}

/** @internal */
export interface ListenerState {
  readonly names: ReadonlySet<string>
  readonly filter: EventFilter | undefined
  /** `Infinity` when unbounded. */
  readonly capacity: number
  readonly strategy: "sliding" | "dropping"
  readonly queue: ListenerQueue
  readonly history: History<QmpEvent>
  dropped: number
  /** The part of `dropped` already added to the `qmp_events_dropped` metric. */
  droppedReported: number
}

/** @internal */
export const makeState = (options: {
  readonly names: ReadonlySet<string>
  readonly filter: EventFilter | undefined
  readonly capacity: number
  readonly strategy: "sliding" | "dropping"
  readonly historyLimit: number
}): ListenerState => ({
  names: options.names,
  filter: options.filter,
  capacity: options.capacity,
  strategy: options.strategy,
  queue: new ListenerQueue(),
  history: new History<QmpEvent>(options.historyLimit),
  dropped: 0,
  droppedReported: 0
})

/**
 * Puts an accepted event into the listener: history first (it records every accepted event,
 * dropped or not), then the queue, applying the bound. Events a take put back may have left the
 * queue above its bound: the bound is restored here.
 *
 * @internal
 */
export const deliver = (state: ListenerState, event: QmpEvent): void => {
  state.history.push(event)
  const queue = state.queue
  if (queue.pending >= state.capacity) {
    if (state.strategy === "dropping") {
      state.dropped++
      return
    }
    while (queue.pending >= state.capacity) {
      queue.dropOldest()
      state.dropped++
    }
  }
  queue.offer(event)
}

/** `true` once the listener is closed (its marker is in the queue). @internal */
export const isClosed = (state: ListenerState): boolean => state.queue.marker !== undefined

/**
 * Closes the listener: the end marker goes behind its pending events. Closing twice keeps the
 * first reason.
 *
 * @internal
 */
export const close = (state: ListenerState, error: ListenerClosed): void => {
  if (state.queue.marker === undefined) state.queue.close(new Closed(error))
}

/**
 * On removal: drops the pending events and forgets why the listener was closed, so that it can be
 * registered again.
 *
 * @internal
 */
export const reset = (state: ListenerState): void => state.queue.reset()

/** What `take` gives for an entry: the event, or the failure of a closed listener. */
const unwrap = (entry: Entry): Exit.Exit<QmpEvent, ListenerClosed> =>
  entry instanceof Closed ? Exit.fail(entry.error) : Exit.succeed(entry)

/** @internal */
export const take = (state: ListenerState): Effect.Effect<QmpEvent, ListenerClosed> =>
  state.queue.fastOrSlow(
    state.queue.pollEvent,
    Effect.flatMap(state.queue.takeEntries(1, 1), (entries) => unwrap(entries[0]))
  )

/** @internal */
export const poll = (state: ListenerState): Effect.Effect<Option.Option<QmpEvent>, ListenerClosed> =>
  state.queue.fastOrSlow(
    () =>
      state.queue.pending === 0 && state.queue.marker === undefined
        ? Option.none()
        : Option.some(state.queue.pollEvent()),
    Effect.flatMap(
      state.queue.takeEntries(0, 1),
      (entries) => entries.length === 0 ? Exit.succeed(Option.none()) : Exit.map(unwrap(entries[0]), Option.some)
    )
  )

/** One event per pull: a stream stopped early leaves the rest in the queue. @internal */
export const stream = (state: ListenerState): Stream.Stream<QmpEvent, ListenerClosed> =>
  Stream.mapEffect(Stream.fromQueue(state.queue, { maxChunkSize: 1 }), unwrap)

/**
 * Where a listener keeps its state; only the registry reaches for it.
 *
 * @internal
 */
export const StateId: unique symbol = Symbol.for("effect-qmp/EventListener/state")

/** @internal */
export const stateOf = (listener: object): ListenerState => (listener as { readonly [StateId]: ListenerState })[StateId]
