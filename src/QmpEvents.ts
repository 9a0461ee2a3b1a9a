/**
 * `QmpEvents` is the registry of event listeners: the service that a QMP connection feeds and that
 * programs listen to.
 *
 * Every event published is offered to each registered listener, which keeps its own copy if it
 * accepts it. A default listener, `events`, hears everything. Listeners are registered for a scope
 * (`listen`, `listener`), or by hand (`register`, `remove`), or consumed as a `Stream` (`subscribe`).
 *
 * Dispatch runs in one fiber of the layer's scope, started by the first request. Publishing and the changes to the registry
 * (`register`, `remove`, `end`) pass through it in order, so that a listener hears nothing after its
 * `remove` returned, and a batch published before a `register` returned is never half-delivered.
 *
 * This is the `Events` mix-in of QEMU's Python client (`qemu.qmp.events`), the Effect way.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { EventFilter } from "./EventFilter.js"
import * as EventListener from "./EventListener.js"
import { loadDefaultModule } from "./internal/defaultModule.js"
import * as Dispatch from "./internal/dispatch.js"
import { QmpDisconnected } from "./QmpError.js"
import type { ListenerClosed, ListenerError } from "./QmpError.js"
import type { QmpEvent } from "./QmpMessage.js"
import type { CommandShape, Generated } from "./QmpSchema.js"

/**
 * A typed `listener`: names of the module's events (a misspelled one does not compile), or none.
 *
 * @since 0.1.0
 * @category models
 */
export interface TypedListener<Events extends EventListener.EventMap<Events>> {
  <const N extends keyof Events & string>(
    names: N | ReadonlyArray<N> | ReadonlySet<N>,
    filter?: EventFilter<EventListener.EventOf<N, Events>>,
    options?: EventListener.QueueOptions
  ): Effect.Effect<EventListener.EventListener<EventListener.EventOf<N, Events>>, never, Scope.Scope>
  (
    names?: undefined,
    filter?: EventFilter,
    options?: EventListener.UntypedOptions
  ): Effect.Effect<EventListener.EventListener, never, Scope.Scope>
}

/**
 * A typed `subscribe`: as `TypedListener`, a `Stream`.
 *
 * @since 0.1.0
 * @category models
 */
