/**
 * `GuestAgent` is one connection to the QEMU guest agent (`qemu-ga`), which runs inside a guest and
 * speaks QMP over a virtio-serial port, a socket that QEMU offers on the host (`-chardev
 * socket,path=...,server=on,wait=off -device virtserialport,chardev=...,name=org.qemu.guest_agent.0`),
 * or, for tests, a Unix socket of its own (`qemu-ga --method unix-listen --path ...`).
 *
 * The agent speaks QMP without a greeting, capability negotiation or events, one command at a time,
 * on a channel that may hold stale bytes from a client before (or from a command that timed out). So
 * the connection resynchronises, the way the agent's `guest-sync-delimited` is meant to be used:
 *
 * - at connect, and after every command that timed out, it writes a 0xFF byte (which ends whatever
 *   partial input the agent holds) and `guest-sync-delimited` with a random number;
 * - it drops everything it reads up to the 0xFF that the agent writes before its answer, and every
 *   answer until the one that carries that number (the agent's parse error for our 0xFF among them);
 * - commands then run one at a time, each with its timeout (`commandTimeout`, or per call).
 *
 * An error that the agent sends without an id (it could not parse a command) fails the command that
 * was pending, and the connection resynchronises before the next one, rather than ending.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { GuestAgent } from "effect-qmp"
 *
 * const program = Effect.gen(function*() {
 *   const agent = yield* GuestAgent.GuestAgent
 *   yield* agent.execute("guest-ping")                      // {}
 *   return yield* agent.execute("guest-info")               // { version: "7.2.22", supported_commands: [...] }
 * })
 *
 * program.pipe(Effect.scoped, Effect.provide(GuestAgent.layer({ path: "/run/vm1/qga.sock" })))
 * ```
 *
 * This is what QEMU's Python client does with `await_greeting=False, negotiate=False`, plus the
 * resynchronisation.
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
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { Runstate } from "./internal/runstate.js"
import * as Session from "./internal/session.js"
import * as Transport from "./internal/transport.js"
import type { QmpAddress } from "./QmpAddress.js"
import { addressConfig, format as formatAddress } from "./QmpAddress.js"
import type { ExecuteError, QmpDisconnected } from "./QmpError.js"
import { QmpConnectError, QmpProtocolError } from "./QmpError.js"

/**
 * Options of a connection to the guest agent.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * Time allowed for connecting and the first resynchronisation: 10 seconds by default. An agent
   * that is not running (QEMU's socket is there, the guest's agent is not) fails it with
   * `QmpConnectError` (`NoSync`).
   */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Time allowed for each command's reply, unless the call gives its own: 60 seconds by default. */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** Time allowed for each later resynchronisation: 10 seconds by default. */
  readonly syncTimeout?: Duration.DurationInput | undefined
  /** The longest message accepted, in bytes: 10 MiB by default. */
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
  /** Where this agent is connected. */
  readonly address: QmpAddress
  /**
   * Runs a command (`guest-ping`, `guest-info`, `guest-exec`, ...) and gives its `return` value.
   * Commands run one at a time, in the order they were called. One that times out fails with
   * `QmpTimeoutError` (the agent may still run it), and the connection resynchronises before the next.
   */
  readonly execute: (
    command: string,
    args?: Readonly<Record<string, unknown>>,
    options?: ExecuteOptions
  ) => Effect.Effect<unknown, ExecuteError>
  /** Resynchronises now (0xFF and `guest-sync-delimited`), after the commands already called. */
  readonly sync: Effect.Effect<void, ExecuteError>
  /** Closes the connection; pending calls fail with `QmpDisconnected`. */
  readonly disconnect: Effect.Effect<void>
  /** Waits until the connection has ended, and gives the reason. */
  readonly closed: Effect.Effect<QmpDisconnected>
  /** The state of the connection, read-only, as `QmpClient.runstate`. */
  readonly runstate: {
    readonly get: Effect.Effect<Runstate>
    readonly changes: Stream.Stream<Runstate>
  }
}

/**
 * The `GuestAgent` service.
 *
 * @since 0.1.0
 * @category tags
 */
export class GuestAgent extends Context.Tag("effect-qmp/GuestAgent")<GuestAgent, Service>() {}

const defaultConnectTimeout = Duration.seconds(10)
const defaultCommandTimeout = Duration.seconds(60)
const defaultSyncTimeout = Duration.seconds(10)
const defaultMaxMessageBytes = 10 * 1024 * 1024

/** A number for `guest-sync-delimited`: the agent echoes it, and only that answer ends a resync. */
const syncNumber = (): number => 1 + Math.floor(Math.random() * 0x7ffffffe)

/**
 * After these, what the agent sends next may answer something else: a command that timed out may
 * still be answered, and an agent that could not parse a command may hold part of it.
 */
const leavesOutOfSync = (error: ExecuteError): boolean =>
  error._tag === "QmpTimeoutError" || (error._tag === "QmpProtocolError" && error.reason === "ServerParseError")

