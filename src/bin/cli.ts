/**
 * The full command line of the `qmp` tool, built with `@effect/cli`: `exec`, `events`, `wait`, `shell`,
 * `demo`, `codegen`, `schema check`, `job run` and `job watch`, with help, and every error that the
 * command line can have.
 *
 * `run(argv)` parses the command line, runs the command, and gives the process's exit code: 0 on
 * success, 1 on any error (a one-line message on stderr, never a stack trace), 2 when `wait` timed
 * out, 3 when the connection ended before `wait` saw its event. Each command's code is loaded when
 * that command runs. The plain command lines of `exec`, `events` and `wait` do not come here: the
 * `qmp` executable runs them without `@effect/cli` (see `argv.ts`).
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
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Codegen from "./codegen.js"
import type * as Demo from "./demo.js"
import { toExitCode } from "./errors.js"
import type * as Events from "./events.js"
import type * as Exec from "./exec.js"
import type * as Job from "./job.js"
import * as Output from "./output.js"
import type * as Schema from "./schema.js"
import type * as Shell from "./shell.js"
import type * as Wait from "./wait.js"

export {
  /**
   * @since 0.1.0
   * @category parsing
   */
  parseDuration
} from "./arguments.js"

/**
 * What each command does with its parsed command line.
 *
 * @since 0.1.0
 * @category models
 */
export interface Handlers {
  readonly exec: (config: Exec.Config) => Effect.Effect<void, unknown>
  readonly events: (config: Events.Config) => Effect.Effect<void, unknown>
  readonly wait: (config: Wait.Config) => Effect.Effect<void, unknown>
  readonly shell: (config: Shell.Config) => Effect.Effect<void, unknown>
  readonly demo: (config: Demo.Config) => Effect.Effect<void, unknown>
  readonly codegen: (config: Codegen.Config) => Effect.Effect<void, unknown>
  readonly schemaCheck: (config: Schema.Config) => Effect.Effect<void, unknown>
  readonly jobRun: (config: Job.RunConfig) => Effect.Effect<void, unknown>
  readonly jobWatch: (config: Job.WatchConfig) => Effect.Effect<void, unknown>
}

/**
 * The commands of `qmp`, each loading its module when it runs.
 *
 * @since 0.1.0
 * @category constructors
 */
export const handlers: Handlers = {
  exec: (config) => Effect.flatMap(Effect.promise(() => import("./exec.js")), (Exec) => Exec.run(config)),
  events: (config) => Effect.flatMap(Effect.promise(() => import("./events.js")), (Events) => Events.run(config)),
  wait: (config) => Effect.flatMap(Effect.promise(() => import("./wait.js")), (Wait) => Wait.run(config)),
  shell: (config) => Effect.flatMap(Effect.promise(() => import("./shell.js")), (Shell) => Shell.command(config)),
  demo: (config) => Effect.flatMap(Effect.promise(() => import("./demo.js")), (Demo) => Demo.command(config)),
  codegen: (config) => Effect.flatMap(Effect.promise(() => import("./codegen.js")), (Codegen) => Codegen.run(config)),
  schemaCheck: (config) => Effect.flatMap(Effect.promise(() => import("./schema.js")), (Schema) => Schema.run(config)),
  jobRun: (config) => Effect.flatMap(Effect.promise(() => import("./job.js")), (Job) => Job.run(config)),
  jobWatch: (config) => Effect.flatMap(Effect.promise(() => import("./job.js")), (Job) => Job.watch(config))
}

// -----------------------------------------------------------------------------
// Options
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

const agentOption = Options.boolean("agent").pipe(
  Options.withDescription(
    "Talk to the QEMU guest agent (qemu-ga) at the socket: no greeting, resynchronised with guest-sync-delimited."
  )
)

const matchOption = Options.text("match").pipe(
  Options.withDescription(
    "Only events whose data has this field (key=value, as for exec; dotted keys reach into objects). Repeatable."
  ),
  Options.withPseudoName("KEY=VALUE"),
  Options.repeated,
  Options.optional,
  Options.map(Option.getOrElse((): Array<string> => []))
)

