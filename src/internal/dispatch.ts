/**
 * The registry's dispatch fiber: it takes requests (publish a batch, register, remove, end) from an
 * inbox in order and carries each out, so that the registry only ever changes between two batches.
 *
 * Delivery is plain synchronous code, one block per batch: listeners are indexed by event name (a
 * map from name to the listeners that name it, beside those that take every name), so an event
 * visits only the listeners that can accept it, and no Effect is built per event or per listener.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Ref from "effect/Ref"
import type { EventListener } from "../EventListener.js"
import { ListenerError } from "../QmpError.js"
import type { QmpDisconnected } from "../QmpError.js"
import type { QmpEvent } from "../QmpMessage.js"
import { Doorbell } from "./doorbell.js"
import * as Listener from "./listener.js"
import * as InternalMetrics from "./metrics.js"
import { shortLivedArray } from "./shortLived.js"
import type { EventValidator } from "./typedDecode.js"
import { hasUnknownEnumValues, logUnknownEnumValues } from "./typedDecode.js"

/**
 * How the dispatch fiber tells a sender that its request was carried out: the sender's
 * `Effect.async` callback (a `Deferred` per request would cost a few microseconds to make).
 *
 * @internal
 */
export type Done<E = never> = (exit: Exit.Exit<void, E>) => void

/** @internal */
export type Request =
  | Publish
  | {
    readonly _tag: "Register"
    readonly listeners: ReadonlyArray<EventListener>
    readonly done: Done<ListenerError>
  }
  | {
    readonly _tag: "Remove"
    readonly listener: EventListener
    readonly done: Done<ListenerError>
  }
  | {
    readonly _tag: "End"
    readonly reason: QmpDisconnected
    readonly done: Done
  }
  | {
    /** A fleet's gap event: to the listeners that take gaps (the default listener among them) only. */
    readonly _tag: "Gap"
    readonly event: QmpEvent
    readonly done: Done
  }

/**
 * A batch to deliver: made once per batch of a connection, so a class, not a literal (see
 * `shortLived.ts`).
 *
 * @internal
 */
export class Publish {
  readonly _tag = "Publish"
  constructor(readonly events: ReadonlyArray<QmpEvent>, readonly done: Done) {}
}

/**
 * Sees every batch once it has been delivered, in the dispatch fiber (a fleet's `all` and its event
 * counter). It must not throw, and must not keep the fiber long.
 *
 * @internal
 */
export interface Tap {
  delivered(events: ReadonlyArray<QmpEvent>): void
}

/**
 * The registry. Immutable: a change builds a new one (registration is rare, dispatch is hot).
 *
 * @internal
 */
export interface Registry {
  readonly defaultListener: EventListener
  /** Registration order. */
  readonly listeners: ReadonlyArray<EventListener>
  /** Listeners without names: they see every event. */
  readonly wildcard: ReadonlyArray<Listener.ListenerState>
  /** For each name, the listeners that name it. */
  readonly byName: ReadonlyMap<string, ReadonlyArray<Listener.ListenerState>>
  /** The listeners that take gap events. */
  readonly gaps: ReadonlyArray<Listener.ListenerState>
  readonly ended: QmpDisconnected | undefined
}

const index = (
  defaultListener: EventListener,
  listeners: ReadonlyArray<EventListener>,
  ended: QmpDisconnected | undefined
): Registry => {
  const wildcard: Array<Listener.ListenerState> = []
  const byName = new Map<string, Array<Listener.ListenerState>>()
  const gaps: Array<Listener.ListenerState> = []
  for (const listener of listeners) {
    const state = Listener.stateOf(listener)
    if (state.gaps) gaps.push(state)
    if (state.names.size === 0) wildcard.push(state)
    for (const name of state.names) {
      const named = byName.get(name)
      if (named === undefined) byName.set(name, [state])
      else named.push(state)
    }
  }
  return { defaultListener, listeners, wildcard, byName, gaps, ended }
}

/** @internal */
export const emptyRegistry = (defaultListener: EventListener): Registry =>
  index(defaultListener, [defaultListener], undefined)

interface FilterFailure {
  readonly names: ReadonlySet<string>
  readonly cause: unknown
}

/** What a batch's delivery has to report: filters that threw, events typed listeners did not take. */
class Report {
  failures: Array<FilterFailure> | undefined = undefined
  /** Each event whose data did not match its Schema, once, with the validator that said so. */
  rejected: Map<QmpEvent, EventValidator> | undefined = undefined
  // The last check of an event's data: the listeners of one event are offered it one after the
  // other, so one slot makes the check once per event, whatever the number of typed listeners.
  checkedEvent: QmpEvent | undefined = undefined
  checkedBy: EventValidator | undefined = undefined
  checkedValid = false
}

