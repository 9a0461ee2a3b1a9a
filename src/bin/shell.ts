/**
 * `qmp shell`: an interactive QMP shell, and a line-by-line one for scripts.
 *
 * On a terminal: a prompt that takes `command key=value ...` (values quoted as in a Unix shell, and
 * typed by QEMU's schema: `node-name=123` is sent as a string) or a raw JSON command; prints the
 * return pretty (a string as text) or QEMU's error in red, below the events its command caused;
 * completes command names, argument names, dotted members, union variants and enum values with
 * Tab; keeps its history in a file; prints events as they arrive above the line being typed.
 * `transaction(` ... `)` sends the lines between as one `transaction`, as qmp-shell does. `quit`
 * asks first; Ctrl-D leaves without quitting QEMU. `--log FILE` appends a transcript of requests
 * and replies.
 *
 * When stdin is not a terminal: one command per line, one compact JSON line per result (the
 * return, or `{"error":{"class":...,"desc":...}}` as QEMU gives it); it goes on after a failure and
 * exits with 1 if any command failed.
 *
 * With `--hmp`, lines go to QEMU's human monitor (`human-monitor-command`), as qmp-shell's `-H`.
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
import { decodeIntrospection } from "../QmpSchema.js"
import type { ConnectionOptions } from "./connection.js"
import { withConnection } from "./connection.js"
import { CommandsFailed, usage } from "./errors.js"
import * as Output from "./output.js"
import * as Complete from "./shellComplete.js"
import { parseArguments, parseLine, tokenize } from "./shellLine.js"
import * as ShellSchema from "./shellSchema.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Where the history is kept: `~/.qmp_history` by default. */
  readonly historyFile?: string | undefined
  /** A transcript of every request and reply, as JSON lines, appended to this file. */
  readonly logFile?: string | undefined
  readonly input?: NodeJS.ReadableStream | undefined
  readonly output?: NodeJS.WritableStream | undefined
  /** A terminal session (prompt, completion, colours), or one result line per input line. */
  readonly interactive?: boolean | undefined
}

/**
 * What the shell talks to: QEMU's monitor (QMP, or HMP through it) or the guest agent.
 *
 * @since 0.1.0
 * @category models
 */
export interface Target {
  /** What the first line says it is connected to. */
  readonly banner: Effect.Effect<string>
  readonly prompt: string
  /** QMP commands (`command key=value ...`), or HMP command lines passed through as they are. */
  readonly language: "qmp" | "hmp"
  readonly execute: (command: string, args?: QmpMessage.JsonObject) => Effect.Effect<unknown, ExecuteError>
  readonly closed: Effect.Effect<QmpDisconnected>
  /** Command names, and the schema of their arguments, for Tab and for typing values. */
  readonly vocabulary: Effect.Effect<Complete.Vocabulary>
  /** Where events come from, to show them as they arrive (the guest agent has none). */
  readonly events: QmpEvents.Service | undefined
  /** The commands that end the VM, which the shell asks about first. */
  readonly quit: ReadonlyArray<string>
}

/**
 * QEMU's monitor as the shell's target.
 *
 * @since 0.1.0
 * @category constructors
 */
export const qmpTarget = (qmp: QmpClient.Service, events: QmpEvents.Service): Target => ({
  banner: Effect.succeed(`${qemuVersion(qmp)} at ${formatAddress(qmp.address)}`),
  prompt: "(QEMU) ",
  language: "qmp",
  execute: (command, args) => qmp.executeUnknown(command, args),
  closed: qmp.closed,
  vocabulary: qmpVocabulary(qmp.executeUnknown),
  events,
  quit: ["quit"]
})

/**
 * QEMU's human monitor (HMP) through QMP's `human-monitor-command`, as qmp-shell's `-H`: lines go
 * to QEMU as they are typed, and its text comes back. Tab completes from HMP's `help` and `info`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const hmpTarget = (qmp: QmpClient.Service, events: QmpEvents.Service): Target => ({
  banner: Effect.succeed(`the human monitor of ${qemuVersion(qmp)} at ${formatAddress(qmp.address)}`),
  prompt: "(HMP) ",
  language: "hmp",
  execute: (command, args) => qmp.executeUnknown(command, args),
  closed: qmp.closed,
  vocabulary: hmpVocabulary(qmp.executeUnknown),
  events,
  quit: ["quit", "q"]
})

const qemuVersion = (qmp: QmpClient.Service) => {
  const { major, micro, minor } = qmp.greeting.QMP.version.qemu
  return `QEMU ${major}.${minor}.${micro}`
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
    language: "qmp",
    execute: (command, args) => agent.execute(command, args),
    closed: agent.closed,
    vocabulary: Effect.map(info, (i) => ({
      commands: (i.supported_commands ?? [])
        .filter((c) => c?.enabled === true && typeof c.name === "string")
        .map((c) => c.name as string)
        .sort(),
      schema: undefined
    })),
    events: undefined,
    quit: []
  }
}

/** Command names from `query-commands`, and the schema from `query-qmp-schema`; what fails stays empty. */
const qmpVocabulary = (execute: QmpClient.Service["executeUnknown"]): Effect.Effect<Complete.Vocabulary> =>
  Effect.gen(function*() {
    const commands = yield* execute("query-commands").pipe(
      Effect.map((list) => (list as ReadonlyArray<{ readonly name: string }>).map((c) => c.name).sort()),
      Effect.orElseSucceed(() => [] as ReadonlyArray<string>)
    )
    const introspection = yield* execute("query-qmp-schema").pipe(
      Effect.map((reply) => Either.getOrUndefined(decodeIntrospection(reply))),
      Effect.orElseSucceed(() => undefined)
    )
    return { commands, schema: introspection === undefined ? undefined : ShellSchema.make(introspection) }
  })