/** One resynchronisation: 0xFF, `guest-sync-delimited`, and its number back. */
const resync = (session: Session.Session, timeout: Duration.Duration | undefined): Effect.Effect<void, ExecuteError> =>
  Effect.suspend(() => {
    const id = syncNumber()
    return Effect.flatMap(
      session.call("sync", "guest-sync-delimited", { id }, timeout),
      (answer) =>
        answer === id ? Effect.void : Effect.fail(
          new QmpProtocolError({
            reason: "MalformedReply",
            detail: `guest-sync-delimited: the agent answered ${JSON.stringify(answer)}, not ${id}`
          })
        )
    )
  })

/**
 * Connects to the guest agent at `address` and resynchronises, in the current scope. Closing the
 * scope disconnects.
 *
 * Fails with `QmpConnectError` when the address cannot be reached (`NotFound`, `Refused`), or the
 * agent does not answer `guest-sync-delimited` within `connectTimeout` (`NoSync`). Dies with an
 * `IllegalArgumentException` if `maxMessageBytes` is not a positive integer.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  address: QmpAddress,
  options: Options = {}
): Effect.Effect<Service, QmpConnectError, Scope.Scope> =>
  Effect.gen(function*() {
    const maxMessageBytes = options.maxMessageBytes ?? defaultMaxMessageBytes
    if (!Number.isSafeInteger(maxMessageBytes) || maxMessageBytes <= 0) {
      return yield* Effect.die(
        new Cause.IllegalArgumentException(`maxMessageBytes must be a positive integer, got ${maxMessageBytes}`)
      )
    }
    const connectTimeout = Duration.decode(options.connectTimeout ?? defaultConnectTimeout)
    const commandTimeout = Duration.decode(options.commandTimeout ?? defaultCommandTimeout)
    const syncTimeout = Duration.decode(options.syncTimeout ?? defaultSyncTimeout)

    // As QmpClient: the connection lives in a scope of its own, closed at once if connecting fails.
    const outer = yield* Effect.scope
    const scope = yield* Scope.fork(outer, ExecutionStrategy.sequential)
    let opened = false

    const session = yield* Effect.gen(function*() {
      const socket = yield* Transport.open(address)
      opened = true
      const session = yield* Session.make({ address, socket, events: undefined, maxMessageBytes, mode: "agent" })
      yield* Effect.catchAll(resync(session, undefined), (error) =>
        Effect.fail(
          new QmpConnectError({
            address,
            reason: error._tag === "QmpDisconnected" ? "Closed" : "Unknown",
            cause: error.message
          })
        ))
      if (!(yield* session.establish)) {
        return yield* new QmpConnectError({ address, reason: "Closed", cause: "the connection ended at once" })
      }
      return session
    }).pipe(
      Duration.isFinite(connectTimeout) ?
        Effect.timeoutFail({
          duration: connectTimeout,
          onTimeout: () => new QmpConnectError({ address, reason: opened ? "NoSync" : "Timeout" })
        }) :
        (self) => self,
      Scope.extend(scope),
      Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : Scope.close(scope, exit))
    )
    yield* Effect.logDebug("Connected to the guest agent")

    // One command at a time; `synced` is read and written only under the permit.
    const permit = yield* Effect.makeSemaphore(1)
    let synced = true

    const syncNow = Effect.tap(resync(session, syncTimeout), () =>
      Effect.sync(() => {
        synced = true
      }))

    /** After a timeout (or a command the agent could not parse): resync now, before any next command. */
    const resyncLater = Effect.forkIn(
      Effect.ignore(permit.withPermits(1)(Effect.suspend(() => synced ? Effect.void : syncNow))),
      scope
    )

    const execute = (
      command: string,
      args?: Readonly<Record<string, unknown>>,
      callOptions?: ExecuteOptions
    ): Effect.Effect<unknown, ExecuteError> =>
      permit.withPermits(1)(Effect.gen(function*() {
        if (!synced) yield* syncNow
        const timeout = callOptions?.timeout === undefined ? commandTimeout : Duration.decode(callOptions.timeout)
        const exit = yield* Effect.exit(session.call("execute", command, args, timeout))
        const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
        if (Option.isSome(failure) && leavesOutOfSync(failure.value)) {
          synced = false
          yield* resyncLater
        }
        return yield* exit
      }))

    return GuestAgent.of({
      address,
      execute,
      sync: permit.withPermits(1)(syncNow),
      disconnect: session.disconnect,
      closed: session.state.closed,
      runstate: { get: session.state.get, changes: session.state.changes }
    })
  }).pipe(Effect.annotateLogs({ module: "GuestAgent", address: formatAddress(address) }))

/**
 * A connection to the guest agent as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (address: QmpAddress, options?: Options): Layer.Layer<GuestAgent, QmpConnectError> =>
  Layer.scoped(GuestAgent, make(address, options))

/**
 * A connection to the guest agent as a layer, its address and options read from `Config`: by default
 * the address from `QMP_SOCKET` or `QMP_TCP` (see `QmpAddress.addressConfig`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options & { readonly address: QmpAddress }> = { address: addressConfig }
): Layer.Layer<GuestAgent, QmpConnectError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), ({ address, ...options }) => layer(address, options)))
