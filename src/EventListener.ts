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
import { loadDefaultModule } from "./internal/defaultModule.js"
import * as internal from "./internal/listener.js"
import type { EventValidator } from "./internal/typedDecode.js"
import { eventValidator } from "./internal/typedDecode.js"
import type * as Qemu72 from "./qemu/v7_2/types.js"
import type { ListenerClosed } from "./QmpError.js"
import type { QmpEvent, Timestamp } from "./QmpMessage.js"
import type { EventShape, Generated } from "./QmpSchema.js"

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
 * The events a map of events types: each name's `data` (a generated module's `Events`).
 *
 * @since 0.1.0
 * @category typing
 */
export type EventMap<Events> = { readonly [E in keyof Events]: EventShape }

/**
 * QEMU 7.2's events: what listeners are typed by unless a module says otherwise.
 *
 * @since 0.1.0
 * @category typing
 */
export type DefaultEvents = Qemu72.Events

/**
 * An event of one of the names `N`, its `data` typed: `EventOf<"JOB_STATUS_CHANGE">` has
 * `data.status: JobStatus`. A union of names gives a union of events, told apart by `event`.
 *
 * @since 0.1.0
 * @category typing
 */
export type EventOf<N extends keyof Events & string, Events extends EventMap<Events> = DefaultEvents> = N extends
  unknown ? TypedEvent<N, Events[N]["data"]> : never

type TypedEvent<N extends string, Data> = [Data] extends [undefined] ?
  { readonly event: N; readonly timestamp: Timestamp } :
  { readonly event: N; readonly data: Data; readonly timestamp: Timestamp }

/**
 * What every listener's events are at least: a name and a timestamp, and perhaps data.
 *
 * @since 0.1.0
 * @category typing
 */
export interface AnyEvent {
  readonly event: string
  readonly data?: unknown
  readonly timestamp: Timestamp
}

/**
 * A listener: its events are `QmpEvent`s, or, for a listener of known names, those events typed.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventListener<E extends AnyEvent = QmpEvent> {
  readonly [TypeId]: TypeId
  /** The names this listener accepts; empty for all events. */
  readonly names: ReadonlySet<string>
  /** The filter applied after the names, if any (it was given this listener's events). */
  readonly filter: EventFilter<any> | undefined
  /**
   * `true` if this listener accepts the event: its name first, then (typed listeners) its data
   * against the name's Schema, then the filter.
   */
  readonly accept: (event: QmpEvent) => boolean
  /** The next pending event, waiting for one if there is none (Python's `get()`). */
  readonly take: Effect.Effect<E, ListenerClosed>
  /** The next pending event if there is one, without waiting. */
  readonly poll: Effect.Effect<Option.Option<E>, ListenerClosed>
  /** `true` if no event is pending (Python's `empty()`). */
  readonly isEmpty: Effect.Effect<boolean>
  /** Drops the pending events and returns them; `history` keeps them. */
  readonly clear: Effect.Effect<ReadonlyArray<E>>
  /** The events this listener accepted, oldest first, witnessed or not, up to `historyLimit`. */
  readonly history: Effect.Effect<ReadonlyArray<E>>
  /**
   * The pending and future events, one per pull (Python's `async for`): a stream stopped early
   * leaves the rest for the next `take`. It fails when the listener is closed, after yielding what
   * was pending.
   */
  readonly stream: Stream.Stream<E, ListenerClosed>
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
 * What an untyped listener may ask for beyond its queue: the gap events of a `QmpFleet`.
 *
 * @since 0.1.0
 * @category models
 */
export interface UntypedOptions extends QueueOptions {
  /**
   * Also receive the synthetic gap events of a `QmpFleet` (`QmpFleet.gapEvent`, named
   * `"effect-qmp.gap"`): after a VM's connection was lost and restored, one says when, so that events
   * may be missing in between. They bypass `names` and `filter`. `false` by default; the default
   * listener always receives them, and typed listeners never do.
   */
  readonly gaps?: boolean | undefined
}

/**
 * A listener of any names (`makeUnknown`), or of every event (no names).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends UntypedOptions {
  /** The names to accept; `undefined` or empty: every event. */
  readonly names?: EventNames | undefined
  /** A predicate applied after the names. */
  readonly filter?: EventFilter | undefined
}

/**
 * A listener of known names, typed: `names` must be names of the module (a misspelled name does not
 * compile), and `filter` sees typed events.
 *
 * @since 0.1.0
 * @category models
 */
