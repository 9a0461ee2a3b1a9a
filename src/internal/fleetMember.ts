/**
 * One VM of a fleet: its registry, which outlives its connections; its current connection; the
 * reconnection when that connection ends; the liveness ping; and the client that a fleet hands out,
 * which stays the same across reconnects.
 *
 * - The first connection is one attempt. If it fails, the VM is gone (its registry ended) and the
 *   callers waiting for it get the error; the fleet starts afresh on the next use.
 * - When a connection ends, the VM is in a gap: commands fail at once with the reason, and a fiber
 *   connects again on the fleet's schedule. Commands pending at the drop failed with it and are never
 *   replayed (their fate is unknown). The connection says that it has ended (`QmpClient.makeWith`'s
 *   `onEnd`) rather than a fiber per VM waiting for it: a fleet holds a thousand idle VMs, and a
 *   fiber costs some 7 KB of them.
 * - When a connection is restored, a gap event goes to the registry before the first event of the
 *   new connection: the member itself is what its connections feed, and it puts a pending gap first.
 * - When the schedule gives up, or the client is told to `disconnect`, or the fleet lets go of the
 *   VM (the last user released it and its idle time passed), the VM is gone: listeners end.
 *
 * Plain mutable state (`current`, `pendingGap`, ...) is written by the member's fibers (the first
 * connection's, a gap's) and read in synchronous steps by callers, as the connection's own state is.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as HashMap from "effect/HashMap"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as EventListener from "../EventListener.js"
import type { QmpAddress } from "../QmpAddress.js"
import * as QmpClient from "../QmpClient.js"
import type { ExecuteError, QmpConnectError, QmpNegotiationError, QmpResolveError } from "../QmpError.js"
import { QmpDisconnected } from "../QmpError.js"
import * as QmpEvents from "../QmpEvents.js"
import type { Greeting, QmpEvent } from "../QmpMessage.js"
import { causeMessage } from "./describe.js"
import type * as Dispatch from "./dispatch.js"
import { makeGapEvent } from "./gap.js"
import * as InternalMetrics from "./metrics.js"
import type { EventSink } from "./session.js"
import { TypedClient } from "./typedClient.js"
import { Runstate, toClientRunstate } from "./vmRunstate.js"
import { Watched } from "./watched.js"

/**
 * Why a VM could not be connected: where its socket is could not be told, or connecting or
 * negotiating failed.
 *
 * @internal
 */
export type ConnectError = QmpResolveError | QmpConnectError | QmpNegotiationError

/** @internal */
export interface Ping {
  readonly every: Duration.Duration
  readonly timeout: Duration.Duration
}

/**
 * What every member of a fleet shares: one object for the fleet, where a VM's own is only its name
 * and generation.
 *
 * @internal
 */
export interface Settings {
  /**
   * Resolves the VM's address and connects, feeding `events`, in the current scope; `onEnd` runs
   * when that connection, once established, has ended.
   */
  readonly connect: (
    vm: string,
    events: EventSink,
    onEnd: (reason: QmpDisconnected) => Effect.Effect<void>
  ) => Effect.Effect<QmpClient.Service, ConnectError, Scope.Scope>
  /** When to try again after a failed reconnect attempt (its input: the attempt's error). */
  readonly reconnect: Schedule.Schedule<unknown, ConnectError>
  readonly ping: Ping | undefined
  readonly defaultListener: EventListener.QueueOptions
  /** Sees each batch a VM's registry delivered (the fleet's `all`). */
  readonly tap: (vm: string, events: ReadonlyArray<QmpEvent>) => void
  /** The VM (of this generation) is gone while the fleet still holds it: the next use must start afresh. */
  readonly onGone: (vm: string, generation: number) => Effect.Effect<void>
}

interface Connection {
  readonly client: QmpClient.Service
  readonly scope: Scope.CloseableScope
}

/** A gap not yet announced: when the connection was lost, why, and the reconnect attempts that failed. */
interface PendingGap {
  readonly lost: number
  readonly reason: QmpDisconnected
  failures: number
}