/**
 * HMP's commands, from `help` (`stop|s  -- stop emulation`: the long name) and `info` (`info
 * status  -- ...`), as qmp-shell reads them; `help NAME` for each too.
 */
const hmpVocabulary = (execute: QmpClient.Service["executeUnknown"]): Effect.Effect<Complete.Vocabulary> => {
  const hmp = (line: string) =>
    execute("human-monitor-command", { "command-line": line }).pipe(
      Effect.map((text) => (typeof text === "string" ? text : "").split(/\r?\n/)),
      Effect.orElseSucceed(() => [] as ReadonlyArray<string>)
    )
  return Effect.gen(function*() {
    const phrases = new Set<string>()
    for (const line of yield* hmp("help")) {
      if (line === "" || line.startsWith("[") || line.startsWith("\t") || line.startsWith(" ")) continue
      const first = line.split(/\s+/)[0]
      if (first === "info") continue
      const names = first.split("|")
      const name = names.length > 1 && names[0].length === 1 ? names[1] : names[0]
      phrases.add(name)
      phrases.add(`help ${name}`)
    }
    for (const line of yield* hmp("info")) {
      const name = line.split(/\s+/)[1]
      if (line.startsWith("info ") && name !== undefined) phrases.add(`info ${name}`)
    }
    phrases.add("help info")
    return { commands: [...phrases].sort(), schema: undefined }
  })
}

const red = (text: string) => `\x1b[31m${text}\x1b[0m`
const dim = (text: string) => `\x1b[2m${text}\x1b[0m`

const errorLine = (errorClass: string, desc: string) => JSON.stringify({ error: { class: errorClass, desc } })

/** A reply on a terminal: text as text (HMP's output, `ringbuf-read`), anything else as JSON. */
const replyText = (value: unknown): string | undefined =>
  typeof value === "string"
    ? (value.replaceAll("\r\n", "\n").replace(/\n$/, "") || undefined)
    : Output.json(value, true)

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

/** A request, as the shell sends it. */
interface Request {
  readonly command: string
  readonly arguments: QmpMessage.JsonObject | undefined
}

/**
 * What one line of input asks for: a request to send, a transaction's action kept for later, or a
 * line that is wrong (and why).
 */
type Step =
  | { readonly _tag: "Send"; readonly request: Request }
  | { readonly _tag: "Collect" }
  | { readonly _tag: "Invalid"; readonly reason: string }

/**
 * Reads the lines of a `transaction(` ... `)` block, as qmp-shell does: `transaction(` opens it
 * (an action may follow on the same line), each line in it is one action (`type key=value ...`,
 * its data typed by the schema), and `)` (alone, or ending an action's line) sends them all as one
 * `transaction`.
 */
class Transaction {
  actions: Array<{ readonly type: string; readonly data: QmpMessage.JsonObject }> | undefined = undefined

  get open(): boolean {
    return this.actions !== undefined
  }

