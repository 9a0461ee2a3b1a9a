/**
 * Where `qmp` connects (`--socket`, `--tcp`, or `QMP_SOCKET` / `QMP_TCP`), and a connection for the
 * length of one command.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { format as formatAddress, parseTcpAddress } from "../QmpAddress.js"
import type { QmpAddress } from "../QmpAddress.js"
import * as QmpClient from "../QmpClient.js"
import * as QmpEvents from "../QmpEvents.js"
import type { UsageError } from "./errors.js"
import { usage } from "./errors.js"

/**
 * The options every command that connects takes.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectionOptions {
  readonly socket: Option.Option<string>
  readonly tcp: Option.Option<QmpAddress>
  /** How long to wait for QEMU to accept and greet (`QmpClient`'s `connectTimeout`). */
  readonly connectTimeout: Option.Option<Duration.Duration>
  readonly verbose: boolean
}

/**
 * Where to connect: `--socket`, `--tcp`, or the environment (`QMP_SOCKET`, `QMP_TCP`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolveAddress = (options: ConnectionOptions): Effect.Effect<QmpAddress, UsageError> => {
  if (Option.isSome(options.socket) && Option.isSome(options.tcp)) {
    return Effect.fail(usage("give either --socket or --tcp, not both"))
  }
  if (Option.isSome(options.socket)) return Effect.succeed({ path: options.socket.value })
  if (Option.isSome(options.tcp)) return Effect.succeed(options.tcp.value)
  // As QmpClient.layerConfig reads them, with messages for a person.
  return Effect.gen(function*() {
    const socket = yield* Config.option(Config.string("QMP_SOCKET"))
    if (Option.isSome(socket) && socket.value !== "") return { path: socket.value }
    const tcp = yield* Config.option(Config.string("QMP_TCP"))
    if (Option.isSome(tcp) && tcp.value !== "") {
      return yield* Either.match(parseTcpAddress(tcp.value), {
        onLeft: (message) => Effect.fail(usage(`QMP_TCP: ${message}`)),
        onRight: Effect.succeed
      })
    }
    return yield* usage("no QMP server given: use --socket PATH or --tcp HOST:PORT, or set QMP_SOCKET")
  }).pipe(Effect.catchTag("ConfigError", (error) => Effect.fail(usage(String(error)))))
}

/**
 * Debug logs (the wire tap among them) on when `verbose`: decided before the connection is made.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withVerbosity = (verbose: boolean) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  verbose ? Logger.withMinimumLogLevel(effect, LogLevel.Debug) : effect

/** The line a terminal shows while a connection waits for QEMU's greeting. */
const notGreeted = (address: QmpAddress, options: QmpClient.Options) =>
  Effect.sync(() => {
    const timeout = Duration.format(Duration.decode(options.connectTimeout ?? QmpClient.defaultConnectTimeout))
    process.stderr.write(
      `qmp: no greeting from ${formatAddress(address)} yet: another client probably holds this socket (QEMU ` +
        `serves one client per socket). Waiting up to ${timeout} in all (--connect-timeout).\n`
    )
  })

/**
 * Connects to the address the options give and runs `body` with the client. `listen` runs first, on
 * the registry that the connection will feed, before the connection is made: a listener created there
 * hears every event from the first one QEMU sends.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withConnection = <L, A, E>(
  options: ConnectionOptions,
  commandOptions: QmpClient.Options,
  listen: (events: QmpEvents.Service) => Effect.Effect<L, never, Scope.Scope>,
  body: (qmp: QmpClient.Service, listening: L) => Effect.Effect<A, E>
) => {
  const clientOptions: QmpClient.Options = Option.match(options.connectTimeout, {
    onNone: () => commandOptions,
    onSome: (connectTimeout) => ({ ...commandOptions, connectTimeout })
  })
  return resolveAddress(options).pipe(
    Effect.flatMap((address) =>
      Effect.gen(function*() {
        const events = yield* QmpEvents.make
        const listening = yield* listen(events)
        // On a terminal, a connection that waits says why after a second, rather than in silence
        // until its timeout: QEMU greets each client at once, unless another one holds the socket.
        const waiting = process.stderr.isTTY === true
          ? yield* Effect.fork(Effect.zipRight(Effect.sleep("1 second"), notGreeted(address, clientOptions)))
          : undefined
        const qmp = yield* QmpClient.make(address, clientOptions).pipe(
          Effect.provideService(QmpEvents.QmpEvents, events),
          Effect.ensuring(waiting === undefined ? Effect.void : Fiber.interrupt(waiting))
        )
        return yield* body(qmp, listening)
      })
    ),
    Effect.scoped,
    withVerbosity(options.verbose)
  )
}
