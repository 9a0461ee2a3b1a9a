/**
 * `QmpClient` is one QMP connection to a running QEMU, over a Unix socket or TCP.
 *
 * Connecting reads QEMU's greeting and negotiates capabilities (`qmp_capabilities`, enabling
 * out-of-band execution whenever the greeting offers it). Then `execute` runs commands: each gets a
 * unique `id`, so that any number of fibers can run commands at once and each gets its own reply;
 * each has a timeout. Every event QEMU sends goes to the `QmpEvents` registry, one batch per chunk
 * read from the socket, before any reply that followed it completes its `execute`: a listener created
 * before a command hears the events that the command caused by the time `execute` returns.
 *
 * The connection is scoped: closing the scope disconnects. When the connection ends, for whatever
 * reason, pending calls fail with `QmpDisconnected` and every listener yields its pending events, then
 * fails with `QmpDisconnected`. `execute("quit")` succeeds even when QEMU's hang-up is seen before
 * its reply.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { QmpClient, QmpEvents } from "effect-qmp"
 *
 * const program = Effect.gen(function*() {
 *   const qmp = yield* QmpClient.QmpClient
 *   const events = yield* QmpEvents.QmpEvents
 *   const stops = yield* events.listener("STOP")
 *   yield* qmp.execute("stop")
 *   const stop = yield* stops.take // already there: it came before stop's return
 *   return stop.timestamp
 * })
 *
 * program.pipe(
 *   Effect.scoped,
 *   Effect.provide(QmpClient.layer({ path: "/tmp/qmp.sock" }, { commandTimeout: "5 seconds" }))
 * )
 * ```
 *
 * This is `QMPClient` of QEMU's Python package (`qemu.qmp.qmp_client`), the Effect way.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type * as Tracer from "effect/Tracer"
import type { Runstate } from "./internal/runstate.js"
import * as Session from "./internal/session.js"
import * as Transport from "./internal/transport.js"
import type { QmpAddress } from "./QmpAddress.js"
import { addressConfig, format as formatAddress } from "./QmpAddress.js"
import type { ExecuteError, QmpDisconnected } from "./QmpError.js"
import { QmpConnectError, QmpNegotiationError } from "./QmpError.js"
import * as QmpEvents from "./QmpEvents.js"
import type * as QmpMessage from "./QmpMessage.js"

export {
  /**
   * The states of a connection (see `Service.runstate`).
   *
   * @since 0.1.0
   * @category models
   */
  Runstate
} from "./internal/runstate.js"

export {
  /**
   * Where to connect, from `QMP_SOCKET` or `QMP_TCP` (see `QmpAddress.addressConfig`).
   *
   * @since 0.1.0
   * @category config
   */
  addressConfig,
  /**
   * Parses `HOST:PORT` into a TCP address (see `QmpAddress.parseTcpAddress`).
   *
   * @since 0.1.0
   * @category constructors
   */
  parseTcpAddress
} from "./QmpAddress.js"

export type {
  /**
   * How a command can fail (see `QmpError.ExecuteError`).
   *
   * @since 0.1.0
   * @category models
   */
  ExecuteError
} from "./QmpError.js"

export type {
  /**
   * Where a QMP server listens (see `QmpAddress`).
   *
   * @since 0.1.0
   * @category models
   */
  QmpAddress
} from "./QmpAddress.js"

/**
 * Options of a connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * Time allowed for connecting, reading the greeting and negotiating: 10 seconds by default. One
   * attempt, no retry: a missing socket fails at once.
   */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Time allowed for each command's reply, unless the call gives its own: 60 seconds by default. */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /**
   * The longest message accepted, in bytes: 10 MiB by default (one `query-qmp-schema` reply is about
   * 200 KB). A longer message (a line; on a pretty monitor, one over many lines) ends the connection
   * with `QmpProtocolError` ("MessageTooLarge").
   */
  readonly maxMessageBytes?: number | undefined
}

