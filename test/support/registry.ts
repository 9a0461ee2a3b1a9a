/**
 * Helpers for tests of the event registry and its listeners: a fresh registry per test, and ways to
 * read a listener that fail fast instead of hanging.
 */
import { Chunk, Effect, Stream } from "effect"
import type { Scope } from "effect"
import type { EventListener, QmpError, QmpMessage } from "../../src/index.js"
import { QmpEvents } from "../../src/index.js"

type QmpEvent = QmpMessage.QmpEvent

/**
 * Runs `body` with a fresh `QmpEvents.layer`; what `body` registers lives in a scope of its own,
 * closed before the layer's.
 */
export const withEvents = <A, E>(
  body: (qmp: QmpEvents.Service) => Effect.Effect<A, E, Scope.Scope | QmpEvents.QmpEvents>
): Effect.Effect<A, E> => Effect.flatMap(QmpEvents.QmpEvents, body).pipe(Effect.scoped, Effect.provide(QmpEvents.layer))

/** The names of events, in order. */
export const names = (events: Iterable<QmpEvent>): Array<string> => Array.from(events, (event) => event.event)

/** The `serial` a test put in an event's data, to tell events apart. */
export const serial = (event: QmpEvent): number => event.data?.serial as number

/** The serials of events, in order. */
export const serials = (events: Iterable<QmpEvent>): Array<number> => Array.from(events, serial)

/**
 * `take`, for an event that must be pending already: dies at once instead of waiting. (A `take`
 * that waits would hang the test: on `TestClock`, `Effect.timeout` never fires by itself.)
 */
export const takeNow = (listener: EventListener.EventListener): Effect.Effect<QmpEvent, QmpError.ListenerClosed> =>
  Effect.raceFirst(
    listener.take,
    Effect.yieldNow().pipe(Effect.repeatN(50), Effect.zipRight(Effect.dieMessage("take waited: no event pending")))
  )

/** The next `n` events of a listener, through its stream. */
export const collect = <E extends EventListener.AnyEvent>(
  listener: EventListener.EventListener<E>,
  n: number
): Effect.Effect<ReadonlyArray<E>, QmpError.ListenerClosed> =>
  listener.stream.pipe(Stream.take(n), Stream.runCollect, Effect.map(Chunk.toReadonlyArray))

/** A listener's events until one satisfies `last`, that one included: the seed's `async for ... break`. */
export const takeUntil = <E extends EventListener.AnyEvent>(
  listener: EventListener.EventListener<E>,
  last: (event: E) => boolean
): Effect.Effect<ReadonlyArray<E>, QmpError.ListenerClosed> =>
  listener.stream.pipe(Stream.takeUntil(last), Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
