/**
 * `QmpFleet` holds QMP connections to many VMs from one process, keyed by VM id: what a host that
 * runs hundreds of VMs needs (Incus, Proxmox's `qmeventd` and Kata's govmm each hold one QMP
 * connection per VM).
 *
 * - **Shared and ref-counted.** `client(vm)` gives the VM's client for the current scope; every
 *   user of a VM shares one connection (QEMU serves one client per QMP socket), made once however
 *   many ask at once. When the last user's scope closes, the connection stays open for
 *   `idleTimeToLive`, then closes.
 * - **Reconnecting.** When a connection ends while the VM is held, the fleet connects again on the
 *   `reconnect` schedule. The client stays the same object: during the gap its commands fail at once
 *   with `QmpDisconnected`; commands pending at the drop failed with it and are never replayed.
 * - **Listeners that survive.** `events(vm)` is the VM's `QmpEvents` registry, which outlives its
 *   connections. After a gap, a synthetic event named `effect-qmp.gap` (a name no QEMU event can
 *   have) says when the connection was lost and restored, before the first event of the new
 *   connection: events may be missing in between, so re-read what matters (`query-status`,
 *   `query-jobs`). The default listener always gets it, listeners with `gaps: true` too; typed
 *   listeners never do. When the VM is gone for good, listeners end with `QmpDisconnected`.
 * - **Liveness.** With `ping`, a VM that does not answer within `ping.timeout` is reported (its
 *   runstate, the `qmp_vm_unresponsive` metric, a warning) and its connection recycled. Every VM
 *   has fibers of its own: a silent VM delays nobody else.
 * - **Bounds per VM.** Each VM's default listener keeps its newest 100 events by default
 *   (`defaultListener`), not 10 000: a thousand VMs nobody reads stay small.
 *
 * This is `RcMap` (from `effect`) over one connection per VM, with `Schedule` for the reconnects.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { QmpFleet } from "effect-qmp"
 *
 * const Fleet = QmpFleet.layer({
 *   resolve: (vm) => Effect.succeed({ path: `/run/vms/${vm}/qmp.sock` }),
 *   ping: { every: "10 seconds", timeout: "2 seconds" },
 *   client: { commandTimeout: "5 seconds", commandTimeouts: { "blockdev-add": "30 seconds" } }
 * })
 *
 * const status = (vm: string) =>
 *   Effect.gen(function*() {
 *     const fleet = yield* QmpFleet.QmpFleet
 *     const qmp = yield* fleet.client(vm)
 *     return yield* qmp.execute("query-status")
 *   }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as RcMap from "effect/RcMap"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import * as EventListener from "./EventListener.js"
import { render } from "./internal/describe.js"
import { FanIn } from "./internal/fanIn.js"
import type { FleetEvent } from "./internal/fanIn.js"
import * as Member from "./internal/fleetMember.js"
import type { EventSink } from "./internal/session.js"
import type { Runstate } from "./internal/vmRunstate.js"
import { QmpAddress } from "./QmpAddress.js"
import * as QmpClient from "./QmpClient.js"
import type { QmpDisconnected } from "./QmpError.js"
import { QmpResolveError } from "./QmpError.js"
import type * as QmpEvents from "./QmpEvents.js"

export type {
  /**
   * Why a VM could not be connected: `QmpResolveError` (`resolve` failed), `QmpConnectError`,
   * `QmpNegotiationError`.
   *
   * @since 0.1.0
   * @category models
   */
  ConnectError
} from "./internal/fleetMember.js"

export {
  /**
   * The state of a VM of the fleet: `Connecting` (its first connection), `Connected` (`since`),
   * `Reconnecting` (a gap: `lost`, `reason`, `attempts`), `Gone` (`reason`). Times are milliseconds
   * since the epoch, on the fleet's `Clock`.
   *
   * @since 0.1.0
   * @category models
   */
  Runstate
} from "./internal/vmRunstate.js"

export {
  /**
   * The name of the gap event, `"effect-qmp.gap"`: no QEMU event can have it (QEMU's are upper-case
   * letters, digits and underscores).
   *
   * @since 0.1.0
   * @category gaps
   */
  gapEvent,
  /**
   * `true` for a gap event.
   *
   * @since 0.1.0
   * @category gaps
   */
  isGapEvent
} from "./internal/gap.js"

export type {
  /**
   * What a gap event says: `vm`; `lost` and `restored` (QMP timestamps); `reason` and `message`, why
   * the connection was lost (`QmpDisconnected`'s); `attempts`, the connection attempts it took.
   *
   * @since 0.1.0
   * @category gaps
   */
  GapData,
  /**
   * The synthetic event a VM's registry gets when its connection was restored after a gap, before
   * the new connection's first event. Its `timestamp` is `data.restored`.
   *
   * @since 0.1.0
   * @category gaps
   */
  GapEvent
} from "./internal/gap.js"

export type {
  /**
   * An event of one VM of the fleet, as `all` gives it.
   *
   * @since 0.1.0
   * @category models
   */
  FleetEvent
} from "./internal/fanIn.js"

