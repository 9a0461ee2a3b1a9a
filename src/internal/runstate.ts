/**
 * The state of one QMP connection: one value, changed only here, through named transitions.
 *
 * A connection first awaits QEMU's greeting, then negotiates; then it runs; when it ends, for
 * whatever reason, it is disconnecting (its pending calls are being settled, its listeners ended),
 * then disconnected. Users see the last three, read-only, as `QmpClient.runstate` (QEMU's Python
 * client has the same `Runstate`, and publishes its changes as `runstate_changed`).
 *
 * Each transition is an Effect that the connection's own fibers run: the value changes when it runs,
 * and the change is published in the same step. The value is also kept in a plain field, so that the
 * socket callback and `execute` read it synchronously.
 *
 * @internal
 */
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { QmpDisconnected } from "../QmpError.js"
import { Watched } from "./watched.js"

/**
 * The state of a connection, as users see it: running; disconnecting (it has ended, and its pending
 * calls and listeners are being ended); disconnected, and why.
 *
 * @internal
 */
export type Runstate = Data.TaggedEnum<{
  Running: Record<never, never>
  Disconnecting: { readonly reason: QmpDisconnected }
  Disconnected: { readonly reason: QmpDisconnected }
}>

/** @internal */
export const Runstate = Data.taggedEnum<Runstate>()

/** Where a connection is: the two steps of connecting, then what users see. @internal */
export type Phase =
  | Data.TaggedEnum<{
    AwaitingGreeting: Record<never, never>
    Negotiating: Record<never, never>
  }>
  | Runstate

const Phase = Data.taggedEnum<Phase>()

const toRunstate = (phase: Phase): Option.Option<Runstate> =>
  phase._tag === "AwaitingGreeting" || phase._tag === "Negotiating" ? Option.none() : Option.some(phase)

/**
 * One connection's state.
 *
 * @internal
 */
export class ConnectionState {
  private constructor(
    private phase: Phase,
    private readonly ref: Watched<Phase>,
    // Completed with the reason once disconnected. A fleet waits on `closed` for each of its
    // thousand connections: a Deferred costs one waiter, where a Stream of `changes` costs a
    // subscription and its channel fibers for as long as the connection lasts.
    private readonly done: Deferred.Deferred<QmpDisconnected>
  ) {}

  static readonly make: Effect.Effect<ConnectionState> = Effect.map(
    Deferred.make<QmpDisconnected>(),
    (done) => new ConnectionState(Phase.AwaitingGreeting(), new Watched<Phase>(Phase.AwaitingGreeting()), done)
  )

  /** The first message will be QEMU's greeting. */
  get awaitingGreeting(): boolean {
    return this.phase._tag === "AwaitingGreeting"
  }

  /** Commands may be written: while negotiating (`qmp_capabilities`) and while running. */
  get accepting(): boolean {
    return this.phase._tag === "Negotiating" || this.phase._tag === "Running"
  }

  /** Why the connection ended, once it has. */
  get ended(): QmpDisconnected | undefined {
    return this.phase._tag === "Disconnecting" || this.phase._tag === "Disconnected" ? this.phase.reason : undefined
  }

  /**
   * Changes the state if `next` gives a new one for the current one; `false` if it does not. The
   * change and its publication happen in one step (`Watched.modify`, as `SubscriptionRef.modify`),
   * and so does the update of the plain field that synchronous readers use.
   */
  private transition(next: (phase: Phase) => Phase | undefined): Effect.Effect<boolean> {
    return Effect.suspend(() =>
      this.ref.modify((phase) => {
        const to = next(phase)
        if (to === undefined) return [false, phase]
        this.phase = to
        return [true, to]
      })
    )
  }

  /** QEMU greeted: negotiation starts. */
  get greeted(): Effect.Effect<boolean> {
    return this.transition((phase) => phase._tag === "AwaitingGreeting" ? Phase.Negotiating() : undefined)
  }

  /** Negotiation succeeded: the connection runs. `false` if it has ended meanwhile. */
  get run(): Effect.Effect<boolean> {
    return this.transition((phase) => phase._tag === "Negotiating" ? Phase.Running() : undefined)
  }

  /**
   * The connection has ended, for `reason`: the phase it was in, or `undefined` if it had ended
   * already (the first reason stays).
   */
  disconnecting(reason: QmpDisconnected): Effect.Effect<Phase | undefined> {
    return this.ref.modify((phase) => {
      if (phase._tag === "Disconnecting" || phase._tag === "Disconnected") return [undefined, phase]
      this.phase = Phase.Disconnecting({ reason })
      return [phase, this.phase]
    })
  }

  /** The end has been carried out: calls settled, listeners ended. */
  get disconnected(): Effect.Effect<boolean> {
    return Effect.uninterruptible(Effect.tap(
      this.transition((phase) =>
        phase._tag === "Disconnecting" ? Phase.Disconnected({ reason: phase.reason }) : undefined
      ),
      (changed) =>
        changed && this.phase._tag === "Disconnected" ? Deferred.succeed(this.done, this.phase.reason) : Effect.void
    ))
  }

  /** What users see: the current state. */
  get get(): Effect.Effect<Runstate> {
    return Effect.sync(() => Option.getOrElse(toRunstate(this.phase), Runstate.Running))
  }

  /** What users see: the current state, then each change. */
  get changes(): Stream.Stream<Runstate> {
    return this.ref.changes.pipe(Stream.filterMap(toRunstate), Stream.changes)
  }

  /** Waits until the connection is disconnected, and gives the reason. */
  get closed(): Effect.Effect<QmpDisconnected> {
    return Deferred.await(this.done)
  }
}
