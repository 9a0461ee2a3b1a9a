/**
 * `human-monitor-command` of `QmpTestServer`: a few of QEMU's HMP commands, parsed and answered as
 * QEMU 7.2 answers them (the text of each, its errors, `\r\n` line ends), and running the same VM
 * operations as their QMP counterparts (`stop` sends STOP before its empty return, as over QMP).
 *
 * - A command line is a command name (up to the first blank), then its arguments; blanks around them
 *   do not matter; names are case-sensitive.
 * - A name it does not know: "unknown command: 'NAME'" (`info NAME` for an unknown `info` topic).
 * - Arguments to a command that takes none: "NAME: extraneous characters at the end of line", and a
 *   hint to ask `help`.
 * - `help` lists only the commands here (QEMU lists all of its own); `help NAME` and `info` are as QEMU's.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type { CommandError, RunState } from "../../testing/QmpTestServer.js"
import { fail, params } from "./params.js"

/** What HMP commands do to the VM. @internal */
export interface Vm {
  readonly status: Effect.Effect<RunState>
  readonly version: string
  readonly stop: Effect.Effect<void>
  readonly cont: Effect.Effect<void>
  readonly reset: Effect.Effect<void>
  readonly powerdown: Effect.Effect<void>
  /** Quits: `reply` writes the command's return before QEMU exits. */
  readonly quit: (reply: Effect.Effect<void>) => Effect.Effect<void>
}

interface Command {
  /** The name and its aliases, as `help` shows them: `stop|s`. */
  readonly names: string
  readonly args: string
  readonly help: string
  /** The output for the rest of the line (arguments), or `undefined` to take none. */
  readonly run: (vm: Vm, reply: (text: string) => Effect.Effect<void>, rest: string) => Effect.Effect<string>
}

const blank = /[ \t\n\v\f\r]/

/** The next word of `line` from `at`, after blanks, and where it ends. */
const word = (line: string, at: number): { readonly word: string; readonly end: number } => {
  let start = at
  while (start < line.length && blank.test(line[start])) start++
  let end = start
  while (end < line.length && !blank.test(line[end])) end++
  return { word: line.slice(start, end), end }
}

const lineOf = (command: Command, prefix = ""): string =>
  `${prefix}${command.names} ${command.args} -- ${command.help}\n`

const named = (commands: ReadonlyArray<Command>, name: string): Command | undefined =>
  commands.find((command) => command.names.split("|").includes(name))

const extraneous = (names: string, typed: string): string =>
  `${names}: extraneous characters at the end of line\nTry "help ${typed}" for more information\n`

/** A command without arguments: its effect, then no output. */
const simple = (names: string, help: string, effect: (vm: Vm) => Effect.Effect<void>): Command => ({
  names,
  args: "",
  help,
  run: (vm) => Effect.as(effect(vm), "")
})

const infoCommands: ReadonlyArray<Command> = [
  {
    names: "status",
    args: "",
    help: "show the current VM status (running|paused)",
    run: (vm) =>
      Effect.map(
        vm.status,
        (status) =>
          `VM status: ${status === "running" ? "running" : status === "paused" ? "paused" : `paused (${status})`}\n`
      )
  },
  {
    names: "version",
    args: "",
    help: "show the version of QEMU",
    run: (vm) => Effect.succeed(`${vm.version}\n`)
  }
]

const helpOf = (commands: ReadonlyArray<Command>, words: ReadonlyArray<string>): string => {
  if (words.length === 0) return commands.map((command) => lineOf(command)).join("")
  const command = named(commands, words[0])
  if (command === undefined) return `unknown command: '${words[0]}'\n`
  if (command.names === "info") {
    if (words.length === 1) return infoCommands.map((info) => lineOf(info, "info ")).join("")
    const info = named(infoCommands, words[1])
    return info === undefined ? `unknown command: 'info ${words[1]}'\n` : lineOf(info, "info ")
  }
  return lineOf(command)
}

const commands: ReadonlyArray<Command> = [
  simple("cont|c", "resume emulation", (vm) => vm.cont),
  {
    names: "help|?",
    args: "[cmd]",
    help: "show the help",
    run: (_, __, rest) => Effect.succeed(helpOf(commands, rest.split(blank).filter((w) => w !== "")))
  },
  {
    names: "info",
    args: "[subcommand]",
    help: "show various information about the system state",
    run: (vm, _, rest) => {
      const { end, word: topic } = word(rest, 0)
      if (topic === "") return Effect.succeed(helpOf(commands, ["info"]))
      const info = named(infoCommands, topic)
      if (info === undefined) return Effect.succeed(`unknown command: 'info ${topic}'\n`)
      if (word(rest, end).word !== "") return Effect.succeed(extraneous(info.names, `info ${topic}`))
      return info.run(vm, () => Effect.void, "")
    }
  },
  {
    names: "quit|q",
    args: "",
    help: "quit the emulator",
    run: (vm, reply) => Effect.as(vm.quit(reply("")), "")
  },
  simple("stop|s", "stop emulation", (vm) => vm.stop),
  simple("system_powerdown", "send system power down event", (vm) => vm.powerdown),
  simple("system_reset", "reset the system", (vm) => vm.reset)
]

/**
 * Runs one HMP command line and gives its output, with `\r\n` line ends. `reply` writes the return
 * at once (for `quit`, which must answer before QEMU exits).
 *
 * @internal
 */
export const run = (
  vm: Vm,
  line: string,
  reply: (text: string) => Effect.Effect<void>
): Effect.Effect<string> => {
  const { end, word: name } = word(line, 0)
  if (name === "") return Effect.succeed("")
  const command = named(commands, name)
  if (command === undefined) return Effect.succeed(`unknown command: '${name}'\r\n`)
  const rest = line.slice(end)
  const takesArguments = command.args !== ""
  const output = !takesArguments && word(rest, 0).word !== "" ?
    Effect.succeed(extraneous(command.names, name)) :
    command.run(vm, reply, rest)
  return Effect.map(output, (text) => text.replaceAll("\n", "\r\n"))
}

/** `human-monitor-command`'s arguments, checked as QEMU checks them (a `-machine none` VM has no CPU). @internal */
export const check = (args: Readonly<Record<string, unknown>>): Effect.Effect<string, CommandError> =>
  Effect.gen(function*() {
    yield* params(args, { "command-line": "string", "cpu-index": "int?" })
    if (Object.hasOwn(args, "cpu-index")) return yield* fail("Parameter 'cpu-index' expects a CPU number")
    return args["command-line"] as string
  })