export interface TypedSubscribe<Events extends EventListener.EventMap<Events>> {
  <const N extends keyof Events & string>(
    names: N | ReadonlyArray<N> | ReadonlySet<N>,
    filter?: EventFilter<EventListener.EventOf<N, Events>>,
    options?: EventListener.QueueOptions
  ): Stream.Stream<EventListener.EventOf<N, Events>, ListenerClosed>
  (
    names?: undefined,
    filter?: EventFilter,
    options?: EventListener.UntypedOptions
  ): Stream.Stream<QmpEvent, ListenerClosed>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service<Events extends EventListener.EventMap<Events> = EventListener.DefaultEvents> {
  /**
   * The default listener: always registered, it hears every event, a fleet's gap events included
   * (bounded: sliding, 10 000).
   */
  readonly events: EventListener.EventListener
  /** Activates a listener. Fails with `ListenerError` ("AlreadyRegistered") if it is active already. */
  readonly register: (listener: EventListener.EventListener<any>) => Effect.Effect<void, ListenerError>
  /**
   * Deactivates a listener and drops its pending events; it can be registered again later. Fails with
   * `ListenerError` for the default listener ("DefaultListener") or one not registered ("NotRegistered").
   */
  readonly remove: (listener: EventListener.EventListener<any>) => Effect.Effect<void, ListenerError>
  /** Activates listeners for the current scope: all of them, or none if one is active already. */
  readonly listen: (
    ...listeners: ReadonlyArray<EventListener.EventListener<any>>
  ) => Effect.Effect<void, ListenerError, Scope.Scope>
  /**
   * Creates a listener and activates it for the current scope. It is registered when this effect
   * completes: create it before running the command whose events it must hear. Given names (of the
   * registry's module: QEMU 7.2's by default), its events are typed, and only those whose data
   * matches their name's Schema reach it; without names it hears every event. For names the module
   * lacks, `listenerUnknown`.
   *
   * @example
   * ```ts
   * const jobs = yield* events.listener("JOB_STATUS_CHANGE", (e) => e.data.id === "job1")
   * const { data } = yield* jobs.take // data.status: JobStatus
   * ```
   */
  readonly listener: TypedListener<Events>
  /**
   * `listener` for any names, untyped: a newer QEMU's events, a test server's, names known at run
   * time. With `gaps: true` it also receives a fleet's gap events.
   */
  readonly listenerUnknown: (
    names?: EventListener.EventNames,
    filter?: EventFilter,
    options?: EventListener.UntypedOptions
  ) => Effect.Effect<EventListener.EventListener, never, Scope.Scope>
  /**
   * The events that `names` and `filter` accept, as a `Stream` that owns its listener, typed as
   * `listener`'s. The listener is registered when the stream is first pulled: for watching, not for
   * racing a command (use `listener` for that).
   */
  readonly subscribe: TypedSubscribe<Events>
  /** `subscribe` for any names, untyped. */
  readonly subscribeUnknown: (
    names?: EventListener.EventNames,
    filter?: EventFilter,
    options?: EventListener.UntypedOptions
  ) => Stream.Stream<QmpEvent, ListenerClosed>
  /** Offers an event to every registered listener; returns once each has been offered it. */
  readonly publish: (event: QmpEvent) => Effect.Effect<void>
  /** The same for a batch of events, in order, in one hand-off to the dispatch fiber. */
  readonly publishAll: (events: Iterable<QmpEvent>) => Effect.Effect<void>
  /**
   * No more events will come: every listener yields what it holds, then fails with `reason`. A
   * listener registered afterwards fails at once. Ending twice keeps the first reason.
   */
  readonly end: (reason: QmpDisconnected) => Effect.Effect<void>
}

/**
 * The `QmpEvents` service.
 *
 * @since 0.1.0
 * @category tags
 */
export class QmpEvents extends Context.Tag("effect-qmp/QmpEvents")<QmpEvents, Service>() {}

/** How `typed` reaches a registry's own way of making listeners. */
const RetypeId: unique symbol = Symbol.for("effect-qmp/QmpEvents/retype")

type Retype = (module: Generated<any, any>) => Pick<Service<any>, "listener" | "subscribe">

/**
 * The registry, its `listener` and `subscribe` typed by another generated module (`qmp codegen` for
 * your QEMU), and checking events with that module's Schemas. The registry is the same.
 *
 * @example
 * ```ts
 * import { module as Qemu9 } from "./qemu/v9_2/index.js"
 *
 * const events = yield* QmpEvents.typed(Qemu9)
 * const migrations = yield* events.listener("MIGRATION")
 * ```
 *
 * @since 0.1.0
 * @category typing
 */
export const typed = <
  Commands extends { readonly [C in keyof Commands]: CommandShape },
  Events extends EventListener.EventMap<Events>
>(
  module: Generated<Commands, Events>
): Effect.Effect<Service<Events>, never, QmpEvents> =>
  Effect.map(QmpEvents, (events) =>
    ({
      ...events,
      ...((events as unknown as { readonly [RetypeId]: Retype })[RetypeId](module))
    }) as unknown as Service<Events>)

/**
 * The default listener's bound: the newest 10 000 pending events are kept when nobody reads it.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultListenerCapacity = 10_000

/** Why listeners end when their registry's scope closes (made when needed: a start-up saves its cost). */
const registryClosed = (): QmpDisconnected =>
  new QmpDisconnected({ reason: "Ended", detail: "the QmpEvents registry was closed" })

/**
 * A registry and what only its maker may do with it: a fleet publishes gap events into the
 * registry of each of its VMs, and taps each one's delivered batches for `all`.
 *
 * @internal
 */
export interface Registry {
  readonly service: Service
  /**
   * Delivers the gap event that `take` gives, if any, to the listeners that take gaps (the default
   * listener among them). `take` runs in the same synchronous step as the hand-off to the dispatch
   * fiber: of two fibers racing to publish one pending gap, the one that takes it has it in line
   * before anything the other publishes next.
   */
  publishGap(take: () => QmpEvent | undefined): Effect.Effect<void>
  /**
   * Hands a batch to the dispatch fiber at once, behind every request before it; `delivered` runs
   * once it is in every listener. `false` once the registry is closed.
   */
  offerAll(events: ReadonlyArray<QmpEvent>, delivered: () => void): boolean
}

/**
 * How `makeRegistry` builds a registry: its default listener's bounds, and a tap on every batch
 * delivered.
 *
 * @internal
 */
export interface RegistryOptions {
  readonly defaultListener?: EventListener.QueueOptions | undefined
  readonly tap?: Dispatch.Tap | undefined
}

/**
 * Creates a registry whose dispatch fiber lives in the current scope (from the first request on).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<Service, never, Scope.Scope> = Effect.suspend(() =>
  Effect.map(makeRegistry({}), (registry) => registry.service)
)

/**
 * `make`, with the default listener's bounds of `options`, and the registry's gap door.
 *
 * @internal
 */
export const makeRegistry = (options: RegistryOptions): Effect.Effect<Registry, never, Scope.Scope> =>
  Effect.gen(function*() {
    const events = yield* EventListener.make({
      capacity: defaultListenerCapacity,
      strategy: "sliding",
      ...options.defaultListener,
      gaps: true
    })
    const registry = new RegistryService(
      events,
      yield* Ref.make(Dispatch.emptyRegistry(events)),
      options.tap,
      // The dispatch fiber starts with the first request, with the services and fiber refs of the
      // registry's maker (as if forked here): a registry that is never used, as most of a fleet's
      // idle VMs' are, holds no fiber.
      Runtime.runFork(yield* Effect.runtime<never>())
    )
    // When the registry's scope closes, listeners still held elsewhere must not wait forever: stop
    // the dispatch fiber, carry out what it left in the inbox, and end every listener.
    // (`Scope.addFinalizer`, not `Effect.addFinalizer`, which keeps a copy of this fiber's refs.)
    yield* Scope.addFinalizer(yield* Effect.scope, Effect.suspend(() => registry.close()))
    return registry
  })

/** What `listener` and its kin take: names, a filter, the queue's options. */
type ListenerArgs = [
  names?: EventListener.EventNames,
  filter?: EventFilter<any>,
  options?: EventListener.UntypedOptions
]

/**
 * A registry: the service's functions are its own (they can be passed on, as any service's), the
 * rest is shared by every registry (a fleet holds one per VM).
 */
class RegistryService implements Registry {
  private readonly inbox = new Dispatch.Inbox()
  /** Set once the dispatch fiber is gone: requests are then carried out by their caller. */
  private closed = false
  private dispatcher: Fiber.RuntimeFiber<never> | undefined = undefined