/**
 * Options of a fleet.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<R = never> {
  /**
   * Where each VM's QMP socket is. Asked at every connection attempt, so that a VM may move; a
   * failure (or a value that is not a `QmpAddress`) fails the attempt with `QmpResolveError`.
   */
  readonly resolve: (vm: string) => Effect.Effect<QmpAddress, unknown, R>
  /**
   * When to try again after a failed reconnect attempt (its input: the attempt's error), for as
   * long as the VM is held: `defaultReconnect` (exponential from 100 ms, capped at 5 s, jittered,
   * forever) by default. When it gives up, the VM is gone: listeners end. The first connection is one
   * attempt: a VM that is not there fails `client(vm)` at once.
   */
  readonly reconnect?: Schedule.Schedule<unknown, Member.ConnectError, R> | undefined
  /** How long a connection that nobody holds stays open: 30 seconds by default. */
  readonly idleTimeToLive?: Duration.DurationInput | undefined
  /**
   * Liveness: every `every` (after the last answer), a ping that must be answered within `timeout`
   * (`exec-oob query-yank` when QEMU offers out-of-band execution, which QEMU answers even while an
   * in-band command runs; else `query-status`). Off by default.
   */
  readonly ping?: { readonly every: Duration.DurationInput; readonly timeout: Duration.DurationInput } | undefined
  /**
   * Options of each connection (`connectTimeout`, `commandTimeout`, `commandTimeouts` by command,
   * `maxMessageBytes`, `checkSchema`, `metricTags`). The fleet leaves each VM's registry open across
   * connections (`endRegistry: false`) and tags the metrics with `vm`.
   */
  readonly client?: QmpClient.Options | undefined
  /**
   * The bounds of each VM's default listener: `{ capacity: 100, historyLimit: 100 }` by default,
   * sliding (a plain `QmpEvents` keeps 10 000, which a thousand VMs would multiply).
   */
  readonly defaultListener?: EventListener.QueueOptions | undefined
  /**
   * The events each reader of `all` may have waiting: unbounded by default, like a listener; beyond
   * it the oldest go (counted in `qmp_events_dropped`, listener `(fleet all)`).
   */
  readonly allCapacity?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /**
   * The VM's client, shared with every other user of the VM, held for the current scope; concurrent
   * first uses connect once. The same object across reconnects: during a gap its commands fail at
   * once with `QmpDisconnected`, `greeting` is the latest connection's, and `runstate` is
   * `Disconnected` (final only once `closed` completes). `disconnect` lets go of the VM for every
   * user: listeners end, and its next use connects afresh.
   */
  readonly client: (vm: string) => Effect.Effect<QmpClient.Service, Member.ConnectError, Scope.Scope>
  /**
   * The VM's `QmpEvents` registry, held for the current scope: it outlives the VM's connections, and
   * gets a gap event after each reconnect.
   */
  readonly events: (vm: string) => Effect.Effect<QmpEvents.Service, Member.ConnectError, Scope.Scope>
  /**
   * The VM's state and its changes, held for the current scope (watching it holds the VM, without
   * waiting for its connection).
   */
  readonly runstate: (vm: string) => Effect.Effect<
    { readonly get: Effect.Effect<Runstate>; readonly changes: Stream.Stream<Runstate> },
    never,
    Scope.Scope
  >
  /**
   * The events of every VM the fleet holds, each tagged with its VM, gap events included, from the
   * first pull on; it ends when the fleet closes. Each VM's events come in their order.
   */
  readonly all: Stream.Stream<FleetEvent>
}

/**
 * The `QmpFleet` service.
 *
 * @since 0.1.0
 * @category tags
 */
export class QmpFleet extends Context.Tag("effect-qmp/QmpFleet")<QmpFleet, Service>() {}

/**
 * The default `reconnect`: exponential from 100 ms, doubling, capped at 5 s, jittered (so that VMs
 * dropped together do not knock together), forever.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultReconnect: Schedule.Schedule<unknown> = Schedule.exponential("100 millis").pipe(
  Schedule.either(Schedule.spaced("5 seconds")),
  Schedule.jittered
)

/**
 * The default `idleTimeToLive`.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultIdleTimeToLive: Duration.Duration = Duration.seconds(30)

/**
 * The default bounds of each VM's default listener.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultListener: EventListener.QueueOptions = { capacity: 100, historyLimit: 100 }

const positive = (name: string, input: Duration.DurationInput): Duration.Duration => {
  const duration = Duration.decode(input)
  if (!Duration.isFinite(duration) || Duration.toMillis(duration) <= 0) {
    throw new Cause.IllegalArgumentException(`${name} must be a positive, finite duration, got ${String(input)}`)
  }
  return duration
}

/** A key of the map: the VM, and its generation (a VM gone while held comes back under a new key). */
const keyOf = (generation: number, vm: string): string => `${generation}:${vm}`

