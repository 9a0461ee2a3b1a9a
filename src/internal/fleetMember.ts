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
 *   new connection: the registry is fed through `feed`, which puts a pending gap first.
 * - When the schedule gives up, or the client is told to `disconnect`, or the fleet lets go of the
 *   VM (the last user released it and its idle time passed), the VM is gone: listeners end.
 *
 * Plain mutable state (`current`, `pendingGap`, ...) is written by the member's fibers (the first
 * connection's, a gap's) and read in synchronous steps by callers, as the connection's own state is.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as HashMap from "effect/HashMap"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as EventListener from "../EventListener.js"
import * as QmpClient from "../QmpClient.js"
import type { ExecuteError, QmpConnectError, QmpNegotiationError, QmpResolveError } from "../QmpError.js"
import { QmpDisconnected } from "../QmpError.js"
import * as QmpEvents from "../QmpEvents.js"
import type { QmpEvent } from "../QmpMessage.js"
import { loadDefaultModule } from "./defaultModule.js"
import { causeMessage } from "./describe.js"
import { makeGapEvent } from "./gap.js"
import * as InternalMetrics from "./metrics.js"
import { retype } from "./typedClient.js"
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

/** @internal */
export interface MemberOptions {
  readonly vm: string
  /**
   * Resolves the VM's address and connects, feeding `feed`, in the current scope; `onEnd` runs when
   * that connection, once established, has ended.
   */
  readonly connect: (
    feed: QmpEvents.Service,
    onEnd: (reason: QmpDisconnected) => Effect.Effect<void>
  ) => Effect.Effect<QmpClient.Service, ConnectError, Scope.Scope>
  /** When to try again after a failed reconnect attempt (its input: the attempt's error). */
  readonly reconnect: Schedule.Schedule<unknown, ConnectError>
  readonly ping: Ping | undefined
  readonly defaultListener: EventListener.QueueOptions
  /** Sees each batch the registry delivered (the fleet's `all`). */
  readonly tap: (events: ReadonlyArray<QmpEvent>) => void
  /** The VM is gone while the fleet still holds it: the next use must start afresh. */
  readonly onGone: Effect.Effect<void>
}

/** @internal */
export interface Member {
  /** The client, once the first connection is made; or why it could not be. */
  readonly ready: Effect.Effect<QmpClient.Service, ConnectError>
  /** The registry, which outlives the VM's connections. */
  readonly events: QmpEvents.Service
  readonly runstate: {
    readonly get: Effect.Effect<Runstate>
    readonly changes: Stream.Stream<Runstate>
  }
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
export const make = (options: MemberOptions): Effect.Effect<Member, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { vm } = options
    const clock = yield* Effect.clock
    const registry = yield* QmpEvents.makeRegistry({ defaultListener: options.defaultListener, tap: options.tap })
    const state = new Watched<Runstate>(Runstate.Connecting())
    const first = yield* Deferred.make<QmpClient.Service, ConnectError>()
    // Why the VM is gone, once it is (a Deferred, not a Stream of the state: cheap to hold per VM).
    const goneReason = yield* Deferred.make<QmpDisconnected>()
    // Connections live in a scope of their own, so that letting go of the VM stops the supervisor
    // before any connection closes (a connection that ends would otherwise be reconnected).
    const connections = yield* Scope.make()
    const memberScope = yield* Effect.scope

    /** The connection commands go to: none during a gap. */
    let current: QmpClient.Service | undefined
    /** The latest connection: its greeting and address stay readable during a gap. */
    let latest: QmpClient.Service | undefined
    /** Why commands fail at once: the gap's reason, or why the VM is gone. */
    let unavailable: QmpDisconnected | undefined
    let pendingGap: PendingGap | undefined
    let gone = false

    const set = (next: Runstate) => state.set(next)

    /** The pending gap's event, taken (once) when it is announced. */
    const takeGap = (): QmpEvent | undefined => {
      const gap = pendingGap
      if (gap === undefined) return undefined
      pendingGap = undefined
      return makeGapEvent({
        vm,
        lost: gap.lost,
        restored: clock.unsafeCurrentTimeMillis(),
        reason: gap.reason,
        attempts: gap.failures + 1
      })
    }
    const announceGap = registry.publishGap(takeGap)

    // What a connection feeds: the registry, with a pending gap announced before the new
    // connection's first events (QEMU sends none before negotiation, so they come from a connection
    // that has been restored).
    const feed: QmpEvents.Service = {
      ...registry.service,
      publishAll: (events) =>
        pendingGap === undefined ?
          registry.service.publishAll(events) :
          Effect.zipRight(announceGap, registry.service.publishAll(events)),
      publish: (event) => feed.publishAll([event])
    }