  constructor(
    readonly events: EventListener.EventListener,
    private readonly registry: Ref.Ref<Dispatch.Registry>,
    private readonly tap: Dispatch.Tap | undefined,
    private readonly fork: (effect: Effect.Effect<never>) => Fiber.RuntimeFiber<never>
  ) {}

  readonly register = (listener: EventListener.EventListener<any>): Effect.Effect<void, ListenerError> =>
    this.registerAll([listener])

  readonly remove = (listener: EventListener.EventListener<any>): Effect.Effect<void, ListenerError> =>
    this.send<ListenerError>((done) => ({ _tag: "Remove", listener, done }))

  readonly listen = (
    ...listeners: ReadonlyArray<EventListener.EventListener<any>>
  ): Effect.Effect<void, ListenerError, Scope.Scope> =>
    Effect.acquireRelease(
      this.registerAll(listeners),
      () => Effect.forEach(listeners, (listener) => Effect.ignore(this.remove(listener)), { discard: true })
    )

  readonly listener = (...args: ListenerArgs) => this.listenerWith(loadDefaultModule, ...args)

  readonly listenerUnknown = (...args: ListenerArgs) => this.listenerWith(undefined, ...args)

  readonly subscribe = (...args: ListenerArgs) => this.subscribeWith(loadDefaultModule, ...args)

  readonly subscribeUnknown = (...args: ListenerArgs) => this.subscribeWith(undefined, ...args)

  readonly [RetypeId] = (module: Generated<any, any>) => {
    const load = () => Promise.resolve(module)
    return {
      listener: (...args: ListenerArgs) => this.listenerWith(load, ...args),
      subscribe: (...args: ListenerArgs) => this.subscribeWith(load, ...args)
    } as Pick<Service<any>, "listener" | "subscribe">
  }

  readonly publish = (event: QmpEvent): Effect.Effect<void> => this.publishAll([event])