export interface TypedOptions<N extends keyof Events & string, Events extends EventMap<Events> = DefaultEvents>
  extends QueueOptions
{
  readonly names: N | ReadonlyArray<N> | ReadonlySet<N>
  readonly filter?: EventFilter<EventOf<N, Events>> | undefined
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
 * Given names, the listener is typed by QEMU 7.2's events: its `take` gives events whose `data` is
 * typed, and only events whose data matches the name's Schema reach it (a wrong type or a missing
 * member keeps an event out; a member or an enum value a newer QEMU added does not). Without names
 * it hears every event, untyped. For names the module lacks (a newer QEMU's, a test server's), use
 * `makeUnknown`.
 *
 * @example
 * ```ts
 * import { EventListener } from "effect-qmp"
 *
 * // every event of one block job, whatever its name
 * const jobListener = (id: string) =>
 *   EventListener.make({
 *     names: ["JOB_STATUS_CHANGE", "BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED"],
 *     filter: (e) => e.event === "JOB_STATUS_CHANGE" ? e.data.id === id : e.data.device === id
 *   })
 * ```
 *
 * Dies with an `IllegalArgumentException` if `capacity` is not a positive integer or `historyLimit`
 * is not a non-negative integer (each may be `Infinity`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: {
  <const N extends keyof DefaultEvents & string>(options: TypedOptions<N>): Effect.Effect<EventListener<EventOf<N>>>
  (options?: UntypedOptions & { readonly names?: undefined; readonly filter?: EventFilter | undefined }): Effect.Effect<
    EventListener
  >
} = ((options: Options = {}): Effect.Effect<EventListener<any>> => makeWith(options, loadDefaultModule)) as any

/**
 * Creates an untyped listener of any names: for events the module lacks (a newer QEMU's, a test
 * server's) and names known only at run time. Its events are `QmpEvent`s, unchecked.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeUnknown = (options: Options = {}): Effect.Effect<EventListener> => makeWith(options, undefined)

/** Modules loaded by typed listeners, and their validators once made: later listeners are made at once. */
const loadedModules = new WeakMap<
  () => Promise<Generated<any, any>>,
  { readonly module: Generated<any, any>; readonly validator: EventValidator | undefined }
>()

/** One of the names carries data that a Schema checks. */
const needsValidator = (module: Generated<any, any>, names: ReadonlySet<string>): boolean =>
  [...names].some((name) => Object.hasOwn(module.events, name) && module.events[name].data === true)

/**
 * A listener typed by `module` (loaded when needed; `undefined`: untyped). The module's Schemas are
 * loaded only if one of the names carries data.
 *
 * @internal
 */
export const makeWith = (
  options: Options,
  module: (() => Promise<Generated<any, any>>) | undefined
): Effect.Effect<EventListener<any>> =>
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
    const names = toNames(options.names)
    // A typed listener of names never hears gaps, whatever a JavaScript caller passes.
    const gaps = options.gaps === true && (module === undefined || names.size === 0)
    const build = (validator: EventValidator | undefined) =>
      fromState(internal.makeState({
        names,
        filter: options.filter,
        capacity,
        strategy: options.strategy ?? "sliding",
        historyLimit,
        validator,
        gaps
      }))
    if (module === undefined || names.size === 0) return Effect.sync(() => build(undefined))
    const cached = loadedModules.get(module)
    if (cached !== undefined && !needsValidator(cached.module, names)) return Effect.sync(() => build(undefined))
    if (cached?.validator !== undefined) return Effect.sync(() => build(cached.validator))
    return Effect.promise(async () => {
      const loaded = await module()
      const validator = needsValidator(loaded, names) ? await eventValidator(loaded) : undefined
      loadedModules.set(module, { module: loaded, validator: validator ?? loadedModules.get(module)?.validator })
      return build(validator)
    })
  })

const fromState = (state: internal.ListenerState): EventListener<any> => new Listener(state)

/**
 * A listener: its state, and the values of its interface, each made on its first use and kept. A
 * listener that is never read (a fleet's idle VMs' default listeners, a thousand of them) builds
 * none of them: made ahead, its `take`, `poll` and `stream` alone cost some KiB per listener.
 */
class Listener implements EventListener<any> {
  readonly [TypeId]: TypeId = TypeId
  readonly [internal.StateId]: internal.ListenerState
  readonly names: ReadonlySet<string>
  readonly filter: EventFilter | undefined
  private made: {
    accept?: (event: QmpEvent) => boolean
    take?: Effect.Effect<QmpEvent, ListenerClosed>
    poll?: Effect.Effect<Option.Option<QmpEvent>, ListenerClosed>
    isEmpty?: Effect.Effect<boolean>
    clear?: Effect.Effect<ReadonlyArray<QmpEvent>>
    history?: Effect.Effect<ReadonlyArray<QmpEvent>>
    stream?: Stream.Stream<QmpEvent, ListenerClosed>
    dropped?: Effect.Effect<number>
  } | undefined = undefined

  constructor(state: internal.ListenerState) {
    this[internal.StateId] = state
    this.names = state.names
    this.filter = state.filter
  }

  private get cache() {
    return this.made ??= {}
  }

  get accept(): (event: QmpEvent) => boolean {
    const state = this[internal.StateId]
    const { filter, names } = state
    return this.cache.accept ??= (event) =>
      (names.size === 0 || names.has(event.event)) &&
      (state.validator === undefined || state.validator.validate(event)) &&
      (filter === undefined || filter(event))
  }

  get take(): Effect.Effect<QmpEvent, ListenerClosed> {
    return this.cache.take ??= internal.take(this[internal.StateId])
  }

  get poll(): Effect.Effect<Option.Option<QmpEvent>, ListenerClosed> {
    return this.cache.poll ??= internal.poll(this[internal.StateId])
  }

  get isEmpty(): Effect.Effect<boolean> {
    const state = this[internal.StateId]
    return this.cache.isEmpty ??= Effect.sync(() => state.queue.pending === 0)
  }

  get clear(): Effect.Effect<ReadonlyArray<QmpEvent>> {
    const state = this[internal.StateId]
    return this.cache.clear ??= Effect.sync(() => state.queue.drain())
  }

  get history(): Effect.Effect<ReadonlyArray<QmpEvent>> {
    const state = this[internal.StateId]
    return this.cache.history ??= Effect.sync(() => internal.history(state))
  }

  get stream(): Stream.Stream<QmpEvent, ListenerClosed> {
    return this.cache.stream ??= internal.stream(this[internal.StateId])
  }

  get dropped(): Effect.Effect<number> {
    const state = this[internal.StateId]
    return this.cache.dropped ??= Effect.sync(() => state.dropped)
  }
}

/**
 * `true` for an `EventListener`.
 *
 * @since 0.1.0
 * @category guards
 */
export const isEventListener = (u: unknown): u is EventListener<any> =>
  typeof u === "object" && u !== null && TypeId in u
