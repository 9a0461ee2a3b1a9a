/**
 * The inside of an `EventListener`: its queue, its history, its bound and its end marker, and the
 * operations that the registry's dispatch fiber performs on it.
 *
 * The queue is a `Queue.Dequeue` of its own (`ListenerQueue`), so that `Stream.fromQueue` reads it,
 * because it keeps a promise that Effect's `Queue` cannot: **an event leaves the queue only into
 * the hands of a take that returns it.** Effect's `Queue.take` completes a waiting taker's
 * `Deferred` with the item; if the taker's fiber is interrupted before it resumes, the interruption
 * only removes the taker, and the item is gone. Here an event is only ever removed by the fiber that
 * takes it, in the step that returns it:
 *
 * - A take that finds an event removes it in an `Effect.sync` and returns it from there: the runtime
 *   passes an `Effect.sync`'s value to the caller's continuation in the same step, so no
 *   interruption can come in between.
 * - A take that finds none waits. Dispatch does not hand it the next event: it wakes it, and the
 *   woken fiber takes the event itself, as above, when it runs. A fiber interrupted before it runs
 *   takes nothing; its turn passes to the next waiting take.
 *
 * So `take`, `poll`, `stream`, `Effect.timeout(take)` and `Effect.race` over a `take` never lose an
 * event to an interruption, and the queue stays in arrival order. (An `Effect.race` discards the
 * result of a side that finished after the other won; a `take` finishes the moment it removes an
 * event, so that needs both to finish in the same instant, and is left to the combinator.)
 *
 * The end marker (`Closed`) goes behind the pending events of a closed listener and stays there:
 * takes see it and fail, and leave it for every later take. Bounds are applied by the single
 * dispatch fiber, so drops are counted exactly and the marker is never the one dropped.
 *
 * History is kept without a second write per event where it can be: the accepted events still
 * pending are the newest part of the history, so a listener records an event in its history when
 * it leaves the queue (taken, cleared, dropped by a sliding bound), and `history` is what left plus
 * what is pending, the newest `historyLimit` of them. A listener that nobody reads (the default
 * listener, most of the time) then writes each event once. A listener that drops new events when
 * full (`strategy: "dropping"`) records each event on arrival instead: what it drops never enters
 * its queue.
 *
 * Mutable state, confined to this module: dispatch writes it in one synchronous block per batch;
 * takes, in a synchronous step of their own; fibers never interleave inside one.
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
import type { EventValidator } from "./typedDecode.js"

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

/** A fiber waiting in a take. */
interface Waiter {
  /** The entries it waits for: 1 for a take. */
  readonly min: number
  /** Resumes the fiber with a fresh attempt of its take. */
  readonly wake: () => void
  /** Set when it was woken: `min` entries are promised to it until it runs or is interrupted. */
  woken: boolean
}

/** Consecutive takes served in a step of their own, after which a take yields to other fibers first. */
const takesBeforeYield = 1024

/** Thrown by a fast take that finds too little: its slow path then runs. */
const notReady = new (class NotReady {})()

const dequeueVariance = { _Out: (_: never) => _ }

/**
 * A listener's queue of pending events, ending with the end marker once the listener is closed.
 *
 * @internal
 */
export class ListenerQueue extends Effectable.Class<Entry> implements Queue.Dequeue<Entry> {
  readonly [Queue.DequeueTypeId] = dequeueVariance

  /** Pending entries in arrival order; the marker only last. */
  private readonly ring = new Ring<Entry>()
  /** The end marker, while it is in `ring`. */
  marker: Closed | undefined = undefined
  /** Fibers waiting for entries, first come first served. */
  private waiters: Array<Waiter> = []
  /** Entries promised to woken waiters that have not run yet: no other take counts on them. */
  private promised = 0
  private served = 0
  private shutdownFlag = false

  /** `onDepart` sees each event that leaves the queue, in order (the history's hook). */
  constructor(private readonly onDepart: (event: QmpEvent) => void) {
    super()
  }

  /** Pending events, the marker not counted. */
  get pending(): number {
    return this.ring.length - (this.marker === undefined ? 0 : 1)
  }

  /** The pending events, oldest first. */
  pendingEvents(): Array<QmpEvent> {
    const entries = this.ring.toArray()
    if (this.marker !== undefined) entries.pop()
    return entries as Array<QmpEvent>
  }

  /** Adds an event at the tail, and wakes a waiting take if it can now be served. */
  offer(event: QmpEvent): void {
    this.ring.offer(event)
    if (this.waiters.length > 0) this.wakeReady()
  }

  /** Puts the marker behind the pending events; every waiting take is woken to see it. */
  close(marker: Closed): void {
    this.marker = marker
    this.ring.offer(marker)
    if (this.waiters.length > 0) this.wakeReady()
  }