  readonly publishAll = (batch: Iterable<QmpEvent>): Effect.Effect<void> => {
    const events = Array.isArray(batch) ? batch as ReadonlyArray<QmpEvent> : Array.from(batch)
    return events.length === 0 ? Effect.void : this.send<never>((done) => new Dispatch.Publish(events, done))
  }

  /** A connection's batch, handed on from its socket callback (see `Session.EventSink`). */
  offerAll(events: ReadonlyArray<QmpEvent>, delivered: () => void): boolean {
    if (this.closed) return false
    this.offer(new Dispatch.Publish(events, delivered))
    return true
  }

  readonly end = (reason: QmpDisconnected): Effect.Effect<void> =>
    this.send<never>((done) => ({ _tag: "End", reason, done }))

  get service(): Service {
    return this as unknown as Service
  }

  publishGap(take: () => QmpEvent | undefined): Effect.Effect<void> {
    return this.send<never>((done) => {
      const event = take()
      return event === undefined ? undefined : { _tag: "Gap", event, done }
    })
  }

  private registerAll(listeners: ReadonlyArray<EventListener.EventListener<any>>): Effect.Effect<void, ListenerError> {
    return this.send<ListenerError>((done) => ({ _tag: "Register", listeners, done }))
  }

  /** A listener made with `module`'s types (`undefined`: untyped), active for the current scope. */
  private listenerWith(
    module: (() => Promise<Generated<any, any>>) | undefined,
    names: EventListener.EventNames | undefined,
    filter: EventFilter<any> | undefined,
    options: EventListener.UntypedOptions = {}
  ): Effect.Effect<EventListener.EventListener<any>, never, Scope.Scope> {
    return Effect.flatMap(
      EventListener.makeWith({ ...options, names, filter }, module),
      (listener) => Effect.as(Effect.orDie(this.listen(listener)), listener)
    )
  }

  private subscribeWith(
    module: (() => Promise<Generated<any, any>>) | undefined,
    names: EventListener.EventNames | undefined,
    filter: EventFilter<any> | undefined,
    options: EventListener.UntypedOptions | undefined
  ): Stream.Stream<any, ListenerClosed> {
    return Stream.unwrapScoped(
      Effect.map(this.listenerWith(module, names, filter, options), (listener) => listener.stream)
    )
  }

  /**
   * Hands a request to the dispatch fiber and waits until it has been carried out. A sender that is
   * interrupted while it waits leaves its request to be carried out all the same. `request` may make
   * no request (`undefined`): the sender then returns at once.
   */
  private send<E>(request: (done: Dispatch.Done<E>) => Dispatch.Request | undefined): Effect.Effect<void, E> {
    return Effect.async<void, E>((resume) => {
      // Checked and enqueued in one synchronous step: the finalizer cannot close the inbox in between
      // and leave this request where nobody takes it.
      if (!this.closed) {
        const req = request(resume)
        if (req === undefined) return resume(Exit.void)
        return this.offer(req)
      }
      let result: Exit.Exit<void, E> = Exit.void
      const req = request((exit) => {
        result = exit
      })
      if (req === undefined) return resume(Exit.void)
      resume(Effect.zipRight(Dispatch.handle(this.registry, req, this.tap), Effect.suspend(() => result)))
    })
  }

  /** Hands a request to the dispatch fiber, started with the first. */
  private offer(request: Dispatch.Request): void {
    this.inbox.offer(request)
    if (this.dispatcher === undefined) {
      this.dispatcher = this.fork(
        Dispatch.run(this.registry, this.inbox, this.tap).pipe(
          Effect.annotateLogs({ module: "QmpEvents", fiber: "dispatch" })
        )
      )
    }
  }

  /** The registry's scope closed. */
  close(): Effect.Effect<void> {
    const { registry, tap } = this
    return Effect.suspend(() => this.dispatcher === undefined ? Effect.void : Fiber.interrupt(this.dispatcher)).pipe(
      Effect.zipRight(Effect.sync(() => {
        this.closed = true
        return this.inbox.takeAll()
      })),
      Effect.flatMap((requests) => Effect.forEach(requests, (request) => Dispatch.handle(registry, request, tap))),
      Effect.zipRight(Dispatch.handle(registry, { _tag: "End", reason: registryClosed(), done: () => {} }))
    )
  }
}

/**
 * The registry as a layer: its dispatch fiber lives as long as the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<QmpEvents> = Layer.scoped(QmpEvents, make)
