/**
 * `qmp shell`: an interactive QMP shell, and a line-by-line one for scripts.
 *
 * On a terminal: a prompt that takes `command key=value ...` (the value rules of `qmp exec`) or a
 * raw JSON command, prints the return pretty or QEMU's error in red, completes command names (from
 * `query-commands`) and argument names (from `query-qmp-schema`) with Tab, keeps its history in a
 * file, and prints events as they arrive above the line being typed. `quit` asks first; Ctrl-D
 * leaves without quitting QEMU.
 *
 * When stdin is not a terminal: one command per line, one compact JSON line per result (the
 * return, or `{"error":{"class":...,"desc":...}}` as QEMU gives it); it goes on after a failure and
 * exits with 1 if any command failed.
 *
 * With `--agent`, the same shell talks to the QEMU guest agent (`qemu-ga`): commands complete from
 * `guest-info`, and there are no events to show.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Readline from "node:readline"
import type * as GuestAgent from "../GuestAgent.js"
import { format as formatAddress } from "../QmpAddress.js"
import type * as QmpClient from "../QmpClient.js"
import type { ExecuteError, QmpDisconnected } from "../QmpError.js"
import type * as QmpEvents from "../QmpEvents.js"
import type * as QmpMessage from "../QmpMessage.js"
import type { ConnectionOptions } from "./connection.js"
import { withConnection } from "./connection.js"
import { CommandsFailed } from "./errors.js"
import * as KeyValue from "./KeyValue.js"
import * as Output from "./output.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Where the history is kept: `~/.qmp_history` by default. */
  readonly historyFile?: string | undefined
  readonly input?: NodeJS.ReadableStream | undefined
  readonly output?: NodeJS.WritableStream | undefined
  /** A terminal session (prompt, completion, colours), or one result line per input line. */
  readonly interactive?: boolean | undefined
}

/**
 * A command parsed from one line of input.
 *
 * @since 0.1.0
 * @category models
 */
export interface ParsedCommand {
  readonly command: string
  readonly arguments: QmpMessage.JsonObject | undefined
}

/**
 * Parses a line: a raw JSON command (`{"execute": "stop"}`), or `command key=value ...`.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseLine = (line: string): Either.Either<ParsedCommand, string> => {
  const text = line.trim()
  if (text.startsWith("{")) {
    return Either.flatMap(KeyValue.parseJson(text), (json) => {
      if (typeof json !== "object" || json === null || Array.isArray(json)) {
        return Either.left("a raw command must be a JSON object")
      }
      const object = json as QmpMessage.JsonObject
      const command = object.execute
      if (typeof command !== "string") return Either.left("a raw command needs \"execute\": \"NAME\"")
      const args = object.arguments
      if (args !== undefined && (typeof args !== "object" || args === null || Array.isArray(args))) {
        return Either.left("\"arguments\" must be a JSON object")
      }
      return Either.right({ command, arguments: args as QmpMessage.JsonObject | undefined })
    })
  }
  const [command, ...tokens] = text.split(/\s+/)
  return Either.map(
    KeyValue.parse(tokens),
    (args) => ({ command, arguments: Object.keys(args).length === 0 ? undefined : args })
  )
}

/**
 * What QEMU says it can do: command names and, for each, its argument names.
 *
 * @since 0.1.0
 * @category completion
 */
export interface Vocabulary {
  readonly commands: ReadonlyArray<string>
  readonly argumentsOf: ReadonlyMap<string, ReadonlyArray<string>>
}

const emptyVocabulary: Vocabulary = { commands: [], argumentsOf: new Map() }

interface SchemaEntry {
  readonly name: string
  readonly "meta-type": string
  readonly "arg-type"?: string
  readonly members?: ReadonlyArray<{ readonly name: string }>
}

/**
 * What the shell talks to: QEMU's monitor or the guest agent.
 *
 * @since 0.1.0
 * @category models
 */
export interface Target {
  /** What the first line says it is connected to. */
  readonly banner: Effect.Effect<string>
  readonly prompt: string
  readonly execute: (command: string, args?: QmpMessage.JsonObject) => Effect.Effect<unknown, ExecuteError>
  readonly closed: Effect.Effect<QmpDisconnected>
  /** Command names (and argument names) for Tab. */
  readonly vocabulary: Effect.Effect<Vocabulary>
  /** Where events come from, to show them as they arrive (the guest agent has none). */
  readonly events: QmpEvents.Service | undefined
  /** The command that ends the VM, which the shell asks about first. */
  readonly quit: string | undefined
}

/**
 * QEMU's monitor as the shell's target.
 *
 * @since 0.1.0
 * @category constructors
 */
export const qmpTarget = (qmp: QmpClient.Service, events: QmpEvents.Service): Target => {
  const { major, micro, minor } = qmp.greeting.QMP.version.qemu
  return {
    banner: Effect.succeed(`QEMU ${major}.${minor}.${micro} at ${formatAddress(qmp.address)}`),
    prompt: "(QEMU) ",
    execute: (command, args) => qmp.executeUnknown(command, args),
    closed: qmp.closed,
    vocabulary: vocabulary(qmp.executeUnknown),
    events,
    quit: "quit"
  }
}

