/**
 * The `qmp` command-line tool, built with `@effect/cli`: `exec`, `events`, `wait`, `shell` and `demo`.
 *
 * `run(argv)` parses the command line, runs the command, and gives the process's exit code: 0 on
 * success, 1 on any error (a one-line message on stderr, never a stack trace), 2 when `wait` timed
 * out, 3 when the connection ended before `wait` saw its event.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as CliConfig from "@effect/cli/CliConfig"
import * as CliCommand from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as EventFilter from "../EventFilter.js"
import type * as EventListener from "../EventListener.js"
import type { QmpAddress } from "../QmpAddress.js"
import * as QmpClient from "../QmpClient.js"
import * as QmpEvents from "../QmpEvents.js"
import type * as QmpMessage from "../QmpMessage.js"
import * as Demo from "./demo.js"
import * as KeyValue from "./KeyValue.js"
import * as Output from "./output.js"
import * as Shell from "./shell.js"

// -----------------------------------------------------------------------------
// Errors and exit codes
// -----------------------------------------------------------------------------

/**
 * The command line is wrong: a bad value, a missing address, a malformed `key=value`.
 *
 * @since 0.1.0
 * @category errors
 */
export class UsageError extends Schema.TaggedError<UsageError>("effect-qmp/UsageError")("UsageError", {
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/**
 * `qmp wait` saw no matching event in time (exit code 2).
 *
 * @since 0.1.0
 * @category errors
 */
export class WaitTimeout extends Schema.TaggedError<WaitTimeout>("effect-qmp/WaitTimeout")("WaitTimeout", {
  names: Schema.Array(Schema.String),
  timeout: Schema.String
}) {
  override get message(): string {
    return `timed out: no ${this.names.join(" or ")} event within ${this.timeout}`
  }
}

/**
 * The connection ended before `qmp wait` saw a matching event (exit code 3).
 *
 * @since 0.1.0
 * @category errors
 */
export class WaitEnded extends Schema.TaggedError<WaitEnded>("effect-qmp/WaitEnded")("WaitEnded", {
  names: Schema.Array(Schema.String),
  detail: Schema.String
}) {
  override get message(): string {
    return `the connection ended before a ${this.names.join(" or ")} event came (${this.detail})`
  }
}

/**
 * Commands run by a `qmp shell` script failed (exit code 1); their errors are in its output.
 *
 * @since 0.1.0
 * @category errors
 */
export class CommandsFailed extends Schema.TaggedError<CommandsFailed>("effect-qmp/CommandsFailed")("CommandsFailed", {
  count: Schema.Number
}) {
  override get message(): string {
    return `${this.count} command${this.count === 1 ? "" : "s"} failed`
  }
}

/**
 * The exit codes of `qmp`.
 *
 * @since 0.1.0
 * @category constants
 */
export const ExitCode = {
  Ok: 0,
  Error: 1,
  Timeout: 2,
  Disconnected: 3,
  Interrupted: 130
} as const

/**
 * The exit code to use when the program is interrupted (Ctrl-C, SIGTERM): 130, except for `events`,
 * for which Ctrl-C is the normal way to stop (0).
 *
 * @since 0.1.0
 * @category constants
 */
export const interruptedExitCode: Ref.Ref<number> = Ref.unsafeMake<number>(ExitCode.Interrupted)

// -----------------------------------------------------------------------------
// Arguments
// -----------------------------------------------------------------------------

const usage = (detail: string) => new UsageError({ detail })

/**
 * Parses a duration: `500ms`, `30s`, `2m`, `1h`, a bare number of seconds (`1.5`), or Effect's
 * `"30 seconds"`.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseDuration = (text: string): Either.Either<Duration.Duration, string> => {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(text.trim())
  if (match !== null) {
    const n = Number(match[1])
    switch (match[2]) {
      case "ms":
        return Either.right(Duration.millis(n))
      case "m":
        return Either.right(Duration.minutes(n))
      case "h":
        return Either.right(Duration.hours(n))
      default:
        return Either.right(Duration.millis(n * 1000))
    }
  }
  return Option.match(Duration.decodeUnknown(text.trim()), {
    onNone: () => Either.left(`expected a duration such as 500ms, 30s, 2m or 1h, got ${JSON.stringify(text)}`),
    onSome: (duration) =>
      Duration.greaterThanOrEqualTo(duration, Duration.zero)
        ? Either.right(duration)
        : Either.left(`expected a positive duration, got ${JSON.stringify(text)}`)
  })
}

const durationOption = (name: string, text: string): Effect.Effect<Duration.Duration, UsageError> =>
  Either.match(parseDuration(text), {
    onLeft: (message) => Effect.fail(usage(`--${name}: ${message}`)),
    onRight: Effect.succeed
  })

/** Renders a duration as it was probably typed: `30s`, `1.5s`, `500ms`. */
const showDuration = (duration: Duration.Duration): string => {
  const millis = Duration.toMillis(duration)
  return millis < 1000 ? `${millis}ms` : `${millis / 1000}s`
}

/** The `arguments` of a command: `key=value` tokens on top of `--args JSON`. */
const commandArguments = (
  tokens: ReadonlyArray<string>,
  argsJson: Option.Option<string>
): Effect.Effect<QmpMessage.JsonObject | undefined, UsageError> =>
  Effect.gen(function*() {
    const base = Option.isSome(argsJson)
      ? yield* Either.match(KeyValue.parseObject(argsJson.value), {
        onLeft: (message) => Effect.fail(usage(`--args: ${message}`)),
        onRight: Effect.succeed
      })
      : {}
    const args = yield* Either.match(KeyValue.parse(tokens, base), {
      onLeft: (message) => Effect.fail(usage(message)),
      onRight: Effect.succeed
    })
    // No arguments at all: the command is sent without an `arguments` member.
    return Object.keys(args).length === 0 ? undefined : args
  })

/** The filter of `--match key=value ...`: the event's data has all these fields. */
const matchFilter = (
  matches: ReadonlyArray<string>
): Effect.Effect<EventFilter.EventFilter | undefined, UsageError> =>
  matches.length === 0
    ? Effect.succeed(undefined)
    : Either.match(KeyValue.parse(matches), {
      onLeft: (message) => Effect.fail(usage(`--match: ${message}`)),
      onRight: (pattern) => Effect.succeed(EventFilter.data(pattern as EventFilter.DataPattern))
    })

/** A command name that starts with "-" is an option @effect/cli did not know (it passes those on). */
const commandName = (name: string): Effect.Effect<string, UsageError> =>
  name.startsWith("-")
    ? Effect.fail(usage(`unknown option ${JSON.stringify(name.split("=")[0])}`))
    : Effect.succeed(name)

// -----------------------------------------------------------------------------
// The connection
// -----------------------------------------------------------------------------

/** An optional option with a value: `--NAME PSEUDONAME`. */
const optionalText = (name: string, pseudoName: string, description: string) =>
  Options.text(name).pipe(Options.withDescription(description), Options.withPseudoName(pseudoName), Options.optional)

const connectionOptions = {
  socket: optionalText(
    "socket",
    "PATH",
    "The QMP Unix socket of QEMU (-qmp unix:PATH,server=on,wait=off). Default: $QMP_SOCKET."
  ),
  tcp: optionalText("tcp", "HOST:PORT", "The QMP TCP address of QEMU (-qmp tcp:HOST:PORT,server=on,wait=off)."),
  verbose: Options.boolean("verbose").pipe(
    Options.withAlias("v"),
    Options.withDescription("Show the QMP messages sent (->) and received (<-) on stderr.")
  )
}

interface ConnectionOptions {
  readonly socket: Option.Option<string>
  readonly tcp: Option.Option<string>
  readonly verbose: boolean
}

/** Where to connect: `--socket`, `--tcp`, or the environment (`QMP_SOCKET`, `QMP_TCP`). */
const resolveAddress = (options: ConnectionOptions): Effect.Effect<QmpAddress, UsageError> => {
  if (Option.isSome(options.socket) && Option.isSome(options.tcp)) {
    return Effect.fail(usage("give either --socket or --tcp, not both"))
  }
  if (Option.isSome(options.socket)) {
    return options.socket.value === ""
      ? Effect.fail(usage("--socket: expected a path"))
      : Effect.succeed({ path: options.socket.value })
  }
  if (Option.isSome(options.tcp)) {
    return Either.match(QmpClient.parseTcpAddress(options.tcp.value), {
      onLeft: (message) => Effect.fail(usage(`--tcp: ${message}`)),
      onRight: Effect.succeed
    })
  }
  // As QmpClient.addressConfig reads them, with messages for a person.
  return Effect.gen(function*() {
    const socket = yield* Config.option(Config.string("QMP_SOCKET"))
    if (Option.isSome(socket) && socket.value !== "") return { path: socket.value }
    const tcp = yield* Config.option(Config.string("QMP_TCP"))
    if (Option.isSome(tcp) && tcp.value !== "") {
      return yield* Either.match(QmpClient.parseTcpAddress(tcp.value), {
        onLeft: (message) => Effect.fail(usage(`QMP_TCP: ${message}`)),
        onRight: Effect.succeed
      })
    }
    return yield* usage("no QMP server given: use --socket PATH or --tcp HOST:PORT, or set QMP_SOCKET")
  }).pipe(Effect.catchTag("ConfigError", (error) => Effect.fail(usage(String(error)))))
}

/** Debug logs (the wire tap among them) on when `verbose`: decided before the connection is made. */
const withVerbosity = (verbose: boolean) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  verbose ? Logger.withMinimumLogLevel(effect, LogLevel.Debug) : effect

/**
 * Connects to the address the options give and runs `body` with the client. `listen` runs first, on
 * the registry that the connection will feed, before the connection is made: a listener created there
 * hears every event from the first one QEMU sends.
 */
const withConnection = <L, A, E>(
  options: ConnectionOptions,
  clientOptions: QmpClient.Options,
  listen: (events: QmpEvents.Service) => Effect.Effect<L, never, Scope.Scope>,
  body: (qmp: QmpClient.Service, listening: L) => Effect.Effect<A, E>
) =>
  resolveAddress(options).pipe(
    Effect.flatMap((address) =>
      Effect.gen(function*() {
        const events = yield* QmpEvents.make
        const listening = yield* listen(events)
        const qmp = yield* QmpClient.make(address, clientOptions).pipe(
          Effect.provideService(QmpEvents.QmpEvents, events)
        )
        return yield* body(qmp, listening)
      })
    ),
    Effect.scoped,
    withVerbosity(options.verbose)
  )

// -----------------------------------------------------------------------------
// Commands
// -----------------------------------------------------------------------------

const matchOption = Options.text("match").pipe(
  Options.withDescription(
    "Only events whose data has this field (key=value, as for exec; dotted keys reach into objects). Repeatable."
  ),
  Options.withPseudoName("KEY=VALUE"),
  Options.repeated,
  Options.optional,
  Options.map(Option.getOrElse((): Array<string> => []))
)

const exec = CliCommand.make(
  "exec",
  {
    ...connectionOptions,
    args: optionalText(
      "args",
      "JSON",
      "The command's arguments as a JSON object; key=value arguments are added to it."
    ),
    timeout: optionalText("timeout", "DURATION", "How long to wait for the reply (default 60s)."),
    oob: Options.boolean("oob").pipe(
      Options.withDescription("Run the command out of band (exec-oob), for the commands that allow it.")
    ),
    command: Args.text({ name: "COMMAND" }).pipe(Args.withDescription("The QMP command, e.g. query-status.")),
    params: Args.text({ name: "key=value" }).pipe(
      Args.withDescription(
        "Arguments: values are JSON when they parse as JSON, strings otherwise; key:=value is always a string; " +
          "a.b=1 gives {\"a\":{\"b\":1}}."
      ),
      Args.repeated
    )
  },
  (config) =>
    Effect.gen(function*() {
      const name = yield* commandName(config.command)
      const args = yield* commandArguments(config.params, config.args)
      const timeout = Option.isSome(config.timeout) ? yield* durationOption("timeout", config.timeout.value) : undefined
      yield* withConnection(
        config,
        timeout === undefined ? {} : { commandTimeout: timeout },
        () => Effect.void,
        (qmp) =>
          (config.oob ? qmp.executeOob : qmp.execute)(name, args).pipe(
            Effect.flatMap((result) => Output.line(Output.json(result)))
          )
      )
    })
).pipe(CliCommand.withDescription("Run one QMP command and print its return as JSON."))

const formatOption = Options.choice("format", ["json", "pretty"]).pipe(
  Options.withDescription("json: one JSON object per line, as QEMU sent it; pretty: local time, name and data."),
  Options.withDefault("json" as const)
)

const events = CliCommand.make(
  "events",
  {
    ...connectionOptions,
    names: Options.text("name").pipe(
      Options.withDescription("Only events of this name (STOP, JOB_STATUS_CHANGE, ...). Repeatable."),
      Options.withPseudoName("NAME"),
      Options.repeated,
      Options.optional,
      Options.map(Option.getOrElse((): Array<string> => []))
    ),
    match: matchOption,
    count: Options.integer("count").pipe(
      Options.withDescription("Stop after this many events."),
      Options.withPseudoName("N"),
      Options.optional
    ),
    timeout: optionalText("timeout", "DURATION", "Stop after this long (500ms, 30s, 2m, ...). Default: no limit."),
    format: formatOption
  },
  (config) =>
    Effect.gen(function*() {
      const filter = yield* matchFilter(config.match)
      const timeout = Option.isSome(config.timeout) ? yield* durationOption("timeout", config.timeout.value) : undefined
      if (Option.isSome(config.count) && config.count.value < 1) {
        return yield* usage(`--count: expected a positive number, got ${config.count.value}`)
      }
      // Ctrl-C is the normal way to stop watching.
      yield* Ref.set(interruptedExitCode, ExitCode.Ok)
      const format = config.format === "pretty"
        ? Output.prettyEvent
        : (event: QmpMessage.QmpEvent) => JSON.stringify(event)
      yield* withConnection(
        config,
        {},
        (events) => events.listener(config.names.length === 0 ? undefined : config.names, filter),
        (_, listener) => {
          let stream = listener.stream.pipe(Stream.catchTag("QmpDisconnected", () => Stream.empty))
          if (Option.isSome(config.count)) stream = Stream.take(stream, config.count.value)
          if (timeout !== undefined) stream = Stream.interruptWhen(stream, Effect.sleep(timeout))
          return Stream.runForEach(stream, (event) => Output.line(format(event)))
        }
      )
    })
).pipe(CliCommand.withDescription(
  "Print QMP events as they arrive, until Ctrl-C, --count events, --timeout, or the end of the connection."
))

const wait = CliCommand.make(
  "wait",
  {
    ...connectionOptions,
    names: Options.text("name").pipe(
      Options.withDescription("The event to wait for. Repeatable: any of them."),
      Options.withPseudoName("NAME"),
      Options.atLeast(1)
    ),
    match: matchOption,
    timeout: Options.text("timeout").pipe(
      Options.withDescription("Give up after this long (default 30s), with exit code 2."),
      Options.withPseudoName("DURATION"),
      Options.withDefault("30s")
    ),
    command: Args.text({ name: "-- COMMAND key=value" }).pipe(
      Args.withDescription(
        "A command to run once the listener is registered, so that an event QEMU sends before the command's " +
          "return is not missed."
      ),
      Args.repeated
    )
  },
  (config) =>
    Effect.gen(function*() {
      const filter = yield* matchFilter(config.match)
      const timeout = yield* durationOption("timeout", config.timeout)
      const [first, ...tokens] = config.command
      const name = first === undefined ? undefined : yield* commandName(first)
      const args = yield* commandArguments(tokens, Option.none())
      const names = config.names
      // The listener is registered before the connection is made, so before the command is written:
      // the command's events may come before its return.
      const body = (qmp: QmpClient.Service, listener: EventListener.EventListener) =>
        Effect.gen(function*() {
          const event = yield* Effect.gen(function*() {
            if (name !== undefined) {
              // If the command's fate is lost with the connection, the event may still be there.
              yield* qmp.execute(name, args).pipe(Effect.catchTag("QmpDisconnected", () => Effect.void))
            }
            return yield* listener.take
          }).pipe(
            Effect.timeoutFail({
              duration: timeout,
              onTimeout: () => new WaitTimeout({ names, timeout: showDuration(timeout) })
            }),
            Effect.catchTags({
              QmpDisconnected: (error) => new WaitEnded({ names, detail: error.message }),
              ListenerError: (error) => Effect.die(error)
            })
          )
          yield* Output.line(Output.json(event))
        })
      yield* withConnection(config, {}, (events) => events.listener(names, filter), body)
    })
).pipe(CliCommand.withDescription(
  "Wait for one matching event and print it; with -- COMMAND, run that command first (the listener is registered " +
    "before it is sent). Exit code 2 on timeout, 3 if the connection ends."
))

const shell = CliCommand.make(
  "shell",
  {
    ...connectionOptions,
    history: optionalText("history", "FILE", "The history file (default ~/.qmp_history).")
  },
  (config) =>
    withConnection(
      config,
      {},
      (events) => Effect.succeed(events),
      (qmp, events) =>
        Shell.run({ historyFile: Option.getOrUndefined(config.history) }).pipe(
          Effect.provideService(QmpClient.QmpClient, qmp),
          Effect.provideService(QmpEvents.QmpEvents, events),
          Effect.scoped,
          Effect.flatMap((failures) => failures === 0 ? Effect.void : new CommandsFailed({ count: failures }))
        )
    )
).pipe(CliCommand.withDescription(
  "An interactive QMP shell: command key=value ... or raw JSON, Tab completion, history, events as they " +
    "arrive. Reading a script from stdin, it prints one JSON line per command and exits 1 if any failed."
))

const demo = CliCommand.make(
  "demo",
  {
    verbose: connectionOptions.verbose,
    server: Options.choice("server", ["auto", "qemu", "builtin"]).pipe(
      Options.withDescription(
        "auto: a real QEMU when qemu-system-x86_64 is on PATH, else the built-in QmpTestServer; qemu or builtin " +
          "to choose."
      ),
      Options.withDefault("auto" as const)
    )
  },
  (config) => Demo.run({ server: config.server }).pipe(withVerbosity(config.verbose))
).pipe(CliCommand.withDescription("Watch the event system at work on a live QMP connection (what npm start runs)."))

/**
 * The `qmp` command and its subcommands.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = CliCommand.make("qmp").pipe(
  CliCommand.withDescription(
    "Talk to QEMU over QMP: run commands, watch and wait for events. qmp COMMAND --help tells more."
  ),
  CliCommand.withSubcommands([exec, events, wait, shell, demo])
)

// -----------------------------------------------------------------------------
// Running
// -----------------------------------------------------------------------------

// eslint-disable-next-line no-control-regex
const ansi = /\u001b\[[0-9;]*m/g

const stripAnsi = (u: unknown): unknown => typeof u === "string" ? u.replace(ansi, "") : u

/** Renders what @effect/cli found wrong with the command line as one line of plain text. */
const validationMessage = (error: ValidationError.ValidationError): string =>
  Output.oneLine(HelpDoc.toAnsiText(error.error).replace(ansi, ""))

const exitCodeOf = (error: unknown): number => {
  if (typeof error === "object" && error !== null && "_tag" in error) {
    switch (error._tag) {
      case "WaitTimeout":
        return ExitCode.Timeout
      case "WaitEnded":
        return ExitCode.Disconnected
    }
  }
  return ExitCode.Error
}

const messageOf = (error: unknown): string => {
  if (ValidationError.isValidationError(error)) return validationMessage(error)
  if (error instanceof Error) return error.message
  return String(error)
}

/**
 * Runs `qmp` with the command line `argv` (`process.argv`: the first two entries are node and the
 * script) and gives the exit code. Every failure is reported here, as one line on stderr.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (argv: ReadonlyArray<string>, version: string): Effect.Effect<number> => {
  const cli = CliCommand.run(command, { name: "qmp", version, executable: "qmp" })
  return Console.consoleWith((console) =>
    Effect.withConsole(cli(argv), {
      ...console,
      // Help goes to stdout: plain text when piped.
      log: (...args) => console.log(...(Output.stdoutIsTerminal ? args : args.map(stripAnsi))),
      // @effect/cli prints its own error documents with Console.error before failing with them: they
      // are reported below instead, as one line.
      error: () => Effect.void
    })
  ).pipe(
    Effect.as(ExitCode.Ok),
    Effect.catchAll((error) => Effect.as(Output.error(messageOf(error)), exitCodeOf(error))),
    Effect.catchAllDefect((defect) =>
      Effect.as(
        Output.error(`internal error: ${defect instanceof Error ? defect.message : Cause.pretty(Cause.die(defect))}`),
        ExitCode.Error
      )
    ),
    Effect.provide(NodeContext.layer),
    Effect.provide(CliConfig.layer({ showBuiltIns: false })),
    Effect.provide(Logger.replace(Logger.defaultLogger, Output.stderrLogger))
  )
}
