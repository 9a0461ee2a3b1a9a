/**
 * The inside of an `EventListener`: its queue, history, bounds and closed state, and the operations
 * that the registry's dispatch fiber performs on it.
 *
 * Pending events live in an Effect `Queue` (so `take` waits, and `Stream.fromQueue` reads it) over
 * an unbounded backing queue that this module holds on to. Bounds are applied here, by the single
 * dispatch fiber, rather than by a bounded `Queue`: a sliding eviction is a synchronous `poll` of
 * the backing queue, so drops are counted exactly and the end marker can never be the one dropped.
 *
 * Mutable fields are written only by the dispatch fiber (delivery, close, reset) or inside one
 * synchronous block by a reader (`clear`): fibers never interleave inside a synchronous block.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type { EventFilter } from "../EventFilter.js"
import type { ListenerClosed } from "../QmpError.js"
import type { QmpEvent } from "../QmpMessage.js"
import { History } from "./history.js"
import { Ring } from "./ring.js"

/**
 * The end marker: it sits behind the pending events of a closed listener and stays there, so that
 * every `take` yields what was pending, then fails with `error`, and keeps failing.
 *
 * @internal
 */
export class Closed {
  constructor(readonly error: ListenerClosed) {}
}

/** @internal */
export type Entry = QmpEvent | Closed

const variance = { _A: (_: unknown) => _ }

/**
 * An unbounded FIFO that an Effect `Queue` is built over, kept reachable so that dispatch can
 * evict the oldest entry synchronously.
 */
class Backing implements Queue.BackingQueue<Entry> {
  readonly [Queue.BackingQueueTypeId] = variance as any
  private readonly ring = new Ring<Entry>()
  poll<Def>(def: Def): Entry | Def {
    return this.ring.poll(def)
  }
  pollUpTo(limit: number): Chunk.Chunk<Entry> {
    const entries: Array<Entry> = []
    while (entries.length < limit && this.ring.length > 0) entries.push(this.ring.poll(undefined)!)
    return Chunk.unsafeFromArray(entries)
  }
  offerAll(elements: Iterable<Entry>): Chunk.Chunk<Entry> {
    for (const element of elements) this.ring.offer(element)
    return Chunk.empty()
  }
  offer(element: Entry): boolean {
    this.ring.offer(element)
    return true
  }
  capacity(): number {
    return Number.POSITIVE_INFINITY
  }
  length(): number {
    return this.ring.length
  }
}

/** @internal */
export interface ListenerState {
  readonly names: ReadonlySet<string>
  readonly filter: EventFilter | undefined
  /** `Infinity` when unbounded. */
  readonly capacity: number
  readonly strategy: "sliding" | "dropping"
  readonly queue: Queue.Queue<Entry>
  readonly backing: Backing
  readonly history: History<QmpEvent>
  dropped: number
  /** The part of `dropped` already added to the `qmp_events_dropped` metric. */
  droppedReported: number
  closed: Closed | undefined
}

/** @internal */
export const makeState = (options: {
  readonly names: ReadonlySet<string>
  readonly filter: EventFilter | undefined
  readonly capacity: number
  readonly strategy: "sliding" | "dropping"
  readonly historyLimit: number
}): Effect.Effect<ListenerState> => {
  const backing = new Backing()
  return Effect.map(Queue.make(backing, Queue.droppingStrategy<Entry>()), (queue) => ({
    names: options.names,
    filter: options.filter,
    capacity: options.capacity,
    strategy: options.strategy,
    queue,
    backing,
    history: new History<QmpEvent>(options.historyLimit),
    dropped: 0,
    droppedReported: 0,
    closed: undefined
  }))
}

/**
 * Puts an accepted event into the listener: history first (it records every accepted event,
 * dropped or not), then the queue, applying the bound.
 *
 * @internal
 */