/** The reason listeners end with when reconnecting gave up. */
const gaveUp = (lost: QmpDisconnected, failures: number, last: ConnectError): QmpDisconnected =>
  new QmpDisconnected({
    reason: lost.reason,
    detail: `${lost.message}; gave up reconnecting after ${failures} attempt${failures === 1 ? "" : "s"} (${
      causeMessage(last)
    })`
  })

/**
 * Starts a VM's first connection and gives the member at once (the connection completes `ready`).
 * Closing the scope lets go of the VM.
 *
 * @internal
 */
export const make = (settings: Settings, vm: string, generation: number): Effect.Effect<Member, never, Scope.Scope> =>
  Effect.gen(function*() {
    const member = new Member(
      settings,
      vm,
      generation,
      yield* Effect.clock,
      // Connections live in a scope of their own, so that letting go of the VM stops the supervisor
      // before any connection closes (a connection that ends would otherwise be reconnected).
      yield* Scope.make(),
      yield* Effect.scope
    )
    member.registry = yield* QmpEvents.makeRegistry({ defaultListener: settings.defaultListener, tap: member })
    yield* member.start
    // Letting go of the VM (its last user released it and its idle time passed, or the fleet closed).
    // Not `Effect.addFinalizer`, which would keep this fiber's refs as long as the VM is held.
    yield* Scope.addFinalizer(
      member.scope,
      Effect.suspend(() =>
        member.stop(
          new QmpDisconnected({ reason: "Disconnected", detail: `the fleet let go of VM ${JSON.stringify(member.vm)}` })
        )
      )
    )
    return member
  })

/**
 * A VM of the fleet. Its state is plain fields, written by the member's fibers (the first
 * connection's, a gap's) and read in synchronous steps by callers, as the connection's own state is;
 * its steps are methods, so that a thousand idle VMs share them.
 *
 * @internal
 */
export class Member implements EventSink, Dispatch.Tap {
  /** The VM's runstate and its changes. */
  readonly runstate: Watched<Runstate> = new Watched<Runstate>(Runstate.Connecting())
  /** The handle users get: the same across reconnects. */
  readonly client: QmpClient.Service = new FleetClient(this) as unknown as QmpClient.Service
  /** Its registry, which outlives its connections: set by `make`, before the first connection. */
  registry: QmpEvents.Registry = undefined!
  private readonly first = Deferred.unsafeMake<QmpClient.Service, ConnectError>(FiberId.none)
  // Why the VM is gone, once it is (a Deferred, not a Stream of the state: cheap to hold per VM).
  readonly goneReason = Deferred.unsafeMake<QmpDisconnected>(FiberId.none)

  /** The connection commands go to: none during a gap. */
  current: QmpClient.Service | undefined = undefined
  /** The latest connection: its greeting and address stay readable during a gap. */
  latest: QmpClient.Service | undefined = undefined
  /** Why commands fail at once: the gap's reason, or why the VM is gone. */
  unavailable: QmpDisconnected | undefined = undefined
  private pendingGap: PendingGap | undefined = undefined
  private gone = false
  /** The connection in use (none during a gap), and the fiber that reconnects (during a gap). */
  private installed: Connection | undefined = undefined
  private reconnecting: Fiber.RuntimeFiber<void> | undefined = undefined
  /** The first connection's fiber, until it is done (a finished fiber still holds its state). */
  private connecting: Fiber.RuntimeFiber<unknown> | undefined = undefined
  /** Set when the VM is let go of: a connection that ends then is not reconnected. */
  private stopping = false

  constructor(
    private readonly settings: Settings,
    readonly vm: string,
    private readonly generation: number,
    private readonly clock: Clock.Clock,
    private readonly connections: Scope.CloseableScope,
    readonly scope: Scope.Scope
  ) {}

  /** The registry, which outlives the VM's connections. */
  get events(): QmpEvents.Service {
    return this.registry.service
  }

  // What a connection feeds: the registry, with a pending gap announced before the new connection's
  // first events (QEMU sends none before negotiation, so they come from a connection that has been
  // restored).

  publishAll(events: Iterable<QmpEvent>): Effect.Effect<void> {
    return this.pendingGap === undefined ?
      this.registry.service.publishAll(events) :
      Effect.zipRight(this.announceGap, this.registry.service.publishAll(events))
  }

