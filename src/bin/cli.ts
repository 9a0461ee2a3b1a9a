/**
 * The full command line of the `qmp` tool, built with `@effect/cli` from one file per command in
 * `cli/` (`exec`, `events`, `wait`, `shell`, `job run`, `job watch`, `demo`, `codegen`, `schema
 * check`): help (`cli/help.ts`), and every error that the command line can have, in one wording.
 *
 * `run(argv)` parses the command line, runs the command, and gives the process's exit code: 0 on
 * success, 1 on any error (a one-line message on stderr, never a stack trace), 2 when `wait` timed
 * out, 3 when the connection ended before `wait` saw its event. Each command's code is loaded when
 * that command runs. The plain command lines of `exec`, `events` and `wait` do not come here: the
 * `qmp` executable runs them without `@effect/cli` (see `argv.ts`).
 *
 * @since 0.1.0
 */
import * as CliConfig from "@effect/cli/CliConfig"
import * as CliCommand from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as CodegenCli from "./cli/codegen.js"
import * as DemoCli from "./cli/demo.js"
import * as EventsCli from "./cli/events.js"
import * as ExecCli from "./cli/exec.js"
import * as Help from "./cli/help.js"
import * as JobCli from "./cli/job.js"
import * as SchemaCli from "./cli/schema.js"
import * as ShellCli from "./cli/shell.js"
import * as WaitCli from "./cli/wait.js"
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
// Commands
// -----------------------------------------------------------------------------

const rootDescription = "Talk to QEMU over QMP: run commands, watch and wait for events, follow jobs, or open a shell."

const jobDescription = "QEMU's jobs (block jobs, blockdev-create, ...), followed to their end with a progress bar."

const schemaDescription = "QEMU's QMP schema, against the typed modules."

const rootExamples: Help.Examples = [
  [
    "qmp exec -s /tmp/qmp.sock query-status",
    "Run one command on the QEMU started with -qmp unix:/tmp/qmp.sock,server=on,wait=off."
  ],
  ["qmp events --format pretty", "Watch events as they come (QMP_SOCKET gives the socket)."],
  ["qmp shell", "An interactive shell, with Tab completion from QEMU's own schema."]
]

/**
 * Every command of `qmp` as help shows it, by its words after `qmp` (`""` for `qmp` itself).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeEntries = (handlers: Handlers): ReadonlyMap<string, Help.Entry> => {
  const jobRun = JobCli.makeRun(handlers.jobRun)
  const jobWatch = JobCli.makeWatch(handlers.jobWatch)
  const job = CliCommand.make("job").pipe(
    CliCommand.withDescription(jobDescription),
    CliCommand.withSubcommands([jobRun, jobWatch])
  )
  const schemaCheck = SchemaCli.makeCheck(handlers.schemaCheck)
  const schema = CliCommand.make("schema").pipe(
    CliCommand.withDescription(schemaDescription),
    CliCommand.withSubcommands([schemaCheck])
  )
  const commands: ReadonlyArray<Help.Entry> = [
    {
      path: ["exec"],
      command: ExecCli.make(handlers.exec),
      description: ExecCli.description,
      examples: ExecCli.examples
    },
    {
      path: ["events"],
      command: EventsCli.make(handlers.events),
      description: EventsCli.description,
      examples: EventsCli.examples
    },
    {
      path: ["wait"],
      command: WaitCli.make(handlers.wait),
      description: WaitCli.description,
      examples: WaitCli.examples
    },
    {
      path: ["shell"],
      command: ShellCli.make(handlers.shell),
      description: ShellCli.description,
      examples: ShellCli.examples
    },
    {
      path: ["job"],
      command: job,
      description: jobDescription,
      examples: [...JobCli.runExamples.slice(0, 1), ...JobCli.watchExamples.slice(0, 1)]
    },
    {
      path: ["demo"],
      command: DemoCli.make(handlers.demo),
      description: DemoCli.description,
      examples: DemoCli.examples
    },
    {
      path: ["codegen"],
      command: CodegenCli.make(handlers.codegen),
      description: CodegenCli.description,
      examples: CodegenCli.examples
    },
    { path: ["schema"], command: schema, description: schemaDescription, examples: SchemaCli.examples.slice(0, 1) }
  ]
  const root = CliCommand.make("qmp").pipe(
    CliCommand.withDescription(rootDescription),
    CliCommand.withSubcommands(
      commands.map((entry) => entry.command) as unknown as [Help.Entry["command"], ...Array<Help.Entry["command"]>]
    )
  )
  const all: ReadonlyArray<Help.Entry> = [
    { path: [], command: root, description: rootDescription, examples: rootExamples },
    ...commands,
    { path: ["job", "run"], command: jobRun, description: JobCli.runDescription, examples: JobCli.runExamples },
    { path: ["job", "watch"], command: jobWatch, description: JobCli.watchDescription, examples: JobCli.watchExamples },
    {
      path: ["schema", "check"],
      command: schemaCheck,
      description: SchemaCli.description,
      examples: SchemaCli.examples
    }
  ]
  return new Map(all.map((entry) => [entry.path.join(" "), entry]))
}

/** The commands right under `entry`: `job run` and `job watch` under `job`. */
const subcommandsOf = (entries: ReadonlyMap<string, Help.Entry>, entry: Help.Entry): Array<Help.Entry> =>
  [...entries.values()].filter((other) =>
    other.path.length === entry.path.length + 1 && entry.path.every((word, i) => other.path[i] === word)
  )