  /** Drops the oldest pending event (a sliding bound), if there is one. */
  dropOldest(): void {
    if (this.pending > 0) this.onDepart(this.ring.poll(undefined) as QmpEvent)
  }

  /** Drops the pending events and returns them; the marker stays. */
  drain(): Array<QmpEvent> {
    const events: Array<QmpEvent> = []
    while (this.pending > 0) {
      const event = this.ring.poll(undefined) as QmpEvent
      this.onDepart(event)
      events.push(event)
    }
    return events
  }

  /** Drops the pending events and the marker. */
  reset(): void {
    this.drain()
    this.ring.poll(undefined)
    this.marker = undefined
  }

  /**
   * A take of `min` entries could be served now: that many are pending beyond those promised to woken
   * takes, or the marker is reachable (closed, and nothing promised before it).
   */
  private ready(min: number): boolean {
    return this.pending - this.promised >= min || this.marker !== undefined && this.promised === 0
  }

  /** Wakes the first waiting takes while each can be served. */
  private wakeReady(): void {
    while (this.waiters.length > 0 && this.ready(this.waiters[0].min)) this.wakeFirst()
  }

  /** Wakes the first waiting take, promising it what it waits for. */
  private wakeFirst(): void {
    const waiter = this.waiters.shift()!
    waiter.woken = true
    this.promised += waiter.min
    waiter.wake()
  }

  /**
   * Removes up to `max` events from the head, leaving what woken takes count on; then the marker, if
   * it is reached (it is left in place). Wakes the takes that can now be served.
   */
  private pollUpTo(max: number): Array<Entry> {
    const taken: Array<Entry> = []
    for (let available = this.pending - this.promised; taken.length < max && available > 0; available--) {
      const event = this.ring.poll(undefined) as QmpEvent
      this.onDepart(event)
      taken.push(event)
    }
    if (taken.length < max && this.marker !== undefined && this.pending === 0) taken.push(this.marker)
    if (this.waiters.length > 0) this.wakeReady()
    return taken
  }

  /**
   * The fast path of a take: `poll` removes what it can in an `Effect.sync`, whose value the runtime
   * passes to the caller's continuation in the same step; when it finds too little, it throws
   * `notReady` and `slow` runs instead (the `catchAllDefect` frame costs nothing on success).
   */
  fastOrSlow<A, E>(poll: () => A, slow: Effect.Effect<A, E>): Effect.Effect<A, E> {
    return Effect.catchAllDefect(Effect.sync(poll), (defect) => defect === notReady ? slow : Effect.die(defect))
  }

  /** Between `min` and `max` entries if `min` can be served now; else throws `notReady`. */
  private pollEntries(min: number, max: number): Array<Entry> {
    if (this.shutdownFlag || !this.ready(min)) throw notReady
    return this.pollUpTo(max)
  }

  /** The head, removed, if it is an event that no woken take counts on; else throws `notReady`. */
  pollEvent(): QmpEvent {
    if (this.shutdownFlag || this.pending - this.promised < 1) throw notReady
    return this.pollUpTo(1)[0] as QmpEvent
  }

  /**
   * Takes between `min` and `max` entries (the marker counts, ends the take, and stays in the queue),
   * waiting until `min` of them can be served.
   */
  takeEntries(min: number, max: number): Effect.Effect<Array<Entry>> {
    return this.fastOrSlow(() => this.pollEntries(min, max), this.waitFor(min, max))
  }

  /** The slow path: served at once if it can be by now, else a waiter until dispatch wakes it. */
  private waitFor(min: number, max: number): Effect.Effect<Array<Entry>> {
    const wait = Effect.async<Array<Entry>>((resume) => {
      if (this.shutdownFlag) return resume(Effect.interrupt)
      if (this.ready(min)) return resume(Exit.succeed(this.pollUpTo(max)))
      // Woken, the fiber runs its take again, from the fast path; what was promised to it is its own.
      const redeem = Effect.sync(() => {
        this.promised -= min
      })
      const waiter: Waiter = {
        min,
        woken: false,
        wake: () => resume(Effect.zipRight(redeem, this.takeEntries(min, max)))
      }
      this.waiters.push(waiter)
      return Effect.sync(() => this.cancel(waiter))
    })
    const yieldThenWait = Effect.zipRight(Effect.yieldNow(), wait)
    // A fiber resumed by `Effect.async` starts a fresh run loop, which resets the count of steps after
    // which the runtime yields: a loop of takes served here would never let other fibers run.
    return Effect.suspend(() => {
      if (++this.served < takesBeforeYield) return wait
      this.served = 0
      return yieldThenWait
    })
  }