/**
 * Options of one command.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExecuteOptions {
  /** Overrides the connection's `commandTimeout` for this call. */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** Where this client is connected. */
  readonly address: QmpAddress
  /** QEMU's greeting: its version and the capabilities it offered. */
  readonly greeting: QmpMessage.Greeting
  /** `true` if out-of-band execution was enabled (the greeting offered `oob`). */
  readonly oob: boolean
  /**
   * Runs a command and gives its `return` value. Any number of fibers may call it at once. A call
   * that times out or is interrupted has its late reply dropped.
   */
  readonly execute: (
    command: string,
    args?: Readonly<Record<string, unknown>>,
    options?: ExecuteOptions
  ) => Effect.Effect<unknown, ExecuteError>
  /**
   * Runs a command out of band (`exec-oob`): QEMU runs it at once, even while an in-band command is
   * still running. Only commands that allow it (`query-yank`, `migrate-recover`, ...), and only when
   * `oob` is enabled.
   */
  readonly executeOob: (
    command: string,
    args?: Readonly<Record<string, unknown>>,
    options?: ExecuteOptions
  ) => Effect.Effect<unknown, ExecuteError>
  /**
   * Closes the connection: pending calls fail and listeners end with `QmpDisconnected`
   * ("Disconnected"). Returns once that is done; closing the scope does the same.
   */
  readonly disconnect: Effect.Effect<void>
  /** Waits until the connection has ended (for any reason, listeners ended), and gives the reason. */
  readonly closed: Effect.Effect<QmpDisconnected>
  /**
   * The state of the connection, read-only: `Running`, then `Disconnecting` (it has ended; pending
   * calls and listeners are being ended), then `Disconnected`, with the reason (Python's `runstate`
   * and `runstate_changed`). `changes` gives the current state, then each change.
   */
  readonly runstate: {
    readonly get: Effect.Effect<Runstate>
    readonly changes: Stream.Stream<Runstate>
  }
}

/**
 * The `QmpClient` service.
 *
 * @since 0.1.0
 * @category tags
 */
export class QmpClient extends Context.Tag("effect-qmp/QmpClient")<QmpClient, Service>() {}

/**
 * The default `connectTimeout`.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultConnectTimeout: Duration.Duration = Duration.seconds(10)

/**
 * The default `commandTimeout`.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultCommandTimeout: Duration.Duration = Duration.seconds(60)

/**
 * The default `maxMessageBytes`: 10 MiB, as libvirt and qemu.qmp.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxMessageBytes = 10 * 1024 * 1024

/** Effect's built-in tracer, which keeps spans for the fiber's own use and exports nothing. */
let builtin: Tracer.Tracer | undefined
const builtinTracer = (): Tracer.Tracer => builtin ??= Effect.runSync(Effect.tracer)

const negotiationFailure = (error: ExecuteError): QmpNegotiationError => {
  switch (error._tag) {
    case "QmpExecuteError":
      return new QmpNegotiationError({ reason: "Refused", detail: `${error.errorClass}: ${error.desc}` })
    case "QmpDisconnected":
      return new QmpNegotiationError({
        reason: "Refused",
        detail: `the connection ended during negotiation (${error.message})`
      })
    default:
      return new QmpNegotiationError({ reason: "Refused", detail: error.message })
  }
}