/**
 * Creates a fleet in the current scope; closing the scope lets go of every VM.
 *
 * Dies with an `IllegalArgumentException` for a `ping` interval or timeout that is not a positive,
 * finite duration, an `allCapacity` that is not a positive integer (or `Infinity`), or a
 * `defaultListener` that `EventListener.make` refuses.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <R = never>(options: Options<R>): Effect.Effect<Service, never, Scope.Scope | R> =>
  Effect.gen(function*() {
    const ping: Member.Ping | undefined = options.ping === undefined ? undefined : {
      every: positive("ping.every", options.ping.every),
      timeout: positive("ping.timeout", options.ping.timeout)
    }
    const allCapacity = options.allCapacity ?? Number.POSITIVE_INFINITY
    if (allCapacity !== Number.POSITIVE_INFINITY && !(Number.isInteger(allCapacity) && allCapacity > 0)) {
      throw new Cause.IllegalArgumentException(`allCapacity must be a positive integer, got ${allCapacity}`)
    }
    const listenerOptions = { ...defaultListener, ...options.defaultListener }
    // Made once to check the bounds now, rather than when the first VM connects.
    yield* EventListener.make(listenerOptions)
    const idleTimeToLive = Duration.decode(options.idleTimeToLive ?? defaultIdleTimeToLive)

    const context = yield* Effect.context<R>()
    const fleetScope = yield* Effect.scope
    const fanIn = new FanIn(allCapacity)
    // Added before the map, so that it runs after the map has let go of every VM: readers of `all`
    // get the last events, then the end.
    yield* Effect.addFinalizer(() => Effect.sync(() => fanIn.close()))

    const reconnect = Schedule.provideContext(options.reconnect ?? defaultReconnect, context)
    const clientOptions = (vm: string): QmpClient.Options => ({
      ...options.client,
      endRegistry: false,
      metricTags: { ...options.client?.metricTags, vm }
    })

    const resolve = (vm: string): Effect.Effect<QmpAddress, QmpResolveError> =>
      Effect.suspend(() => options.resolve(vm)).pipe(
        Effect.provide(context),
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause) ?
            Effect.failCause(cause as Cause.Cause<never>) :
            Effect.fail(new QmpResolveError({ vm, cause: Cause.squash(cause) }))
        ),
        Effect.filterOrFail(
          Schema.is(QmpAddress),
          (address) =>
            new QmpResolveError({
              vm,
              cause: `resolve gave ${render(address)}, which is not a QmpAddress ({ path } or { host, port })`
            })
        )
      )

    const connect = (
      vm: string,
      events: EventSink,
      onEnd: (reason: QmpDisconnected) => Effect.Effect<void>
    ): Effect.Effect<QmpClient.Service, Member.ConnectError, Scope.Scope> =>
      Effect.flatMap(resolve(vm), (address) => QmpClient.makeWith(address, clientOptions(vm), events, onEnd))

    // The generation of each VM's key. A VM that is gone while the map still holds it (its first
    // connection failed, reconnecting gave up, `disconnect`) moves to a new key at once, so that its
    // next use connects afresh while the users of the old one let go of it.
    const generations = new Map<string, number>()

    const settings: Member.Settings = {
      connect,
      reconnect,
      ping,
      defaultListener: listenerOptions,
      tap: (vm, events) => fanIn.push(vm, events),
      onGone: (vm, generation) =>
        Effect.suspend(() => {
          if ((generations.get(vm) ?? 0) === generation) generations.set(vm, generation + 1)
          // Forked in the fleet's scope: invalidating closes the member's scope when nobody holds
          // it, which would interrupt the member's own fiber that asks for it.
          return Effect.asVoid(Effect.forkIn(RcMap.invalidate(members, keyOf(generation, vm)), fleetScope))
        })
    }

    const members: RcMap.RcMap<string, Member.Member> = yield* RcMap.make({
      lookup: (key: string) => {
        const split = key.indexOf(":")
        return Member.make(settings, key.slice(split + 1), Number(key.slice(0, split)))
      },
      idleTimeToLive
    })

    const acquire = (vm: string): Effect.Effect<Member.Member, never, Scope.Scope> =>
      Effect.suspend(() => RcMap.get(members, keyOf(generations.get(vm) ?? 0, vm)))

    /** The VM, once connected, held for the current scope; a failure holds nothing. */
    const ready = <A>(
      vm: string,
      f: (member: Member.Member, client: QmpClient.Service) => A
    ): Effect.Effect<A, Member.ConnectError, Scope.Scope> =>
      Effect.gen(function*() {
        const scope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
        const member = yield* Scope.extend(acquire(vm), scope)
        const client = yield* Effect.onError(member.ready, () => Scope.close(scope, Exit.void))
        return f(member, client)
      })

    return QmpFleet.of({
      client: (vm) => ready(vm, (_, client) => client),
      events: (vm) => ready(vm, (member) => member.events),
      runstate: (vm) =>
        Effect.map(acquire(vm), (member) => {
          const state = member.runstate
          return {
            get: state.get,
            get changes() {
              return state.changes
            }
          }
        }),
      all: fanIn.stream
    })
  }).pipe(Effect.annotateLogs({ module: "QmpFleet" }))

/**
 * A fleet as a layer: its VMs are let go of when the layer closes.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <R = never>(options: Options<R>): Layer.Layer<QmpFleet, never, R> =>
  Layer.scoped(QmpFleet, make(options))