    const attempt: Effect.Effect<Connection, ConnectError> = Effect.gen(function*() {
      const scope = yield* Scope.fork(connections, ExecutionStrategy.sequential)
      // Each connection says when it has ended; only the installed one is reconnected.
      const connection: { client: QmpClient.Service; scope: Scope.CloseableScope } = { client: undefined!, scope }
      connection.client = yield* options.connect(feed, (reason) => lost(connection, reason)).pipe(
        Scope.extend(scope),
        Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : Scope.close(scope, exit))
      )
      return connection
    })

    /** The VM is gone: no more connections; listeners yield what they hold, then fail with `reason`. */
    const end = (reason: QmpDisconnected): Effect.Effect<boolean> =>
      Effect.suspend(() => {
        if (gone) return Effect.succeed(false)
        gone = true
        current = undefined
        unavailable = reason
        pendingGap = undefined
        return set(Runstate.Gone({ reason })).pipe(
          Effect.zipRight(Metric.set(InternalMetrics.vmMetric(InternalMetrics.vmConnectedKey, vm), 0)),
          Effect.zipRight(registry.service.end(reason)),
          Effect.zipRight(Deferred.succeed(goneReason, reason)),
          Effect.as(true)
        )
      })

    const ping = (client: QmpClient.Service, { every, timeout }: Ping): Effect.Effect<void> =>
      Effect.gen(function*() {
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

    /** The connection in use (none during a gap), and the fiber that reconnects (during a gap). */
    let installed: Connection | undefined
    let reconnecting: Fiber.RuntimeFiber<void> | undefined
    /** Set when the VM is let go of: a connection that ends then is not reconnected. */
    let stopping = false

    const install = (connection: Connection): Effect.Effect<void> =>
      Effect.gen(function*() {
        installed = connection
        current = connection.client
        latest = connection.client
        unavailable = undefined
        yield* set(Runstate.Connected({ since: clock.unsafeCurrentTimeMillis() }))
        yield* Metric.set(InternalMetrics.vmMetric(InternalMetrics.vmConnectedKey, vm), 1)
        if (options.ping !== undefined) yield* Effect.forkIn(ping(connection.client, options.ping), connection.scope)
        // A connection that ended between its negotiation and now said so to nobody: say it now.
        const state = yield* connection.client.runstate.get
        if (state._tag !== "Running") yield* lost(connection, state.reason)
      })

    /**
     * A connection has ended. If it is the one in use, and the VM is still held, a fiber of the
     * member's scope reconnects, for this gap only: between gaps, no fiber waits on the connection.
     */
    function lost(connection: Connection, reason: QmpDisconnected): Effect.Effect<void> {
      return Effect.suspend(() => {
        if (stopping || gone || installed !== connection) return Effect.void
        installed = undefined
        current = undefined
        unavailable = reason
        return Effect.forkIn(reconnect(connection, reason), memberScope).pipe(
          Effect.tap((fiber) =>
            Effect.sync(() => {
              reconnecting = fiber
            })
          ),
          Effect.asVoid
        )
      })
    }

    /** Closes the lost connection, and connects again on the schedule; or, when it gives up, the VM is gone. */
    const reconnect = (connection: Connection, reason: QmpDisconnected): Effect.Effect<void> =>
      Effect.gen(function*() {
        yield* Scope.close(connection.scope, Exit.void)
        const gap: PendingGap = { lost: clock.unsafeCurrentTimeMillis(), reason, failures: 0 }
        pendingGap = gap
        yield* set(Runstate.Reconnecting({ lost: gap.lost, reason, attempts: 0 }))
        yield* Metric.set(InternalMetrics.vmMetric(InternalMetrics.vmConnectedKey, vm), 0)
        yield* Effect.logWarning("QMP connection lost: reconnecting").pipe(
          Effect.annotateLogs("reason", reason.message)
        )
        const next = yield* attempt.pipe(
          Effect.tapError((error) =>
            Effect.suspend(() => {
              gap.failures++
              // An attempt that failed after its first events announced the gap: announce a new one.
              if (pendingGap === undefined) pendingGap = gap
              return set(Runstate.Reconnecting({ lost: gap.lost, reason, attempts: gap.failures })).pipe(
                Effect.zipRight(Effect.logDebug(`Reconnect attempt ${gap.failures} failed: ${error.message}`))
              )
            })
          ),
          Effect.retry(options.reconnect),
          Effect.either
        )
        reconnecting = undefined
        if (next._tag === "Left") {
          const why = gaveUp(reason, gap.failures, next.left)
          yield* Effect.logWarning("Gave up reconnecting: the VM is gone").pipe(
            Effect.annotateLogs("reason", why.message)
          )
          if (yield* end(why)) yield* options.onGone
          return
        }
        yield* install(next.right)
        yield* announceGap
        yield* Metric.increment(InternalMetrics.vmMetric(InternalMetrics.vmReconnectsKey, vm))
        yield* Effect.logInfo("QMP connection restored").pipe(Effect.annotateLogs("attempts", gap.failures + 1))
      }).pipe(
        // Forked from the connection's own fiber: its log annotations (address, fiber) are not ours.
        Effect.locally(FiberRef.currentLogAnnotations, HashMap.make(["module", "QmpFleet"], ["vm", vm]))
      )

    /** Commands go to the current connection when they run, or fail at once during a gap. */
    const untyped = (pick: (client: QmpClient.Service) => QmpClient.Service["executeUnknown"]) =>
    (
      command: string,
      args?: Readonly<Record<string, unknown>>,
      executeOptions?: QmpClient.ExecuteOptions
    ): Effect.Effect<unknown, ExecuteError> =>
      Effect.suspend(() =>
        current === undefined ?
          Effect.fail(unavailable ?? new QmpDisconnected({ reason: "Lost" })) :
          pick(current)(command, args, executeOptions)
      )

    const clientRunstate = {
      get: Effect.map(state.get, toClientRunstate),
      // Made when asked for, as the connection's (most handles are never watched).
      get changes() {
        return state.changes.pipe(Stream.map(toClientRunstate), Stream.changes)
      }
    }

    const closed: Effect.Effect<QmpDisconnected> = Deferred.await(goneReason)

    const client: QmpClient.Service = retype(
      Object.defineProperties({
        executeUnknown: untyped((c) => c.executeUnknown),
        executeOobUnknown: untyped((c) => c.executeOobUnknown),
        disconnect: Effect.suspend(() =>
          Effect.flatMap(
            stop(new QmpDisconnected({ reason: "Disconnected" })),
            (ended) => ended ? options.onGone : Effect.void
          )
        ),
        closed,
        runstate: clientRunstate
      }, {
        // The latest connection's: a reconnect may reach another QEMU (a new version, another address).
        address: { get: () => latest!.address, enumerable: true },
        greeting: { get: () => latest!.greeting, enumerable: true },
        oob: { get: () => latest!.oob, enumerable: true }
      }) as unknown as QmpClient.Service,
      loadDefaultModule
    ) as QmpClient.Service

    // The first connection, in a fiber of its own that ends once it is made (or could not be).
    let connecting: Fiber.RuntimeFiber<unknown> | undefined = yield* attempt.pipe(
      Effect.matchCauseEffect({
        onFailure: (cause) =>
          Effect.gen(function*() {
            yield* Deferred.failCause(first, cause)
            const failure = Cause.failureOption(cause)
            const detail = Option.isSome(failure) ? failure.value.message : Cause.pretty(cause)
            if (yield* end(new QmpDisconnected({ reason: "Lost", detail: `could not connect: ${detail}` }))) {
              yield* options.onGone
            }
          }),
        onSuccess: (connection) => Effect.zipRight(install(connection), Deferred.succeed(first, client))
      }),
      // Not kept once done: a finished fiber still holds its state.
      Effect.ensuring(Effect.sync(() => {
        connecting = undefined
      })),
      Effect.annotateLogs({ module: "QmpFleet", vm }),
      Effect.forkScoped
    )

    /** Ends the VM for good, its current connection first (its pending commands fail with `reason`). */
    const stop = (reason: QmpDisconnected): Effect.Effect<boolean> =>
      Effect.gen(function*() {
        stopping = true
        if (connecting !== undefined) yield* Fiber.interrupt(connecting)
        if (reconnecting !== undefined) yield* Fiber.interrupt(reconnecting)
        if (current !== undefined) yield* QmpClient.abort(current, reason)
        yield* Scope.close(connections, Exit.void)
        return yield* end(reason)
      })

    // Letting go of the VM (its last user released it and its idle time passed, or the fleet closed).
    yield* Effect.addFinalizer(() =>
      stop(new QmpDisconnected({ reason: "Disconnected", detail: `the fleet let go of VM ${JSON.stringify(vm)}` }))
    )

    return {
      ready: Deferred.await(first),
      events: registry.service,
      runstate: {
        get: state.get,
        get changes() {
          return state.changes
        }
      }
    }
  })
