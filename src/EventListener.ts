/**
 * An `EventListener` is a FIFO queue of the events it accepts, with a history.
 *
 * Each registered listener gets its own copy of every event it accepts: consuming events from one
 * listener never deprives another. A listener accepts an event when the event's name is one of its
 * `names` (or it has none) and then its `filter` (if any) returns `true`. Events enter a listener
 * only through the `QmpEvents` registry it is registered with.
 *
 * This is `EventListener` of QEMU's Python client (`qemu.qmp.events`), the Effect way: `get()` is
 * `take`, `empty()` is `isEmpty`, `async for` is `stream`.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Stream from "effect/Stream"
import type { EventFilter } from "./EventFilter.js"
import * as internal from "./internal/listener.js"
import type { ListenerClosed } from "./QmpError.js"
import type { QmpEvent } from "./QmpMessage.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-qmp/EventListener")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * One event name, several, or none (`undefined` or empty: every event).
 *
 * @since 0.1.0
 * @category models
 */
export type EventNames = string | Iterable<string> | undefined

/**
 * @since 0.1.0
 * @category models
 */
export interface EventListener {
  readonly [TypeId]: TypeId
  /** The names this listener accepts; empty for all events. */
  readonly names: ReadonlySet<string>
  /** The filter applied after the names, if any. */
  readonly filter: EventFilter | undefined
  /** `true` if this listener accepts the event: its name first, then the filter. */
  readonly accept: (event: QmpEvent) => boolean
  /** The next pending event, waiting for one if there is none (Python's `get()`). */
  readonly take: Effect.Effect<QmpEvent, ListenerClosed>
  /** The next pending event if there is one, without waiting. */
  readonly poll: Effect.Effect<Option.Option<QmpEvent>, ListenerClosed>
  /** `true` if no event is pending (Python's `empty()`). */
  readonly isEmpty: Effect.Effect<boolean>
  /** Drops the pending events and returns them; `history` keeps them. */
  readonly clear: Effect.Effect<ReadonlyArray<QmpEvent>>
  /** The events this listener accepted, oldest first, witnessed or not, up to `historyLimit`. */
  readonly history: Effect.Effect<ReadonlyArray<QmpEvent>>
  /**
   * The pending and future events, one per pull (Python's `async for`): a stream stopped early
   * leaves the rest for the next `take`. It fails when the listener is closed, after yielding what
   * was pending.
   */
  readonly stream: Stream.Stream<QmpEvent, ListenerClosed>
  /** How many events a bounded queue has discarded so far. */
  readonly dropped: Effect.Effect<number>
}

/**
 * How a listener keeps events: its queue's bound and its history's. Shared by `make` and
 * `QmpEvents.listener`.
 *
 * @since 0.1.0
 * @category models
 */
export interface QueueOptions {
  /** Pending events kept at most; unbounded by default. */
  readonly capacity?: number | undefined
  /** What a full queue does with a new event: `sliding` (the default) drops the oldest, `dropping` the new one. */
  readonly strategy?: "sliding" | "dropping" | undefined
  /** Events kept in `history`: 10 000 by default; `Infinity` keeps all. */
  readonly historyLimit?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options extends QueueOptions {
  /** The names to accept; `undefined` or empty: every event. */
  readonly names?: EventNames | undefined
  /** A predicate applied after the names. */
  readonly filter?: EventFilter | undefined
}

/**
 * The default `historyLimit`.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultHistoryLimit = 10_000

const toNames = (names: EventNames): ReadonlySet<string> =>
  names === undefined ? new Set() : typeof names === "string" ? new Set([names]) : new Set(names)

const isCount = (n: number, allowZero: boolean): boolean =>
  n === Number.POSITIVE_INFINITY || (Number.isInteger(n) && (allowZero ? n >= 0 : n > 0))

/**
 * Creates a listener. It hears nothing until it is registered with `QmpEvents` (`register`,
 * `listen`), or create and register one in a scope with `QmpEvents.listener`.
 *
 * @example
 * ```ts
 * import { EventFilter, EventListener } from "effect-qmp"
 *
 * // every event of one block job, whatever its name
 * const jobListener = (id: string) =>
 *   EventListener.make({
 *     names: ["JOB_STATUS_CHANGE", "BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED"],
 *     filter: (e) => e.data?.id === id || e.data?.device === id
 *   })
 * ```
 *
 * Dies with an `IllegalArgumentException` if `capacity` is not a positive integer or `historyLimit`
 * is not a non-negative integer (each may be `Infinity`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<EventListener> =>
  Effect.suspend(() => {
    const capacity = options.capacity ?? Number.POSITIVE_INFINITY
    const historyLimit = options.historyLimit ?? defaultHistoryLimit
    if (!isCount(capacity, false)) {
      return Effect.die(new Cause.IllegalArgumentException(`capacity must be a positive integer, got ${capacity}`))
    }
    if (!isCount(historyLimit, true)) {
      return Effect.die(
        new Cause.IllegalArgumentException(`historyLimit must be a non-negative integer, got ${historyLimit}`)
      )
    }
    return Effect.sync(() =>
      fromState(internal.makeState({
        names: toNames(options.names),
        filter: options.filter,
        capacity,
        strategy: options.strategy ?? "sliding",
        historyLimit
      }))
    )
  })

const fromState = (state: internal.ListenerState): EventListener => {
  const { filter, names } = state
  const listener: EventListener & { readonly [internal.StateId]: internal.ListenerState } = {
    [TypeId]: TypeId,
    [internal.StateId]: state,
    names,
    filter,
    accept: (event) => (names.size === 0 || names.has(event.event)) && (filter === undefined || filter(event)),
    take: internal.take(state),
    poll: internal.poll(state),
    isEmpty: Effect.sync(() => state.queue.pending === 0),
    clear: Effect.sync(() => state.queue.drain()),
    history: Effect.sync(() => internal.history(state)),
    stream: internal.stream(state),
    dropped: Effect.sync(() => state.dropped)
  }
  return listener
}

/**
 * `true` for an `EventListener`.
 *
 * @since 0.1.0
 * @category guards
 */
export const isEventListener = (u: unknown): u is EventListener => typeof u === "object" && u !== null && TypeId in u