/** The `qmp` command, its subcommands' types erased: help and `run` take it as a whole. */
type Qmp = CliCommand.Command<"qmp", never, unknown, unknown>

/**
 * The `qmp` command and its subcommands, running `handlers`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCommand = (handlers: Handlers): Qmp => makeEntries(handlers).get("")!.command as unknown as Qmp

// -----------------------------------------------------------------------------
// Running
// -----------------------------------------------------------------------------

/** Built-in options (--completions, --wizard, ...) stay out of the help. */
const cliConfig: Partial<CliConfig.CliConfig> = { showBuiltIns: false }

// eslint-disable-next-line no-control-regex
const ansi = /\u001b\[[0-9;]*m/g

const stripAnsi = (u: unknown): unknown => typeof u === "string" ? u.replace(ansi, "") : u

/**
 * The command a command line names (`qmp job run ...` names `job run`), as far as its first words
 * name one; `qmp` itself otherwise.
 */
const entryOf = (entries: ReadonlyMap<string, Help.Entry>, tokens: ReadonlyArray<string>): Help.Entry => {
  let path: Array<string> = []
  for (const token of tokens) {
    if (token.startsWith("-")) continue
    if (!entries.has([...path, token].join(" "))) break
    path = [...path, token]
  }
  return entries.get(path.join(" "))!
}

/** The words before `--`, where `--help` means help. */
const beforeDashes = (tokens: ReadonlyArray<string>): ReadonlyArray<string> => {
  const end = tokens.indexOf("--")
  return end === -1 ? tokens : tokens.slice(0, end)
}

/** `qmp --help`, `qmp job run -h`, or `qmp` alone. */
const wantsHelp = (tokens: ReadonlyArray<string>): boolean =>
  tokens.length === 0 || beforeDashes(tokens).some((token) => token === "--help" || token === "-h")

/**
 * What `@effect/cli` found wrong with the command line, in the words the rest of `qmp` uses:
 * `unknown option "--x"`, `unexpected argument "x"`, `missing option --x`, `--NAME: expected ..., got
 * "..."` (the options' own parsers say that one).
 */
const validationMessage = (error: ValidationError.ValidationError, tokens: ReadonlyArray<string>): string => {
  const text = Output.oneLine(HelpDoc.toAnsiText(error.error).replace(ansi, "")).trim()
  const unknown = /^Received unknown argument: '(.*)'$/s.exec(text)
  if (unknown !== null) {
    return unknown[1].startsWith("-") ?
      `unknown option ${JSON.stringify(unknown[1].split("=")[0])}` :
      `unexpected argument ${JSON.stringify(unknown[1])}`
  }
  const missingOption = /^Expected (?:to find|at least 1 value\(s\) for) option: '(.*)'$/.exec(text)
  if (missingOption !== null) return `missing option ${missingOption[1]}`
  const missingArgument = /^Missing argument <(.*)>$/.exec(text)
  if (missingArgument !== null) return `missing argument ${missingArgument[1]}`
  const subcommand = /^Invalid subcommand for (.*) - use one of (.*)$/.exec(text)
  if (subcommand !== null) {
    const given = tokens.find((token) => !token.startsWith("-"))
    return `unknown command ${JSON.stringify(given ?? "")}: use one of ${subcommand[2].replace(/'/g, "")}`
  }
  return text
}

const messageOf = (entry: Help.Entry, program: string, tokens: ReadonlyArray<string>) => (error: unknown): string => {
  const message = ValidationError.isValidationError(error)
    ? validationMessage(error, tokens)
    : error instanceof Error
    ? error.message
    : String(error)
  // The command line is wrong where the command's help can tell what is right.
  return /^(unknown option|unexpected argument|missing (option|argument)) /.test(message)
    ? `${message} (${[program, ...entry.path, "--help"].join(" ")} lists what it takes)`
    : message
}

/**
 * Runs `qmp` with the command line `argv` (`process.argv`: the first two entries are node and the
 * script) and gives the exit code. Every failure is reported here, as one line on stderr.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (argv: ReadonlyArray<string>, version: string): Effect.Effect<number> => {
  const entries = makeEntries(handlers)
  const tokens = argv.slice(2)
  const entry = entryOf(entries, beforeDashes(tokens))
  const program = Output.programName()
  const print = (text: string) => Console.log(Output.stdoutIsTerminal ? text : text.replace(ansi, ""))
  if (wantsHelp(tokens)) {
    const help = Help.render(entry, subcommandsOf(entries, entry), program, CliConfig.make(cliConfig))
    // The version heads the help of qmp itself.
    const doc = entry.path.length === 0 ? HelpDoc.sequence(HelpDoc.p(`qmp ${version}`), help) : help
    return Effect.as(print(HelpDoc.toAnsiText(doc)), 0)
  }
  const qmp = entries.get("")!.command as unknown as Qmp
  const cli = CliCommand.run(qmp, { name: "qmp", version, executable: "qmp" })
  return toExitCode(
    Console.consoleWith((console) =>
      Effect.withConsole(cli(argv), {
        ...console,
        // What @effect/cli prints (--version) goes to stdout: plain text when piped.
        log: (...args) => console.log(...(Output.stdoutIsTerminal ? args : args.map(stripAnsi))),
        // @effect/cli prints its own error documents with Console.error before failing with them: they
        // are reported by `toExitCode` instead, as one line.
        error: () => Effect.void
      })
    ),
    messageOf(entry, program, tokens)
  ).pipe(
    Effect.provide(NodeContext.layer),
    Effect.provide(CliConfig.layer(cliConfig))
  )
}
