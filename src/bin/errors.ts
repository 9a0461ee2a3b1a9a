/**
 * The errors and exit codes of the `qmp` tool, and how a command's outcome becomes an exit code:
 * one line on stderr for any failure, never a stack trace.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as HashSet from "effect/HashSet"
import * as Logger from "effect/Logger"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as Output from "./output.js"

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
 * A `UsageError` with this detail.
 *
 * @since 0.1.0
 * @category constructors
 */
export const usage = (detail: string): UsageError => new UsageError({ detail })

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

const defaultMessage = (error: unknown): string => error instanceof Error ? error.message : String(error)

/**
 * Runs a command to its exit code: 0 when it succeeds; when it fails, its error as one line on
 * stderr (`messageOf` renders it) and the error's exit code; a defect is an internal error (1). Log
 * lines go to stderr through `Output.stderrLogger`.
 *
 * @since 0.1.0
 * @category running
 */
export const toExitCode = <E, R>(
  command: Effect.Effect<void, E, R>,
  messageOf: (error: E) => string = defaultMessage
): Effect.Effect<number, never, R> =>
  command.pipe(
    Effect.as<number>(ExitCode.Ok),
    Effect.catchAll((error) => Effect.as(Output.error(messageOf(error)), exitCodeOf(error))),
    Effect.catchAllDefect((defect) =>
      Effect.as(
        Output.error(`internal error: ${defect instanceof Error ? defect.message : Cause.pretty(Cause.die(defect))}`),
        ExitCode.Error
      )
    ),
    // As Logger.replace, without building a Layer: every step costs start-up time here.
    Effect.locallyWith(
      FiberRef.currentLoggers,
      (loggers) => HashSet.add(HashSet.remove(loggers, Logger.defaultLogger), Output.stderrLogger)
    )
  )