/** Whether the event's data matches its Schema, checked once per event and validator. */
const isValid = (validator: EventValidator, event: QmpEvent, report: Report): boolean => {
  if (report.checkedEvent === event && report.checkedBy === validator) return report.checkedValid
  const valid = validator.validate(event)
  report.checkedEvent = event
  report.checkedBy = validator
  report.checkedValid = valid
  return valid
}

const offer = (state: Listener.ListenerState, event: QmpEvent, report: Report): void => {
  if (Listener.isClosed(state)) return
  // A typed listener takes only events whose data matches their name's Schema.
  const validator = state.validator
  if (validator !== undefined && !isValid(validator, event, report)) {
    ;(report.rejected ??= new Map()).set(event, validator)
    return
  }
  const filter = state.filter
  if (filter !== undefined) {
    let accepted: boolean
    try {
      accepted = filter(event)
    } catch (cause) {
      Listener.close(state, new ListenerError({ reason: "FilterFailed", cause }))
      ;(report.failures ??= []).push({ names: state.names, cause })
      return
    }
    if (!accepted) return
  }
  Listener.deliver(state, event)
}

const deliverBatch = (registry: Registry, events: ReadonlyArray<QmpEvent>): Report => {
  const report = new Report()
  const { byName, wildcard } = registry
  for (let i = 0; i < events.length; i++) {
    const event = events[i]
    const named = byName.get(event.event)
    if (named !== undefined) {
      for (let j = 0; j < named.length; j++) offer(named[j], event, report)
    }
    for (let j = 0; j < wildcard.length; j++) offer(wildcard[j], event, report)
  }
  return report
}

const listenerLabel = (names: ReadonlySet<string>): string => names.size === 0 ? "(all events)" : [...names].join(",")

/** Each listener's `qmp_events_dropped` counter, made once: a tagged metric is costly to make. */
const dropCounters = new WeakMap<Listener.ListenerState, Metric.Metric.Counter<number>>()

const dropCounter = (
  registry: Registry,
  listener: EventListener,
  state: Listener.ListenerState
): Metric.Metric.Counter<number> => {
  let counter = dropCounters.get(state)
  if (counter === undefined) {
    counter = InternalMetrics.eventsDroppedBy(
      listener === registry.defaultListener ? "(default)" : listenerLabel(state.names)
    )
    dropCounters.set(state, counter)
  }
  return counter
}

/** Adds the drops of bounded listeners since the last batch to the `qmp_events_dropped` metric. */
const reportDrops = (registry: Registry): void => {
  for (const listener of registry.listeners) {
    const state = Listener.stateOf(listener)
    const count = state.dropped - state.droppedReported
    if (count === 0) continue
    state.droppedReported = state.dropped
    // Updated in place, as `qmp_commands_pending` is: a flood drops on every batch, and an Effect per
    // batch to count them cost more than the drops.
    dropCounter(registry, listener, state).unsafeUpdate(count, [])
  }
}

/** Logs what a batch's delivery reported, and counts the rejected events; `undefined` for nothing. */
const logReport = (report: Report): Effect.Effect<void> | undefined => {
  if (report.failures === undefined && report.rejected === undefined && !hasUnknownEnumValues()) return undefined
  const effects: Array<Effect.Effect<void>> = []
  if (report.failures !== undefined) effects.push(logFailures(report.failures))
  if (report.rejected !== undefined) {
    for (const [event, validator] of report.rejected) {
      effects.push(
        Effect.logWarning(
          `An event's data does not match its Schema (QEMU ${validator.qemu}'s): typed listeners did not get it`
        ).pipe(
          Effect.annotateLogs({ event: event.event, detail: validator.explain(event) }),
          Effect.zipRight(Metric.increment(InternalMetrics.eventsRejectedOf(event.event)))
        )
      )
    }
    // Validating the data may have met enum values the module does not know.
    effects.push(logUnknownEnumValues(report.rejected.values().next().value!.qemu))
  } else if (report.failures === undefined && hasUnknownEnumValues()) {
    effects.push(logUnknownEnumValues("the generated module"))
  }
  return effects.length === 0 ? undefined : Effect.all(effects, { discard: true })
}

const logFailures = (failures: ReadonlyArray<FilterFailure>): Effect.Effect<void> =>
  Effect.forEach(failures, (failure) =>
    Effect.logWarning(
      "An event filter threw: its listener is closed until it is removed and registered again",
      Cause.die(failure.cause)
    ).pipe(Effect.annotateLogs("listener", listenerLabel(failure.names))), {
    discard: true
  })

