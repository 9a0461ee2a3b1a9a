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
import * as MetricLabel from "effect/MetricLabel"
import * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import { Connection } from "./internal/connection.js"
import { loadDefaultModule } from "./internal/defaultModule.js"
import type { Runstate } from "./internal/runstate.js"
import * as Session from "./internal/session.js"
import * as Transport from "./internal/transport.js"
import { retype } from "./internal/typedClient.js"
import type * as Qemu72 from "./qemu/v7_2/types.js"
import type { QmpAddress } from "./QmpAddress.js"
import { addressConfig, format as formatAddress } from "./QmpAddress.js"
import type { ExecuteError, QmpDisconnected } from "./QmpError.js"
import { QmpConnectError, QmpNegotiationError } from "./QmpError.js"
import * as QmpEvents from "./QmpEvents.js"
import type * as QmpMessage from "./QmpMessage.js"
import type { CommandShape, EventShape, Generated } from "./QmpSchema.js"

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
   * Time allowed for the reply of particular commands, in place of `commandTimeout`; a call's own
   * `timeout` still comes first. Commands differ by orders of magnitude: Incus allows 0.5 s by
   * default and 30 s for `blockdev-add`, `cont` and `stop`.
   *
   * @example
   * ```ts
   * QmpClient.layer(address, {
   *   commandTimeout: "500 millis",
   *   commandTimeouts: { "blockdev-add": "30 seconds", cont: "30 seconds", stop: "30 seconds" }
   * })
   * ```
   */
  readonly commandTimeouts?: { readonly [command: string]: Duration.DurationInput } | undefined
  /**
   * The longest message accepted, in bytes: 10 MiB by default (one `query-qmp-schema` reply is about
   * 200 KB). A longer message (a line; on a pretty monitor, one over many lines) ends the connection
   * with `QmpProtocolError` ("MessageTooLarge").
   */
  readonly maxMessageBytes?: number | undefined
  /**
   * Compares the running QEMU's schema (`query-qmp-schema`, about 200 KB) with a generated module's
   * once negotiated, as `SchemaCheck.check` does on demand: off by default. The differences are
   * logged (a warning when a typed call or listener could trip on them); with `onIncompatible:
   * "fail"`, such differences, or a failed check, fail connecting with `QmpNegotiationError`
   * ("IncompatibleSchema"). The module is QEMU 7.2's unless one is given.
   */
  readonly checkSchema?:
    | {
      readonly module?: Generated<any, any> | undefined
      readonly onIncompatible?: "warn" | "fail" | undefined
    }
    | undefined
  /**
   * Whether the end of the connection ends the `QmpEvents` registry it feeds (its listeners then
   * yield what they hold and fail with `QmpDisconnected`): `true` by default. `false` leaves the
   * registry open for another connection to feed (`QmpFleet` reconnects so); ending it is then the
   * caller's to do.
   */
  readonly endRegistry?: boolean | undefined
  /**
   * Tags added to this connection's metrics (`qmp_events_received`, `qmp_commands_pending`) beside
   * its `address`: `{ vm: "vm1" }`.
   */
  readonly metricTags?: { readonly [tag: string]: string } | undefined
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
 * The constraint on a map of commands: each a `CommandShape` (a generated module's `Commands`).
 *
 * @since 0.1.0
 * @category typing
 */
export type CommandMap<Commands> = { readonly [C in keyof Commands]: CommandShape }

/**
 * QEMU 7.2's commands: what `QmpClient` is typed by unless `typed` gives it another module.
 *
 * @since 0.1.0
 * @category typing
 */
export type DefaultCommands = Qemu72.Commands

/**
 * The arguments after a command's name: required when the command has required arguments, and
 * only `{}` (or none) when it takes none.
 *
 * @since 0.1.0
 * @category typing
 */
export type ArgumentsOf<S extends CommandShape> = S["argsRequired"] extends true ?
  [args: S["args"], options?: ExecuteOptions] :
  [keyof S["args"]] extends [never] ? [args?: NoArguments, options?: ExecuteOptions]
  : [args?: S["args"], options?: ExecuteOptions]

/**
 * The arguments of a command that takes none: an empty object. (The generated `Empty` is `{}`,
 * which TypeScript lets any object through.)
 *
 * @since 0.1.0
 * @category typing
 */
export type NoArguments = { readonly [name: string]: never }

/**
 * The commands of a map that QEMU runs out of band.
 *
 * @since 0.1.0
 * @category typing
 */
export type OobCommand<Commands extends CommandMap<Commands>> = {
  readonly [C in keyof Commands & string]: Commands[C] extends { readonly allowOob: true } ? C : never
}[keyof Commands & string]

/**
 * @since 0.1.0
 * @category models
 */
export interface Service<Commands extends CommandMap<Commands> = DefaultCommands> {
  /** Where this client is connected. */
  readonly address: QmpAddress
  /** QEMU's greeting: its version and the capabilities it offered. */
  readonly greeting: QmpMessage.Greeting
  /** `true` if out-of-band execution was enabled (the greeting offered `oob`). */
  readonly oob: boolean
  /**
   * Runs a command and gives its `return`, decoded with the command's Schema: the name, the
   * arguments and the return are typed by the client's module (QEMU 7.2's by default). Members a
   * newer QEMU added to the return are kept, and an enum value the module does not know passes (it
   * is logged once); a return that does not match fails with `QmpProtocolError`
   * ("UnexpectedReturn"). Any number of fibers may call it at once. A call that times out or is
   * interrupted has its late reply dropped. At run time a name the module lacks runs as
   * `executeUnknown`.
   *
   * @example
   * ```ts
   * const status = yield* qmp.execute("query-status") // StatusInfo
   * if (!status.running) yield* qmp.execute("cont")
   * ```
   */
  readonly execute: <C extends keyof Commands & string>(
    command: C,
    ...rest: ArgumentsOf<Commands[C]>
  ) => Effect.Effect<Commands[C]["return"], ExecuteError>
  /**
   * Runs any command, typed or not, and gives its `return` as QEMU sent it: for commands the
   * module lacks (a newer QEMU's, a test server's) and names known only at run time.
   */
  readonly executeUnknown: (
    command: string,
    args?: Readonly<Record<string, unknown>>,
    options?: ExecuteOptions
  ) => Effect.Effect<unknown, ExecuteError>
  /**
   * Runs a command out of band (`exec-oob`): QEMU runs it at once, even while an in-band command is
   * still running. Only commands that allow it (`query-yank`, `migrate-recover`, ...), and only when
   * `oob` is enabled. Typed and decoded as `execute`.
   */
  readonly executeOob: <C extends OobCommand<Commands>>(
    command: C,
    ...rest: ArgumentsOf<Commands[C]>
  ) => Effect.Effect<Commands[C]["return"], ExecuteError>
  /** `executeOob` for any command, its return as QEMU sent it. */
  readonly executeOobUnknown: (
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
 * A client typed by another generated module (`qmp codegen` for your QEMU): `execute` takes that
 * module's commands, and decodes returns with its Schemas. The connection is the same.
 *
 * @example
 * ```ts
 * import { module as Qemu9 } from "./qemu/v9_2/index.js" // written by `qmp codegen --out src/qemu/v9_2`
 *
 * const qmp = yield* QmpClient.typed(Qemu9)
 * const info = yield* qmp.execute("query-status")
 * ```
 *
 * @since 0.1.0
 * @category typing
 */
export const typed = <
  Commands extends CommandMap<Commands>,
  Events extends { readonly [E in keyof Events]: EventShape }
>(
  module: Generated<Commands, Events>
): Effect.Effect<Service<Commands>, never, QmpClient> =>
  Effect.map(QmpClient, (client) => retype(client, () => Promise.resolve(module)) as Service<Commands>)

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

/**
 * The `checkSchema` option: the report logged, and connecting failed on breaking differences when
 * asked. `SchemaCheck` (and the generator's model it uses) is loaded only here, off the path of a
 * plain connect.
 */
const checkSchemaAtConnect = (
  options: NonNullable<Options["checkSchema"]>,
  executeUnknown: (command: string) => Effect.Effect<unknown, ExecuteError>
): Effect.Effect<void, QmpNegotiationError> =>
  Effect.gen(function*() {
    const fail = options.onIncompatible === "fail"
    const SchemaCheck = yield* Effect.promise(() => import("./SchemaCheck.js"))
    const module = options.module ?? (yield* Effect.promise(loadDefaultModule))
    const report = yield* Effect.either(SchemaCheck.check({ executeUnknown }, module))
    if (report._tag === "Left") {
      const detail = `the schema check against QEMU ${module.qemu}'s module could not run: ${report.left.message}`
      if (fail) return yield* new QmpNegotiationError({ reason: "IncompatibleSchema", detail })
      return yield* Effect.logWarning(detail)
    }
    const lines = SchemaCheck.format(report.right, module)
    if (SchemaCheck.isCompatible(report.right)) {
      return yield* Effect.logDebug(lines.join("\n"))
    }
    if (fail) {
      return yield* new QmpNegotiationError({ reason: "IncompatibleSchema", detail: lines.join("\n") })
    }
    yield* Effect.logWarning(lines.join("\n"))
  }).pipe(Effect.annotateLogs({ check: "schema" }))

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
  Effect.flatMap(QmpEvents.QmpEvents, (events) => makeWith(address, options, events, undefined))

/**
 * `make`, feeding `events` (a registry, or a fleet's VM, which announces its gaps before the events
 * of a restored connection), with `onEnd` run once the connection, once established, has ended
 * (after its pending calls were settled, and its listeners ended if it ends them), in the fiber that
 * ended it. A fleet reconnects so, without a fiber of its own waiting on each connection's `closed`.
 *
 * @internal
 */
export const makeWith = (
  address: QmpAddress,
  options: Options,
  events: Session.EventSink,
  onEnd: ((reason: QmpDisconnected) => Effect.Effect<void>) | undefined
): Effect.Effect<Service, QmpConnectError | QmpNegotiationError, Scope.Scope> =>
  Effect.gen(function*() {
    const maxMessageBytes = options.maxMessageBytes ?? defaultMaxMessageBytes
    if (!Number.isSafeInteger(maxMessageBytes) || maxMessageBytes <= 0) {
      return yield* Effect.die(
        new Cause.IllegalArgumentException(`maxMessageBytes must be a positive integer, got ${maxMessageBytes}`)
      )
    }
    const connectTimeout = Duration.decode(options.connectTimeout ?? defaultConnectTimeout)
    const commandTimeout = Duration.decode(options.commandTimeout ?? defaultCommandTimeout)
    const commandTimeouts = new Map(
      Object.entries(options.commandTimeouts ?? {}).map(([command, timeout]) => [command, Duration.decode(timeout)])
    )
    const metricTags = Object.entries(options.metricTags ?? {}).map(([tag, value]) => MetricLabel.make(tag, value))

    // The connection lives in a scope of its own, closed at once if connecting fails, so that a
    // failed attempt does not hold the socket (QEMU's only client slot) until the caller's scope ends.
    const scope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    // Set once the socket is open: a timeout before the greeting then means that none came.
    let opened: Session.Session | undefined

    const connect = Effect.gen(function*() {
      const socket = yield* Transport.open(address)
      const session = yield* Session.make({
        address,
        socket,
        events,
        maxMessageBytes,
        endRegistry: options.endRegistry ?? true,
        metricTags,
        onEnd
      })
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
      if (options.checkSchema !== undefined) {
        yield* checkSchemaAtConnect(
          options.checkSchema,
          (command) => session.call("execute", command, undefined, commandTimeout)
        )
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

    return QmpClient.of(
      new Connection(
        address,
        greeting,
        oob,
        session,
        commandTimeout,
        commandTimeouts.size === 0 ? undefined : commandTimeouts
      ) as unknown as Service
    )
  }).pipe(Effect.annotateLogs({ module: "QmpClient", address: formatAddress(address) }))

/**
 * Ends a connection that `make` returned for a reason of the caller's (`disconnect` says
 * `Disconnected`): pending calls and, unless `endRegistry` is `false`, listeners fail with it.
 * Returns once that is done. A fleet ends an unresponsive connection so.
 *
 * @internal
 */
export const abort = (client: Service<any>, reason: QmpDisconnected): Effect.Effect<void> =>
  Effect.suspend(() => client instanceof Connection ? client.abort(reason) : Effect.void)

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