const formatOption = Options.choice("format", ["json", "pretty"]).pipe(
  Options.withDescription("json: one JSON object per line, as QEMU sent it; pretty: local time, name and data."),
  Options.withDefault("json" as const)
)

// -----------------------------------------------------------------------------
// Commands
// -----------------------------------------------------------------------------

/**
 * The `qmp` command and its subcommands, running `handlers`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCommand = (handlers: Handlers) => {
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
      agent: agentOption,
      command: Args.text({ name: "COMMAND" }).pipe(Args.withDescription("The QMP command, e.g. query-status.")),
      params: Args.text({ name: "key=value" }).pipe(
        Args.withDescription(
          "Arguments: values are JSON when they parse as JSON, strings otherwise; key:=value is always a string; " +
            "a.b=1 gives {\"a\":{\"b\":1}}."
        ),
        Args.repeated
      )
    },
    handlers.exec
  ).pipe(CliCommand.withDescription("Run one QMP command and print its return as JSON."))

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
    handlers.events
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
    handlers.wait
  ).pipe(CliCommand.withDescription(
    "Wait for one matching event and print it; with -- COMMAND, run that command first (the listener is " +
      "registered before it is sent). Exit code 2 on timeout, 3 if the connection ends."
  ))

  const shell = CliCommand.make(
    "shell",
    {
      ...connectionOptions,
      history: optionalText("history", "FILE", "The history file (default ~/.qmp_history)."),
      log: optionalText("log", "FILE", "Append a transcript of every request and reply (JSON lines) to FILE."),
      agent: agentOption,
      hmp: Options.boolean("hmp").pipe(
        Options.withDescription("Talk to QEMU's human monitor (HMP) through QMP, as qmp-shell -H does.")
      )
    },
    handlers.shell
  ).pipe(CliCommand.withDescription(
    "An interactive QMP shell: command key=value ... (quotes as in a shell, values typed by QEMU's schema) or " +
      "raw JSON, transaction( ... ), Tab completion of commands, members and enum values, history, events as " +
      "they arrive. Reading a script from stdin, it prints one JSON line per command and exits 1 if any failed."
  ))

  const demo = CliCommand.make(
    "demo",
    {
      verbose: connectionOptions.verbose,
      server: Options.choice("server", ["auto", "qemu", "builtin"]).pipe(
        Options.withDescription(
          "auto: a real QEMU when qemu-system-x86_64 is on PATH, else the built-in QmpTestServer; qemu or " +
            "builtin to choose."
        ),
        Options.withDefault("auto" as const)
      )
    },
    handlers.demo
  ).pipe(CliCommand.withDescription(
    "Watch the event system at work on a live QMP connection (what npm start runs)."
  ))

  const codegen = CliCommand.make(
    "codegen",
    {
      ...connectionOptions,
      out: Options.text("out").pipe(
        Options.withDescription("The directory to write the module into (types.ts, schemas.ts, index.ts, ...)."),
        Options.withPseudoName("DIR")
      ),
      from: optionalText("from", "FILE", "A saved query-qmp-schema reply, instead of asking a QEMU."),
      qemu: optionalText("qemu", "VERSION", "The QEMU version to record (default: the QEMU's query-version)."),
      runtime: Options.text("runtime").pipe(
        Options.withDescription("Where the generated code imports QmpSchema from."),
        Options.withPseudoName("MODULE"),
        Options.withDefault("effect-qmp/QmpSchema")
      )
    },
    handlers.codegen
  ).pipe(CliCommand.withDescription(
    "Generate TypeScript types and Effect Schemas of every command, event and type of your QEMU, from its " +
      "query-qmp-schema, for QmpClient.typed and QmpEvents.typed."
  ))

  const schemaCheck = CliCommand.make(
    "check",
    {
      ...connectionOptions,
      module: optionalText("module", "FILE", "A generated module's index.js (default: QEMU 7.2's, which is built in)."),
      from: optionalText("from", "FILE", "A saved query-qmp-schema reply to compare with, instead of a module.")
    },
    handlers.schemaCheck
  ).pipe(CliCommand.withDescription(
    "Compare the QEMU's query-qmp-schema with a generated module (or a saved reply): commands and events missing or new, members " +
      "added, removed or retyped, enum values added. Exit code 1 when typed calls could fail on the differences."
  ))

  const schema = CliCommand.make("schema").pipe(
    CliCommand.withDescription("QEMU's QMP schema: qmp schema check."),
    CliCommand.withSubcommands([schemaCheck])
  )

  const jobRun = CliCommand.make(
    "run",
    {
      ...connectionOptions,
      args: optionalText(
        "args",
        "JSON",
        "The command's arguments as a JSON object; key=value arguments are added to it."
      ),
      command: Args.text({ name: "COMMAND" }).pipe(
        Args.withDescription("The command that starts the job: blockdev-backup, blockdev-mirror, blockdev-create, ...")
      ),
      params: Args.text({ name: "key=value" }).pipe(
        Args.withDescription("Its arguments, as for exec; a missing job-id is filled in (job- and six characters)."),
        Args.repeated
      )
    },
    handlers.jobRun
  ).pipe(CliCommand.withDescription(
    "Start a job and follow it to its end with a progress bar, finalizing, completing (a mirror at ready) and " +
      "dismissing it as it needs. Exit code 0 when it concluded, 1 with QEMU's error when it failed. Ctrl-C " +
      "cancels the job."
  ))

  const jobWatch = CliCommand.make(
    "watch",
    {
      ...connectionOptions,
      id: Args.text({ name: "ID" }).pipe(Args.withDescription("The job's id (query-jobs lists them)."))
    },
    handlers.jobWatch
  ).pipe(CliCommand.withDescription(
    "Draw a job's progress bar until it ends, without touching the job. Exit code 0 when it concluded, 1 with " +
      "QEMU's error when it failed."
  ))

  const job = CliCommand.make("job").pipe(
    CliCommand.withDescription("QEMU's jobs (block jobs, blockdev-create, ...): qmp job run, qmp job watch."),
    CliCommand.withSubcommands([jobRun, jobWatch])
  )

  return CliCommand.make("qmp").pipe(
    CliCommand.withDescription(
      "Talk to QEMU over QMP: run commands, watch and wait for events. qmp COMMAND --help tells more."
    ),
    CliCommand.withSubcommands([exec, events, wait, shell, demo, codegen, schema, job])
  )
}

/**
 * The `qmp` command and its subcommands.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = makeCommand(handlers)

// -----------------------------------------------------------------------------
// Running
// -----------------------------------------------------------------------------

// eslint-disable-next-line no-control-regex
const ansi = /\u001b\[[0-9;]*m/g

const stripAnsi = (u: unknown): unknown => typeof u === "string" ? u.replace(ansi, "") : u

/** Renders what @effect/cli found wrong with the command line as one line of plain text. */
const validationMessage = (error: ValidationError.ValidationError): string =>
  Output.oneLine(HelpDoc.toAnsiText(error.error).replace(ansi, ""))

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
  return toExitCode(
    Console.consoleWith((console) =>
      Effect.withConsole(cli(argv), {
        ...console,
        // Help goes to stdout: plain text when piped.
        log: (...args) => console.log(...(Output.stdoutIsTerminal ? args : args.map(stripAnsi))),
        // @effect/cli prints its own error documents with Console.error before failing with them: they
        // are reported by `toExitCode` instead, as one line.
        error: () => Effect.void
      })
    ),
    messageOf
  ).pipe(
    Effect.provide(NodeContext.layer),
    Effect.provide(CliConfig.layer({ showBuiltIns: false }))
  )
}
