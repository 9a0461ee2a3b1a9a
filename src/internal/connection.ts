/**
 * The client of one connection, as `QmpClient.make` returns it: its session, its greeting, and how
 * long each command may take.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Tracer from "effect/Tracer"
import type { QmpAddress } from "../QmpAddress.js"
import type { ExecuteOptions } from "../QmpClient.js"
import type { ExecuteError, QmpDisconnected } from "../QmpError.js"
import type { Greeting } from "../QmpMessage.js"
import type { Session } from "./session.js"
import { TypedClient } from "./typedClient.js"

/** Effect's built-in tracer, which keeps spans for the fiber's own use and exports nothing. */
let builtin: Tracer.Tracer | undefined
const builtinTracer = (): Tracer.Tracer => builtin ??= Effect.runSync(Effect.tracer)

/** @internal */
export class Connection extends TypedClient {
  constructor(
    readonly address: QmpAddress,
    readonly greeting: Greeting,
    readonly oob: boolean,
    readonly session: Session,
    private readonly commandTimeout: Duration.Duration,
    /** Timeouts by command, when any were given. */
    private readonly commandTimeouts: ReadonlyMap<string, Duration.Duration> | undefined
  ) {
    super()
  }

  get disconnect(): Effect.Effect<void> {
    return this.session.disconnect
  }

  get closed(): Effect.Effect<QmpDisconnected> {
    return this.session.state.closed
  }

  /** The session's state, seen through its `get` and `changes` only. */
  get runstate(): TypedClient["runstate"] {
    return this.session.state
  }

  /** Ends the connection for `reason`; pending calls (and listeners, if it ends them) fail with it. */
  abort(reason: QmpDisconnected): Effect.Effect<void> {
    return this.session.abort(reason)
  }

  private timeoutOf(command: string, options: ExecuteOptions | undefined): Duration.Duration {
    return options?.timeout !== undefined ?
      Duration.decode(options.timeout) :
      this.commandTimeouts?.get(command) ?? this.commandTimeout
  }

  // One span per command, when a tracer that exports spans is installed: with Effect's built-in
  // tracer, which exports nothing, a span would cost more than the rest of the call (~10 µs).
  // No stack trace either: capturing one costs more still.
  protected run(
    kind: "execute" | "exec-oob",
    command: string,
    args: Readonly<Record<string, unknown>> | undefined,
    options: ExecuteOptions | undefined
  ): Effect.Effect<unknown, ExecuteError> {
    const call = this.session.call(kind, command, args, this.timeoutOf(command, options))
    return Effect.withFiberRuntime((fiber) =>
      fiber.currentTracer === builtinTracer() ? call : Effect.withSpan(call, `QmpClient.${kind}`, {
        attributes: { "qmp.command": command },
        kind: "client",
        captureStackTrace: false
      })
    )
  }
}