  end(reason: QmpDisconnected): Effect.Effect<void> {
    return this.registry.service.end(reason)
  }

  offerAll(events: ReadonlyArray<QmpEvent>, delivered: () => void): boolean {
    // A pending gap goes first, from the connection's processing fiber.
    return this.pendingGap === undefined && this.registry.offerAll(events, delivered)
  }

  /** The registry delivered a batch: on to the fleet's `all`. */
  delivered(events: ReadonlyArray<QmpEvent>): void {
    this.settings.tap(this.vm, events)
  }

  /** The client, once the first connection is made; or why it could not be. */
  get ready(): Effect.Effect<QmpClient.Service, ConnectError> {
    return Deferred.await(this.first)
  }

  /** The pending gap's event, taken (once) when it is announced. */
  private takeGap(): QmpEvent | undefined {
    const gap = this.pendingGap
    if (gap === undefined) return undefined
    this.pendingGap = undefined
    return makeGapEvent({
      vm: this.vm,
      lost: gap.lost,
      restored: this.clock.unsafeCurrentTimeMillis(),
      reason: gap.reason,
      attempts: gap.failures + 1
    })
  }

  private get announceGap(): Effect.Effect<void> {
    return this.registry.publishGap(() => this.takeGap())
  }

  private get attempt(): Effect.Effect<Connection, ConnectError> {
    return Effect.gen(this, function*() {
      const scope = yield* Scope.fork(this.connections, ExecutionStrategy.sequential)
      // Each connection says when it has ended; only the installed one is reconnected.
      const connection: { client: QmpClient.Service; scope: Scope.CloseableScope } = { client: undefined!, scope }
      connection.client = yield* this.settings.connect(this.vm, this, (reason) => this.lost(connection, reason)).pipe(
        Scope.extend(scope),
        Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : Scope.close(scope, exit))
      )
      return connection
    })
  }

  /** The first connection, in a fiber of its own that ends once it is made (or could not be). */
  get start(): Effect.Effect<void> {
    return this.attempt.pipe(
      Effect.matchCauseEffect({
        onFailure: (cause) =>
          Effect.zipRight(
            Deferred.failCause(this.first, cause),
            Effect.suspend(() => {
              const failure = Cause.failureOption(cause)
              const detail = Option.isSome(failure) ? failure.value.message : Cause.pretty(cause)
              return this.endAndForget(new QmpDisconnected({ reason: "Lost", detail: `could not connect: ${detail}` }))
            })
          ),
        onSuccess: (connection) => Effect.zipRight(this.install(connection), Deferred.succeed(this.first, this.client))
      }),
      Effect.ensuring(Effect.sync(() => {
        this.connecting = undefined
      })),
      Effect.annotateLogs({ module: "QmpFleet", vm: this.vm }),
      Effect.forkIn(this.scope),
      Effect.flatMap((fiber) =>
        Effect.sync(() => {
          // A first connection that failed at once is done already.
          if (fiber.unsafePoll() === null) this.connecting = fiber
        })
      )
    )
  }

  /** The VM is gone: no more connections; listeners yield what they hold, then fail with `reason`. */
  private finish(reason: QmpDisconnected): Effect.Effect<boolean> {
    return Effect.suspend(() => {
      if (this.gone) return Effect.succeed(false)
      this.gone = true
      this.current = undefined
      this.unavailable = reason
      this.pendingGap = undefined
      return this.runstate.set(Runstate.Gone({ reason })).pipe(
        Effect.zipRight(Metric.set(InternalMetrics.vmMetric(InternalMetrics.vmConnectedKey, this.vm), 0)),
        Effect.zipRight(this.registry.service.end(reason)),
        Effect.zipRight(Deferred.succeed(this.goneReason, reason)),
        Effect.as(true)
      )
    })
  }

  /** `finish`, and the fleet told to start afresh on the next use, if this ended the VM. */
  private endAndForget(reason: QmpDisconnected): Effect.Effect<void> {
    return this.forgetting(this.finish(reason))
  }

  /** Runs `ending` (`true` if it ended the VM), then, if it did, tells the fleet to start afresh. */
  private forgetting(ending: Effect.Effect<boolean>): Effect.Effect<void> {
    return Effect.flatMap(ending, (ended) => ended ? this.settings.onGone(this.vm, this.generation) : Effect.void)
  }

  private ping(client: QmpClient.Service, { every, timeout }: Ping): Effect.Effect<void> {
    const { clock, vm } = this
    return Effect.gen(function*() {
      // QEMU runs out-of-band commands at once, even while an in-band command runs, so that a
      // long `blockdev-add` does not look like a dead VM; a stopped QEMU answers neither.
      const send = client.oob ?
        client.executeOobUnknown("query-yank", undefined, { timeout }) :
        client.executeUnknown("query-status", undefined, { timeout })
      for (;;) {
        yield* Effect.sleep(every)
        const start = clock.unsafeCurrentTimeNanos()
        const result = yield* Effect.either(send)
        // Any reply, an error or a malformed one too, says that QEMU is there.
        if (
          result._tag === "Right" || result.left._tag === "QmpExecuteError" || result.left._tag === "QmpProtocolError"
        ) {
          yield* Metric.update(
            InternalMetrics.vmMetric(InternalMetrics.pingLatencyKey, vm),
            Number(clock.unsafeCurrentTimeNanos() - start) / 1e6
          )
          continue
        }
        if (result.left._tag !== "QmpTimeoutError") return
        const after = Duration.format(timeout)
        yield* Effect.logWarning(`QEMU did not answer a ping within ${after}: closing its connection to reconnect`)
        yield* Metric.increment(InternalMetrics.vmMetric(InternalMetrics.vmUnresponsiveKey, vm))
        return yield* QmpClient.abort(
          client,
          new QmpDisconnected({ reason: "Unresponsive", detail: `no answer to a ping within ${after}` })
        )
      }
    })
  }

  private install(connection: Connection): Effect.Effect<void> {
    return Effect.gen(this, function*() {
      this.installed = connection
      this.current = connection.client
      this.latest = connection.client
      this.unavailable = undefined
      yield* this.runstate.set(Runstate.Connected({ since: this.clock.unsafeCurrentTimeMillis() }))
      yield* Metric.set(InternalMetrics.vmMetric(InternalMetrics.vmConnectedKey, this.vm), 1)
      if (this.settings.ping !== undefined) {
        yield* Effect.forkIn(this.ping(connection.client, this.settings.ping), connection.scope)
      }
      // A connection that ended between its negotiation and now said so to nobody: say it now.
      const state = yield* connection.client.runstate.get
      if (state._tag !== "Running") yield* this.lost(connection, state.reason)
    })
  }

  /**
   * A connection has ended. If it is the one in use, and the VM is still held, a fiber of the
   * member's scope reconnects, for this gap only: between gaps, no fiber waits on the connection.
   */
  private lost(connection: Connection, reason: QmpDisconnected): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.stopping || this.gone || this.installed !== connection) return Effect.void
      this.installed = undefined
      this.current = undefined
      this.unavailable = reason
      return Effect.forkIn(this.reconnect(connection, reason), this.scope).pipe(
        Effect.tap((fiber) =>
          Effect.sync(() => {
            this.reconnecting = fiber
          })
        ),
        Effect.asVoid
      )
    })
  }

  /** Closes the lost connection, and connects again on the schedule; or, when it gives up, the VM is gone. */
  private reconnect(connection: Connection, reason: QmpDisconnected): Effect.Effect<void> {
    const { runstate, vm } = this
    return Effect.gen(this, function*() {
      yield* Scope.close(connection.scope, Exit.void)
      const gap: PendingGap = { lost: this.clock.unsafeCurrentTimeMillis(), reason, failures: 0 }
      this.pendingGap = gap
      yield* runstate.set(Runstate.Reconnecting({ lost: gap.lost, reason, attempts: 0 }))
      yield* Metric.set(InternalMetrics.vmMetric(InternalMetrics.vmConnectedKey, vm), 0)
      yield* Effect.logWarning("QMP connection lost: reconnecting").pipe(
        Effect.annotateLogs("reason", reason.message)
      )
      const next = yield* this.attempt.pipe(
        Effect.tapError((error) =>
          Effect.suspend(() => {
            gap.failures++
            // An attempt that failed after its first events announced the gap: announce a new one.
            if (this.pendingGap === undefined) this.pendingGap = gap
            return runstate.set(Runstate.Reconnecting({ lost: gap.lost, reason, attempts: gap.failures })).pipe(
              Effect.zipRight(Effect.logDebug(`Reconnect attempt ${gap.failures} failed: ${error.message}`))
            )
          })
        ),
        Effect.retry(this.settings.reconnect),
        Effect.either
      )
      this.reconnecting = undefined
      if (next._tag === "Left") {
        const why = gaveUp(reason, gap.failures, next.left)
        yield* Effect.logWarning("Gave up reconnecting: the VM is gone").pipe(
          Effect.annotateLogs("reason", why.message)
        )
        return yield* this.endAndForget(why)
      }
      yield* this.install(next.right)
      yield* this.announceGap
      yield* Metric.increment(InternalMetrics.vmMetric(InternalMetrics.vmReconnectsKey, vm))
      yield* Effect.logInfo("QMP connection restored").pipe(Effect.annotateLogs("attempts", gap.failures + 1))
    }).pipe(
      // Forked from the connection's own fiber: its log annotations (address, fiber) are not ours.
      Effect.locally(FiberRef.currentLogAnnotations, HashMap.make(["module", "QmpFleet"], ["vm", vm]))
    )
  }

  /** Ends the VM for good, its current connection first (its pending commands fail with `reason`). */
  stop(reason: QmpDisconnected): Effect.Effect<boolean> {
    return Effect.gen(this, function*() {
      this.stopping = true
      if (this.connecting !== undefined) yield* Fiber.interrupt(this.connecting)
      if (this.reconnecting !== undefined) yield* Fiber.interrupt(this.reconnecting)
      if (this.current !== undefined) yield* QmpClient.abort(this.current, reason)
      yield* Scope.close(this.connections, Exit.void)
      return yield* this.finish(reason)
    })
  }

  /** `disconnect` of the handle: the VM ends for good, and the fleet starts afresh on the next use. */
  get disconnect(): Effect.Effect<void> {
    return this.forgetting(this.stop(new QmpDisconnected({ reason: "Disconnected" })))
  }
}