  /** A waiting fiber was interrupted: it leaves the line, and what was promised to it goes to the next. */
  private cancel(waiter: Waiter): void {
    if (waiter.woken) {
      this.promised -= waiter.min
    } else {
      const index = this.waiters.indexOf(waiter)
      if (index !== -1) this.waiters.splice(index, 1)
    }
    if (this.waiters.length > 0) this.wakeReady()
  }

  // ---- Queue.Dequeue<Entry> -----------------------------------------------------------------------

  /** One entry, waiting for it: made on first use (most queues are only ever read by their listener). */
  private takeOne: Effect.Effect<Entry> | undefined = undefined

  commit(): Effect.Effect<Entry> {
    return this.take
  }

  get take(): Effect.Effect<Entry> {
    return this.takeOne ??= this.fastOrSlow(
      () => this.pollEntries(1, 1)[0],
      Effect.map(this.waitFor(1, 1), (entries) => entries[0])
    )
  }

  get takeAll(): Effect.Effect<Chunk.Chunk<Entry>> {
    return Effect.map(this.takeEntries(0, Number.POSITIVE_INFINITY), Chunk.unsafeFromArray)
  }

  takeUpTo(max: number): Effect.Effect<Chunk.Chunk<Entry>> {
    return Effect.map(this.takeEntries(0, max), Chunk.unsafeFromArray)
  }

  takeBetween(min: number, max: number): Effect.Effect<Chunk.Chunk<Entry>> {
    // `Stream.fromQueue(queue, { maxChunkSize: 1 })` pulls with `takeBetween(1, 1)`: one entry.
    return this.fastOrSlow(
      () => Chunk.unsafeFromArray(this.pollEntries(Math.min(min, max), max)),
      Effect.map(this.waitFor(Math.min(min, max), max), Chunk.unsafeFromArray)
    )
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
      while (this.waiters.length > 0) this.wakeFirst()
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
  /**
   * The events that left the queue, newest last, as many as can still be in the history; or, for a
   * listener that drops new events, every accepted event on arrival (`recordsArrivals`).
   */
  readonly history: History<QmpEvent>
  readonly recordsArrivals: boolean
  /** For a typed listener: whether an event's data matches its name's Schema. */
  readonly validator: EventValidator | undefined
  /** It receives a fleet's gap events, whatever its names and filter. */
  readonly gaps: boolean
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
  readonly validator: EventValidator | undefined
  readonly gaps: boolean
}): ListenerState => {
  const history = new History<QmpEvent>(options.historyLimit)
  const recordsArrivals = options.strategy === "dropping" && options.capacity !== Number.POSITIVE_INFINITY
  const limit = options.historyLimit
  const queue: ListenerQueue = new ListenerQueue(
    recordsArrivals ? () => {} : (event) => {
      // An event with `limit` newer ones still pending can no longer be in the history.
      if (queue.pending < limit) history.push(event)
    }
  )
  return {
    names: options.names,
    filter: options.filter,
    capacity: options.capacity,
    strategy: options.strategy,
    queue,
    history,
    recordsArrivals,
    validator: options.validator,
    gaps: options.gaps,
    dropped: 0,
    droppedReported: 0
  }
}

/**
 * Puts an accepted event into the listener, applying its bound.
 *
 * @internal
 */
export const deliver = (state: ListenerState, event: QmpEvent): void => {
  const queue = state.queue
  if (state.recordsArrivals) {
    state.history.push(event)
    if (queue.pending >= state.capacity) {
      state.dropped++
      return
    }
  }
  queue.offer(event)
  // Sliding: the oldest goes once the new one is in, so that it leaves behind `capacity` newer events
  // (it is then in the history only if the history is longer than the queue).
  if (queue.pending > state.capacity) {
    state.dropped++
    queue.dropOldest()
  }
}

/**
 * The accepted events, oldest first, the newest `historyLimit` of them.
 *
 * @internal
 */
export const history = (state: ListenerState): ReadonlyArray<QmpEvent> => {
  if (state.recordsArrivals) return state.history.toArray()
  const all = state.history.toArray().concat(state.queue.pendingEvents())
  return all.length <= state.history.limit ? all : all.slice(all.length - state.history.limit)
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
 * On removal: drops the pending events (the history keeps them) and forgets why the listener was
 * closed, so that it can be registered again.
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
    () => state.queue.pollEvent(),
    Effect.flatMap(state.queue.takeEntries(1, 1), (entries) => unwrap(entries[0]))
  )

/** @internal */
export const poll = (state: ListenerState): Effect.Effect<Option.Option<QmpEvent>, ListenerClosed> =>
  state.queue.fastOrSlow(
    // Nothing pending (and no marker): none. An event: it, removed in this step. Else the slow path.
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