  /** The next step for a line of words, inside or at the start of a transaction. */
  step(words: ReadonlyArray<string>, schema: ShellSchema.ArgumentSchema | undefined): Step {
    let rest = words
    if (!this.open) {
      this.actions = []
      rest = words.slice(1)
    }
    const closes = rest.at(-1) === ")"
    if (closes) rest = rest.slice(0, -1)
    if (rest.length > 0) {
      const [type, ...assignments] = rest
      const data = parseArguments(assignments, schema?.transactionActions.get(type), schema)
      if (Either.isLeft(data)) {
        this.actions = undefined
        return { _tag: "Invalid", reason: `${data.left} (the transaction is dropped)` }
      }
      this.actions!.push({ type, data: data.right })
    }
    if (!closes) return { _tag: "Collect" }
    const actions = this.actions!
    this.actions = undefined
    return { _tag: "Send", request: { command: "transaction", arguments: { actions } } }
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
    // A script needs the schema too: it types values (`node-name=123` is a string).
    const words = yield* target.vocabulary
    const transaction = new Transaction()
    const mode = (): Complete.Mode => target.language === "hmp" ? "hmp" : transaction.open ? "action" : "command"
    const promptText = () => transaction.open ? "TRANS> " : target.prompt

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
          completer: interactive ? (line: string) => Complete.complete(words, line, mode()) : undefined
        })
      ),
      (rl) => Effect.sync(() => rl.close())
    )

    // Lines (and the end of the input) in order; Ctrl-C clears the line being typed.
    const lines = yield* Queue.unbounded<string | null>()
    // From the moment a line is entered until its reply is printed, events are printed without
    // the prompt: the reply then lands below them, where its command was typed.
    let busy = false
    rl.on("line", (line) => {
      busy = true
      lines.unsafeOffer(line)
    })
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
        if (!inputEnded && !busy) rl.prompt(true)
      })
    const log = options.logFile === undefined ? undefined : options.logFile
    const record = (message: unknown) =>
      Effect.sync(() => log !== undefined && Fs.appendFileSync(log, JSON.stringify(message) + "\n"))

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

    /** What a line asks for. */
    const stepOf = (line: string): Step => {
      const text = line.trim()
      if (target.language === "hmp") {
        return { _tag: "Send", request: { command: "human-monitor-command", arguments: { "command-line": text } } }
      }
      if (transaction.open || text.startsWith("transaction(")) {
        const tokens = tokenize(text)
        if (Either.isLeft(tokens)) return { _tag: "Invalid", reason: tokens.left }
        if (tokens.right[0] === "transaction(" || transaction.open) return transaction.step(tokens.right, words.schema)
      }
      const parsed = parseLine(text, words.schema)
      return Either.isLeft(parsed)
        ? { _tag: "Invalid", reason: parsed.left }
        : { _tag: "Send", request: { command: parsed.right.command, arguments: parsed.right.arguments } }
    }

    let failures = 0
    let quitted = false
    const prompt = Effect.sync(() => {
      busy = false
      if (interactive && !inputEnded) {
        rl.setPrompt(promptText())
        rl.prompt()
      }
    })
    yield* prompt
    for (;;) {
      // The next line, unless the connection ends first: then there is nothing left to do.
      const next = yield* Effect.raceFirst(
        Effect.map(Queue.take(lines), (line) => ({ _tag: "Line" as const, line })),
        Effect.map(target.closed, (reason) => ({ _tag: "Closed" as const, reason }))
      )
      if (next._tag === "Closed") {
        failures++
        busy = true
        yield* interactive
          ? printAbove(red(next.reason.message))
          : print(errorLine(next.reason._tag, next.reason.message))
        break
      }
      const line = next.line
      if (line === null) break
      if (line.trim() === "" || (target.language === "qmp" && line.trim().startsWith("#"))) {
        yield* prompt
        continue
      }
      if (interactive) Fs.appendFile(historyFile, line.trim() + "\n", () => {})
      const step = stepOf(line)
      if (step._tag === "Invalid") {
        failures++
        yield* print(interactive ? red(`error: ${step.reason}`) : errorLine("InvalidInput", step.reason))
        yield* prompt
        continue
      }
      if (step._tag === "Collect") {
        yield* prompt
        continue
      }
      const { arguments: args, command } = step.request
      const quitting = target.language === "hmp"
        ? target.quit.includes(line.trim())
        : target.quit.includes(command)
      if (quitting && interactive) {
        const answer = yield* ask("Quit QEMU? This ends the virtual machine. [y/N] ")
        if (!/^y(es)?$/i.test(answer.trim())) {
          yield* prompt
          continue
        }
      }
      yield* record(args === undefined ? { execute: command } : { execute: command, arguments: args })
      const result = yield* Effect.either(target.execute(command, args))
      if (Either.isRight(result)) {
        yield* record({ return: result.right })
        if (interactive) {
          const text = replyText(result.right)
          if (text !== undefined) yield* print(text)
        } else {
          yield* print(Output.json(result.right, false))
        }
        if (quitting) {
          quitted = true
          break
        }
      } else {
        failures++
        const error = result.left
        const [errorClass, desc] = error._tag === "QmpExecuteError"
          ? [error.errorClass, error.desc]
          : [error._tag, error.message]
        yield* record({ error: { class: errorClass, desc } })
        yield* print(
          interactive
            ? red(error._tag === "QmpExecuteError" ? `${errorClass}: ${desc}` : desc)
            : errorLine(errorClass, desc)
        )
        if (error._tag === "QmpDisconnected") break
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
  /** A transcript of requests and replies (JSON lines) appended to this file. */
  readonly log: Option.Option<string>
  /** Talk to the guest agent (`qemu-ga`) rather than QEMU's monitor. */
  readonly agent: boolean
  /** Talk to QEMU's human monitor (HMP) through QMP. */
  readonly hmp: boolean
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
    run(target, { historyFile: Option.getOrUndefined(config.history), logFile: Option.getOrUndefined(config.log) })
      .pipe(
        Effect.scoped,
        Effect.flatMap((failures) => failures === 0 ? Effect.void : new CommandsFailed({ count: failures }))
      )
  if (config.agent && config.hmp) return Effect.fail(usage("--hmp and --agent: the guest agent has no human monitor"))
  return config.agent ?
    Effect.flatMap(
      Effect.promise(() => import("./agent.js")),
      (Agent) => Agent.withAgent(config, {}, (agent) => shell(agentTarget(agent)))
    ) :
    withConnection(
      config,
      {},
      (events) => Effect.succeed(events),
      (qmp, events) => shell(config.hmp ? hmpTarget(qmp, events) : qmpTarget(qmp, events))
    )
}