/**
 * The guest agent as the shell's target: its commands from `guest-info`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const agentTarget = (agent: GuestAgent.Service): Target => {
  const info = agent.execute("guest-info").pipe(
    Effect.map((info) => info as { readonly version?: string; readonly supported_commands?: ReadonlyArray<any> }),
    Effect.orElseSucceed(() => ({ version: undefined, supported_commands: undefined })),
    Effect.cached,
    Effect.runSync
  )
  return {
    banner: Effect.map(
      info,
      (i) => `the guest agent${i.version === undefined ? "" : ` ${i.version}`} at ${formatAddress(agent.address)}`
    ),
    prompt: "(QGA) ",
    execute: (command, args) => agent.execute(command, args),
    closed: agent.closed,
    vocabulary: Effect.map(info, (i) => ({
      commands: (i.supported_commands ?? [])
        .filter((c) => c?.enabled === true && typeof c.name === "string")
        .map((c) => c.name as string)
        .sort(),
      argumentsOf: new Map()
    })),
    events: undefined,
    quit: undefined
  }
}

/** Reads the vocabulary from `query-commands` and `query-qmp-schema`; what fails stays empty. */
const vocabulary = (execute: QmpClient.Service["executeUnknown"]): Effect.Effect<Vocabulary> =>
  Effect.gen(function*() {
    const commands = yield* execute("query-commands").pipe(
      Effect.map((list) => (list as ReadonlyArray<{ readonly name: string }>).map((c) => c.name).sort()),
      Effect.orElseSucceed(() => [] as ReadonlyArray<string>)
    )
    const schema = yield* execute("query-qmp-schema").pipe(
      Effect.map((entries) => entries as ReadonlyArray<SchemaEntry>),
      Effect.orElseSucceed(() => [] as ReadonlyArray<SchemaEntry>)
    )
    const objects = new Map(schema.filter((e) => e["meta-type"] === "object").map((e) => [e.name, e]))
    const argumentsOf = new Map<string, ReadonlyArray<string>>()
    for (const entry of schema) {
      if (entry["meta-type"] !== "command" || entry["arg-type"] === undefined) continue
      const members = objects.get(entry["arg-type"])?.members ?? []
      argumentsOf.set(entry.name, members.map((m) => m.name).sort())
    }
    return { commands, argumentsOf }
  })

/**
 * Tab completion: the command name first, then its argument names (as `name=`).
 *
 * @since 0.1.0
 * @category completion
 */
export const complete = (words: Vocabulary, line: string): [Array<string>, string] => {
  const tokens = line.split(/\s+/)
  const current = tokens[tokens.length - 1]
  if (tokens.length === 1) {
    const hits = words.commands.filter((c) => c.startsWith(current))
    return [hits.length === 1 ? [`${hits[0]} `] : hits, current]
  }
  const given = new Set(tokens.slice(1, -1).map((t) => t.split(/:?=/)[0]))
  const names = words.argumentsOf.get(tokens[0]) ?? []
  const hits = names.filter((n) => n.startsWith(current) && !given.has(n)).map((n) => `${n}=`)
  return [hits, current]
}

const red = (text: string) => `\x1b[31m${text}\x1b[0m`
const dim = (text: string) => `\x1b[2m${text}\x1b[0m`

const errorLine = (errorClass: string, desc: string) => JSON.stringify({ error: { class: errorClass, desc } })

/** The default history file. */
const defaultHistoryFile = () => Path.join(Os.homedir(), ".qmp_history")
const historySize = 1000

const loadHistory = (file: string): Array<string> => {
  try {
    return Fs.readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "").slice(-historySize).reverse()
  } catch {
    return []
  }
}

/**
 * Runs the shell on `target`, until the input ends (Ctrl-D), `quit` is confirmed, or the connection
 * ends. Gives the number of commands that failed when reading a script (0 on a terminal, where a
 * person saw each result).
 *
 * @since 0.1.0
 * @category constructors
 */
