#!/usr/bin/env node
/**
 * The `qmp` executable: `qmp exec`, `qmp events`, `qmp wait`, `qmp shell`, `qmp demo`, `qmp job`, ...
 *
 * It starts quickly: the plain command lines of `exec`, `events` and `wait` are parsed here (see
 * `argv.ts`) and run without `@effect/cli`; everything else (help, `shell`, `demo`, errors in the
 * command line) goes to the full command line in `cli.ts`. Each command is a module of its own,
 * imported when it runs, so that only its code is loaded.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Ref from "effect/Ref"
import * as Fs from "node:fs"
import * as Argv from "./argv.js"
import { ExitCode, interruptedExitCode, toExitCode } from "./errors.js"
import { oneLine } from "./output.js"

/** The package's version: package.json is two levels up, from `src/bin` and from `dist/bin` alike. */
const version = (): string => {
  try {
    const text = Fs.readFileSync(new URL("../../package.json", import.meta.url), "utf8")
    return String((JSON.parse(text) as { readonly version?: unknown }).version ?? "0.0.0")
  } catch {
    return "0.0.0"
  }
}

/** Runs the command line, and gives the exit code. */
const main: Effect.Effect<number> = Effect.suspend(() => {
  const invocation = Argv.parse(process.argv)
  switch (invocation?.command) {
    case "exec": {
      const { config } = invocation
      return Effect.flatMap(Effect.promise(() => import("./exec.js")), (Exec) => toExitCode(Exec.run(config)))
    }
    case "events": {
      const { config } = invocation
      return Effect.flatMap(Effect.promise(() => import("./events.js")), (Events) => toExitCode(Events.run(config)))
    }
    case "wait": {
      const { config } = invocation
      return Effect.flatMap(Effect.promise(() => import("./wait.js")), (Wait) => toExitCode(Wait.run(config)))
    }
    case undefined:
      return Effect.flatMap(Effect.promise(() => import("./cli.js")), (Cli) => Cli.run(process.argv, version()))
  }
})

/**
 * Ends when stdout is closed under us (`qmp events | head -1`): the program is then interrupted, so
 * that its finalizers run (a QEMU started by `qmp demo` is stopped), and the exit code is 0.
 */
const stdoutClosed: Effect.Effect<number> = Effect.async((resume) => {
  const onError = (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") resume(Effect.succeed(ExitCode.Ok))
  }
  process.stdout.on("error", onError)
  return Effect.sync(() => {
    process.stdout.off("error", onError)
  })
})

/** What `main` could not report itself (a command's module that failed to load): one line, exit code 1. */
const internalError = (cause: Cause.Cause<unknown>): number => {
  const error = Cause.squash(cause)
  process.stderr.write(`qmp: internal error: ${oneLine(error instanceof Error ? error.message : String(error))}\n`)
  return ExitCode.Error
}

// Every failure is reported by `main`, as one line: runMain's own error reporting is off.
Effect.raceFirst(main, stdoutClosed).pipe(
  NodeRuntime.runMain({
    disableErrorReporting: true,
    disablePrettyLogger: true,
    teardown: (exit, onExit) => {
      // The program always succeeds with its exit code, unless it was interrupted (Ctrl-C, SIGTERM).
      const code: number = Exit.isSuccess(exit)
        ? exit.value as number
        : Cause.isInterruptedOnly(exit.cause)
        ? Effect.runSync(Ref.get(interruptedExitCode))
        : internalError(exit.cause)
      process.exitCode = code
      onExit(code)
    }
  })
)