/** A client's runstate, as a fleet's handle shows it: `Running` while connected, `Disconnected` during a gap. */
class ClientRunstate {
  constructor(private readonly state: Watched<Runstate>) {}

  get get(): Effect.Effect<QmpClient.Runstate> {
    return Effect.map(this.state.get, toClientRunstate)
  }

  get changes(): Stream.Stream<QmpClient.Runstate> {
    return this.state.changes.pipe(Stream.map(toClientRunstate), Stream.changes)
  }
}

/**
 * The client a fleet hands out for a VM: the same across reconnects. Commands go to the current
 * connection when they run, or fail at once during a gap.
 *
 * @internal
 */
export class FleetClient extends TypedClient {
  constructor(private readonly member: Member) {
    super()
  }

  protected run(
    kind: "execute" | "exec-oob",
    command: string,
    args: Readonly<Record<string, unknown>> | undefined,
    options: QmpClient.ExecuteOptions | undefined
  ): Effect.Effect<unknown, ExecuteError> {
    return Effect.suspend(() => {
      const current = this.member.current
      if (current === undefined) return Effect.fail(this.member.unavailable ?? new QmpDisconnected({ reason: "Lost" }))
      return kind === "execute" ?
        current.executeUnknown(command, args, options) :
        current.executeOobUnknown(command, args, options)
    })
  }

  // The latest connection's: a reconnect may reach another QEMU (a new version, another address).
  get address(): QmpAddress {
    return this.member.latest!.address
  }

  get greeting(): Greeting {
    return this.member.latest!.greeting
  }

  get oob(): boolean {
    return this.member.latest!.oob
  }

  get disconnect(): Effect.Effect<void> {
    return this.member.disconnect
  }

  get closed(): Effect.Effect<QmpDisconnected> {
    return Deferred.await(this.member.goneReason)
  }

  // Made when asked for, as the connection's (most handles are never watched).
  get runstate(): TypedClient["runstate"] {
    return new ClientRunstate(this.member.runstate)
  }
}