const register = (
  registry: Registry,
  listeners: ReadonlyArray<EventListener>
): [Exit.Exit<void, ListenerError>, Registry] => {
  const unique = new Set(listeners)
  if (unique.size !== listeners.length || listeners.some((listener) => registry.listeners.includes(listener))) {
    return [Exit.fail(new ListenerError({ reason: "AlreadyRegistered" })), registry]
  }
  if (registry.ended !== undefined) {
    for (const listener of listeners) Listener.close(Listener.stateOf(listener), registry.ended)
  }
  return [Exit.void, index(registry.defaultListener, [...registry.listeners, ...listeners], registry.ended)]
}

const remove = (registry: Registry, listener: EventListener): [Exit.Exit<void, ListenerError>, Registry] => {
  if (listener === registry.defaultListener) {
    return [Exit.fail(new ListenerError({ reason: "DefaultListener" })), registry]
  }
  if (!registry.listeners.includes(listener)) {
    return [Exit.fail(new ListenerError({ reason: "NotRegistered" })), registry]
  }
  Listener.reset(Listener.stateOf(listener))
  return [Exit.void, index(registry.defaultListener, registry.listeners.filter((l) => l !== listener), registry.ended)]
}

const end = (registry: Registry, reason: QmpDisconnected): Registry => {
  if (registry.ended !== undefined) return registry
  for (const listener of registry.listeners) Listener.close(Listener.stateOf(listener), reason)
  return { ...registry, ended: reason }
}

/** A gap event goes to the listeners that take gaps, past their names and filters. */
const deliverGap = (registry: Registry, event: QmpEvent): void => {
  for (const state of registry.gaps) {
    if (!Listener.isClosed(state)) Listener.deliver(state, event)
  }
}

/** @internal */
export const handle = (registry: Ref.Ref<Registry>, request: Request, tap?: Tap): Effect.Effect<void> => {
  switch (request._tag) {
    case "Publish":
      return Effect.flatMap(Ref.get(registry), (current) => {
        // Once ended, no more events are delivered: listeners have their end marker already.
        const report = current.ended === undefined ? deliverBatch(current, request.events) : undefined
        if (report !== undefined && tap !== undefined) tap.delivered(request.events)
        request.done(Exit.void)
        reportDrops(current)
        return (report === undefined ? undefined : logReport(report)) ?? Effect.void
      })
    case "Register":
      return Effect.flatMap(
        Ref.modify(registry, (current) => register(current, request.listeners)),
        (exit) => Effect.sync(() => request.done(exit))
      )
    case "Remove":
      return Effect.flatMap(
        Ref.modify(registry, (current) => remove(current, request.listener)),
        (exit) => Effect.sync(() => request.done(exit))
      )
    case "End":
      return Effect.zipRight(
        Ref.update(registry, (current) => end(current, request.reason)),
        Effect.sync(() => request.done(Exit.void))
      )
    case "Gap":
      return Effect.flatMap(Ref.get(registry), (current) => {
        if (current.ended === undefined) {
          deliverGap(current, request.event)
          if (tap !== undefined) tap.delivered([request.event])
        }
        request.done(Exit.void)
        reportDrops(current)
        return Effect.void
      })
  }
}

/**
 * The requests waiting for the dispatch fiber: a plain array, and a doorbell that carries no data,
 * so that no object of the Effect runtime holds a published batch (see `session.ts`).
 *
 * @internal
 */
export class Inbox {
  private requests = shortLivedArray<Request>()

  private readonly doorbell = new Doorbell()

  offer(request: Request): void {
    this.requests.push(request)
    if (this.requests.length === 1) this.doorbell.ring()
  }

  /** Removes and returns every waiting request, oldest first. */
  takeAll(): ReadonlyArray<Request> {
    const requests = this.requests
    this.requests = shortLivedArray()
    return requests
  }

  /** Waits until a request is there (a ring left over from requests taken already costs one empty round). */
  get wait(): Effect.Effect<void> {
    return Effect.suspend(() => this.requests.length > 0 ? Effect.void : this.doorbell.wait)
  }
}

/**
 * The dispatch loop: waits for requests, takes every waiting one at once and carries them out in
 * order. A request taken from the inbox is always carried out whole: only the wait is interruptible.
 *
 * @internal
 */
export const run = (registry: Ref.Ref<Registry>, inbox: Inbox, tap?: Tap): Effect.Effect<never> =>
  Effect.uninterruptibleMask((restore) => {
    // One request (a connection's batch, most often) is carried out without `forEach`'s machinery.
    const step = Effect.suspend(() => {
      const requests = inbox.takeAll()
      return requests.length === 1 ?
        handle(registry, requests[0], tap) :
        Effect.forEach(requests, (request) => handle(registry, request, tap), { discard: true })
    })
    return Effect.forever(Effect.zipRight(restore(inbox.wait), step))
  })