/**
 * Connects to a QMP server and negotiates, in the current scope; the connection feeds the
 * `QmpEvents` registry it is given (which may outlive it: `QmpEvents.end` runs when an established
 * session ends, never after a failed connect). Closing the scope disconnects.
 *
 * Fails with `QmpConnectError` when the address cannot be reached (`NotFound`, `Refused`), nothing
 * answers within `connectTimeout` (`Timeout`), or no greeting comes (`NoGreeting`: QEMU serves one
 * client per socket); with `QmpNegotiationError` when the greeting is not QMP or QEMU refuses
 * `qmp_capabilities`. Dies with an `IllegalArgumentException` if `maxMessageBytes` is not a positive
 * integer.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  address: QmpAddress,
  options: Options = {}
): Effect.Effect<Service, QmpConnectError | QmpNegotiationError, Scope.Scope | QmpEvents.QmpEvents> =>
  Effect.gen(function*() {
    const maxMessageBytes = options.maxMessageBytes ?? defaultMaxMessageBytes
    if (!Number.isSafeInteger(maxMessageBytes) || maxMessageBytes <= 0) {
      return yield* Effect.die(
        new Cause.IllegalArgumentException(`maxMessageBytes must be a positive integer, got ${maxMessageBytes}`)
      )
    }
    const connectTimeout = Duration.decode(options.connectTimeout ?? defaultConnectTimeout)
    const commandTimeout = Duration.decode(options.commandTimeout ?? defaultCommandTimeout)
    const events = yield* QmpEvents.QmpEvents

    // The connection lives in a scope of its own, closed at once if connecting fails, so that a
    // failed attempt does not hold the socket (QEMU's only client slot) until the caller's scope ends.
    const scope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    // Set once the socket is open: a timeout before the greeting then means that none came.
    let opened: Session.Session | undefined

    const connect = Effect.gen(function*() {
      const socket = yield* Transport.open(address)
      const session = yield* Session.make({ address, socket, events, maxMessageBytes })
      opened = session
      const greeting = yield* session.greeting
      const oob = greeting.QMP.capabilities.includes("oob")
      yield* Effect.mapError(
        session.call("execute", "qmp_capabilities", oob ? { enable: ["oob"] } : undefined, undefined),
        negotiationFailure
      )
      if (!(yield* session.establish)) {
        return yield* new QmpNegotiationError({
          reason: "Refused",
          detail: "the connection ended right after negotiation"
        })
      }
      return { session, greeting, oob }
    })

    const { greeting, oob, session } = yield* connect.pipe(
      Duration.isFinite(connectTimeout) ?
        Effect.timeoutFail({
          duration: connectTimeout,
          onTimeout: () =>
            new QmpConnectError({ address, reason: opened?.state.awaitingGreeting ? "NoGreeting" : "Timeout" })
        }) :
        (self) => self,
      Scope.extend(scope),
      Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : Scope.close(scope, exit))
    )

    const { major, micro, minor } = greeting.QMP.version.qemu
    yield* Effect.logDebug(`Connected to QEMU ${major}.${minor}.${micro}${oob ? " (oob enabled)" : ""}`)

    const timeoutOf = (options: ExecuteOptions | undefined): Duration.Duration =>
      options?.timeout === undefined ? commandTimeout : Duration.decode(options.timeout)

    // One span per command, when a tracer that exports spans is installed: with Effect's built-in
    // tracer, which exports nothing, a span would cost more than the rest of the call (~10 µs).
    // No stack trace either: capturing one costs more still.
    const run = (kind: "execute" | "exec-oob") =>
    (
      command: string,
      args: Readonly<Record<string, unknown>> | undefined,
      options: ExecuteOptions | undefined
    ): Effect.Effect<unknown, ExecuteError> => {
      const call = session.call(kind, command, args, timeoutOf(options))
      return Effect.withFiberRuntime((fiber) =>
        fiber.currentTracer === builtinTracer() ? call : Effect.withSpan(call, `QmpClient.${kind}`, {
          attributes: { "qmp.command": command },
          kind: "client",
          captureStackTrace: false
        })
      )
    }

    return QmpClient.of({
      address,
      greeting,
      oob,
      execute: run("execute"),
      executeOob: run("exec-oob"),
      disconnect: session.disconnect,
      closed: session.state.closed,
      runstate: { get: session.state.get, changes: session.state.changes }
    })
  }).pipe(Effect.annotateLogs({ module: "QmpClient", address: formatAddress(address) }))

/**
 * A connection as a layer, with a fresh `QmpEvents` registry that it feeds: the layer provides both.
 *
 * @example
 * ```ts
 * const Qmp = QmpClient.layer({ host: "127.0.0.1", port: 4444 }, { connectTimeout: "2 seconds" })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  address: QmpAddress,
  options?: Options
): Layer.Layer<QmpClient | QmpEvents.QmpEvents, QmpConnectError | QmpNegotiationError> =>
  Layer.scoped(QmpClient, make(address, options)).pipe(Layer.provideMerge(QmpEvents.layer))

/**
 * A connection as a layer, its address and options read from `Config`: by default the address from
 * `QMP_SOCKET` or `QMP_TCP` (see `addressConfig`) and the default options.
 *
 * @example
 * ```ts
 * // QMP_SOCKET=/run/vm1/qmp.sock node app.js
 * program.pipe(Effect.provide(QmpClient.layerConfig()))
 * // or with options from Config too
 * QmpClient.layerConfig({ address: QmpClient.addressConfig, commandTimeout: Config.duration("QMP_TIMEOUT") })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options & { readonly address: QmpAddress }> = { address: addressConfig }
): Layer.Layer<QmpClient | QmpEvents.QmpEvents, QmpConnectError | QmpNegotiationError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), ({ address, ...options }) => layer(address, options)))