export const deliver = (state: ListenerState, event: QmpEvent): void => {
  state.history.push(event)
  if (state.backing.length() >= state.capacity) {
    state.dropped++
    if (state.strategy === "dropping") return
    state.backing.poll(undefined)
  }
  state.queue.unsafeOffer(event)
}

/**
 * Closes the listener: the end marker goes behind its pending events. Closing twice keeps the
 * first reason.
 *
 * @internal
 */
export const close = (state: ListenerState, error: ListenerClosed): void => {
  if (state.closed !== undefined) return
  state.closed = new Closed(error)
  state.queue.unsafeOffer(state.closed)
}

/** Drains the backing queue: the events, and the end marker if it was there. */
const drain = (state: ListenerState): { readonly events: Array<QmpEvent>; readonly marker: Closed | undefined } => {
  const events: Array<QmpEvent> = []
  let marker: Closed | undefined
  for (;;) {
    const entry = state.backing.poll(undefined)
    if (entry === undefined) return { events, marker }
    if (entry instanceof Closed) marker = entry
    else events.push(entry)
  }
}

/**
 * Drops the pending events and returns them; a closed listener stays closed.
 *
 * @internal
 */
export const clear = (state: ListenerState): Array<QmpEvent> => {
  const { events, marker } = drain(state)
  // A marker that a `take` holds right now is put back by that `take` itself.
  if (marker !== undefined) state.backing.offer(marker)
  return events
}

/**
 * On removal: drops the pending events and forgets why the listener was closed, so that it can be
 * registered again.
 *
 * @internal
 */
export const reset = (state: ListenerState): void => {
  drain(state)
  state.closed = undefined
}

/**
 * Number of pending events, not counting the end marker.
 *
 * @internal
 */
export const pending = (state: ListenerState): number =>
  Math.max(0, state.backing.length() - (state.closed === undefined ? 0 : 1))

/**
 * Turns a queue entry into what `take` gives: the event, or the failure of a closed listener, in
 * which case the marker goes back into the queue for every later `take`.
 *
 * @internal
 */
export const unwrap = (state: ListenerState) => (entry: Entry): Effect.Effect<QmpEvent, ListenerClosed> => {
  if (!(entry instanceof Closed)) return Effect.succeed(entry)
  return Effect.suspend(() => {
    // Put the marker back only if the listener is still closed by it: a `remove` may have reset it.
    if (state.closed === entry) state.queue.unsafeOffer(entry)
    return Effect.fail(entry.error)
  })
}

/**
 * `take`: when an entry is pending, straight from the backing queue (no `take` can be waiting then:
 * the queue hands an offer to a waiting taker directly), in two steps of the runtime instead of
 * four; else through the queue, waiting, unless the listener has ended and holds nothing more.
 *
 * @internal
 */
export const take = (state: ListenerState): Effect.Effect<QmpEvent, ListenerClosed> => {
  const unwrapEntry = unwrap(state)
  const wait = Effect.flatMap(state.queue.take, unwrapEntry)
  return Effect.suspend(() => {
    const entry = state.backing.poll(undefined)
    if (entry !== undefined) return unwrapEntry(entry)
    const ended = endedAndEmpty(state)
    return ended === undefined ? wait : Effect.fail(ended)
  })
}

/**
 * Where a listener keeps its state; only the registry reaches for it.
 *
 * @internal
 */
export const StateId: unique symbol = Symbol.for("effect-qmp/EventListener/state")

/** @internal */
export const stateOf = (listener: object): ListenerState => (listener as { readonly [StateId]: ListenerState })[StateId]

/**
 * Why a closed listener with nothing left in its queue gives no more, or `undefined`. The end marker
 * says so too, but it can be lost: Effect's `Queue` drops the item of a `take` interrupted at the
 * moment it was handed that item. Checking the state first keeps every later `take` failing.
 *
 * @internal
 */
export const endedAndEmpty = (state: ListenerState): ListenerClosed | undefined =>
  state.closed !== undefined && state.backing.length() === 0 ? state.closed.error : undefined