export const run = (target: Target, options: Options = {}): Effect.Effect<number, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { events } = target
    const input = options.input ?? process.stdin
    const output = options.output ?? process.stdout
    const interactive = options.interactive ?? (process.stdin.isTTY === true && process.stdout.isTTY === true)
    const historyFile = options.historyFile ?? defaultHistoryFile()
    const words = interactive ? yield* target.vocabulary : emptyVocabulary

    const rl = yield* Effect.acquireRelease(
      Effect.sync(() =>
        Readline.createInterface({
          input,
          output: interactive ? output : undefined,
          terminal: interactive,
          prompt: target.prompt,
          history: interactive ? loadHistory(historyFile) : [],
          historySize,
          removeHistoryDuplicates: true,
          completer: interactive ? (line: string) => complete(words, line) : undefined
        })
      ),
      (rl) => Effect.sync(() => rl.close())
    )

    // Lines (and the end of the input) in order; Ctrl-C clears the line being typed.
    const lines = yield* Queue.unbounded<string | null>()
    rl.on("line", (line) => lines.unsafeOffer(line))
    // Once the input has ended, readline must not be prompted again (it throws after `close`).
    let inputEnded = false
    rl.on("close", () => {
      inputEnded = true
      lines.unsafeOffer(null)
    })
    rl.on("SIGINT", () => {
      output.write("^C (Ctrl-D leaves the shell; QEMU keeps running)\n")
      rl.write(null, { ctrl: true, name: "u" })
      rl.prompt()
    })
    const print = (text: string) => Effect.sync(() => output.write(text + "\n"))
    // Above the line being typed: clear it, print, then redraw the prompt and what was typed.
    const printAbove = (text: string) =>
      Effect.sync(() => {
        output.write("\r\x1b[K" + text + "\n")
        if (!inputEnded) rl.prompt(true)
      })

    if (interactive) {
      yield* print(
        `Connected to ${yield* target.banner}. Tab completes, Ctrl-D leaves (${
          events === undefined ? "the agent" : "QEMU"
        } keeps running).`
      )
      if (events !== undefined) {
        const listener = yield* events.listener()
        yield* listener.stream.pipe(
          Stream.runForEach((event) => printAbove(dim(Output.prettyEvent(event)))),
          Effect.ignore,
          Effect.forkScoped
        )
      }
    }

    // A question answered by a line, or by the end of the input (Ctrl-D), which answers "no".
    const ask = (question: string) =>
      Effect.async<string>((resume) => {
        const onClose = () => resume(Effect.succeed(""))
        rl.once("close", onClose)
        rl.question(question, (answer) => {
          rl.off("close", onClose)
          resume(Effect.succeed(answer))
        })
      })

    let failures = 0
    let quitted = false
    const prompt = Effect.sync(() => interactive && !inputEnded && rl.prompt())
    yield* prompt
    for (;;) {
      // The next line, unless the connection ends first: then there is nothing left to do.
      const next = yield* Effect.raceFirst(
        Effect.map(Queue.take(lines), (line) => ({ _tag: "Line" as const, line })),
        Effect.map(target.closed, (reason) => ({ _tag: "Closed" as const, reason }))
      )
      if (next._tag === "Closed") {
        failures++
        yield* interactive
          ? printAbove(red(next.reason.message))
          : print(errorLine(next.reason._tag, next.reason.message))
        break
      }
      const line = next.line
      if (line === null) break
      if (line.trim() === "" || line.trim().startsWith("#")) {
        yield* prompt
        continue
      }
      if (interactive) Fs.appendFile(historyFile, line.trim() + "\n", () => {})
      const parsed = parseLine(line)
      if (Either.isLeft(parsed)) {
        failures++
        yield* print(interactive ? red(`error: ${parsed.left}`) : errorLine("InvalidInput", parsed.left))
        yield* prompt
        continue
      }
      const { arguments: args, command } = parsed.right
      if (command === target.quit && interactive) {
        const answer = yield* ask("Quit QEMU? This ends the virtual machine. [y/N] ")
        if (!/^y(es)?$/i.test(answer.trim())) {
          yield* prompt
          continue
        }
      }
      const result = yield* Effect.either(target.execute(command, args))
      if (Either.isRight(result)) {
        yield* print(Output.json(result.right, interactive))
        if (command === target.quit) {
          quitted = true
          break
        }
      } else {
        failures++
        const error = result.left
        if (error._tag === "QmpExecuteError") {
          yield* print(
            interactive ? red(`${error.errorClass}: ${error.desc}`) : errorLine(error.errorClass, error.desc)
          )
        } else {
          yield* print(interactive ? red(error.message) : errorLine(error._tag, error.message))
          if (error._tag === "QmpDisconnected") break
        }
      }
      yield* prompt
    }
    if (interactive && !quitted) output.write("\n")
    // A script's exit status tells whether every command succeeded; a person saw each result.
    return interactive ? 0 : failures
  })

/**
 * The command line of `qmp shell`, parsed.
 *
 * @since 0.1.0
 * @category models
 */
export interface Config extends ConnectionOptions {
  readonly history: Option.Option<string>
  /** Talk to the guest agent (`qemu-ga`) rather than QEMU's monitor. */
  readonly agent: boolean
}

/**
 * Runs `qmp shell` on the connection the command line gives; fails with `CommandsFailed` when
 * commands of a script failed.
 *
 * @since 0.1.0
 * @category running
 */
export const command = (config: Config) => {
  const shell = (target: Target) =>
    run(target, { historyFile: Option.getOrUndefined(config.history) }).pipe(
      Effect.scoped,
      Effect.flatMap((failures) => failures === 0 ? Effect.void : new CommandsFailed({ count: failures }))
    )
  return config.agent ?
    Effect.flatMap(
      Effect.promise(() => import("./agent.js")),
      (Agent) => Agent.withAgent(config, {}, (agent) => shell(agentTarget(agent)))
    ) :
    withConnection(config, {}, (events) => Effect.succeed(events), (qmp, events) => shell(qmpTarget(qmp, events)))
}
