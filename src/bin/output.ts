/**
 * What the `qmp` tool writes: JSON (pretty on a terminal, compact when piped), events, one-line
 * errors on stderr, and the logger that shows the wire under `--verbose`.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Logger from "effect/Logger"
import type * as QmpMessage from "../QmpMessage.js"

/**
 * `true` when stdout is a terminal: JSON is then pretty-printed, and the demo draws in place.
 *
 * @since 0.1.0
 * @category terminal
 */
export const stdoutIsTerminal: boolean = process.stdout.isTTY === true

/**
 * How the person at the terminal runs `qmp`, for hints: `qmp` when it was run by that name (installed
 * globally), else `npx qmp` (a clone's `npm start`, a project's `node_modules/.bin`), which is what
 * works there.
 *
 * @since 0.1.0
 * @category terminal
 */
export const programName = (script: string = process.argv[1] ?? ""): string =>
  /(^|[\\/])qmp$/.test(script) && !/[\\/]node_modules[\\/]\.bin[\\/]/.test(script) ? "qmp" : "npx qmp"

/**
 * Renders a JSON value: indented on a terminal, one line otherwise.
 *
 * @since 0.1.0
 * @category formatting
 */
export const json = (value: unknown, pretty: boolean = stdoutIsTerminal): string =>
  JSON.stringify(value === undefined ? {} : value, null, pretty ? 2 : undefined)

/**
 * An event's time, local, to the millisecond: `14:03:22.123`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const localTime = (timestamp: QmpMessage.Timestamp): string => {
  const date = new Date(timestamp.seconds * 1000 + Math.floor(timestamp.microseconds / 1000))
  const pad = (n: number, width = 2) => String(n).padStart(width, "0")
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`
}

/**
 * An event on one line, for people: local time, name, data.
 *
 * @since 0.1.0
 * @category formatting
 */
export const prettyEvent = (event: QmpMessage.QmpEvent): string =>
  `${localTime(event.timestamp)}  ${event.event}${event.data === undefined ? "" : "  " + JSON.stringify(event.data)}`

/**
 * Folds a message onto one line: what follows a line break is joined with " | ".
 *
 * @since 0.1.0
 * @category formatting
 */
export const oneLine = (text: string): string =>
  text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== "").join(" | ")

/**
 * Writes a line to stdout.
 *
 * @since 0.1.0
 * @category output
 */
export const line = (text: string): Effect.Effect<void> => Console.log(text)

/**
 * Writes one line to stderr, prefixed with `qmp: `. Goes around the `Console` service, which the
 * tool silences while `@effect/cli` parses (it prints its own multi-line error documents there).
 *
 * @since 0.1.0
 * @category output
 */
export const error = (message: string): Effect.Effect<void> =>
  Effect.sync(() => {
    process.stderr.write(`qmp: ${oneLine(message)}\n`)
  })

const levelNames: Record<string, string> = {
  Fatal: "fatal",
  Error: "error",
  Warning: "warning",
  Info: "info",
  Debug: "debug",
  Trace: "trace"
}

/**
 * Log lines on stderr, one per message: `debug -> {"execute":"stop","id":"qmp-2"}` for the wire,
 * `debug [QmpClient] Connected to QEMU 7.2.22` for the rest. Stdout is kept for results, so that
 * `qmp exec ... | jq` works under `--verbose` too.
 *
 * @since 0.1.0
 * @category logging
 */
export const stderrLogger: Logger.Logger<unknown, void> = Logger.make(({ annotations, cause, logLevel, message }) => {
  const text = (Array.isArray(message) ? message : [message]).map((part) =>
    typeof part === "string" ? part : JSON.stringify(part)
  ).join(" ")
  const module = HashMap.get(annotations, "module")
  const where = module._tag === "Some" ? ` [${String(module.value)}]` : ""
  const why = Cause.isEmpty(cause) ? "" : ` (${oneLine(Cause.pretty(cause).split("\n")[0] ?? "")})`
  // A chunk read from the wire may hold several messages: one line each, each with its arrow.
  const arrow = /^(<-|->) /.exec(text)?.[0] ?? ""
  const prefix = `${levelNames[logLevel._tag] ?? logLevel.label}${arrow === "" ? where : ""}`
  const lines = text.split(/\r?\n/).filter((line, i) => i === 0 || line !== "")
  process.stderr.write(
    lines.map((line, i) => `${prefix} ${i === 0 ? line : arrow + line}${i === lines.length - 1 ? why : ""}\n`).join("")
  )
})
