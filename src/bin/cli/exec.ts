/**
 * The command line of `qmp exec`.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as CliCommand from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import type * as Effect from "effect/Effect"
import type * as Exec from "../exec.js"
import type { Examples } from "./help.js"
import * as Shared from "./options.js"

/**
 * @since 0.1.0
 * @category examples
 */
export const examples: Examples = [
  ["qmp exec query-status", "Ask QEMU whether the VM runs: {\"status\": \"running\", \"running\": true}."],
  [
    "qmp exec -s /tmp/qmp.sock blockdev-add driver=null-co node-name=disk0 size=1048576",
    "Add a block node; values are JSON when they parse as JSON (size is a number), strings otherwise."
  ],
  [
    "qmp exec human-monitor-command command-line=\"info status\"",
    "Run a human monitor (HMP) command; the shell's quotes keep the value one argument."
  ]
]

/**
 * @since 0.1.0
 * @category descriptions
 */
export const description = "Run one QMP command and print its return as JSON."

/**
 * `qmp exec`, running `handler`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (handler: (config: Exec.Config) => Effect.Effect<void, unknown>) =>
  CliCommand.make(
    "exec",
    {
      ...Shared.connection,
      args: Shared.args,
      timeout: Shared.duration("timeout", "How long to wait for the reply (default 60s).").pipe(
        Options.optional
      ),
      oob: Shared.flag("oob", "Run the command out of band (exec-oob), for the commands that allow it."),
      agent: Shared.agent,
      command: Args.text({ name: "COMMAND" }).pipe(Args.withDescription("The QMP command, e.g. query-status.")),
      params: Args.text({ name: "key=value" }).pipe(
        Args.withDescription(
          "Arguments: values are JSON when they parse as JSON, strings otherwise; key:=value is always a string; " +
            "a.b=1 gives {\"a\":{\"b\":1}}."
        ),
        Args.repeated
      )
    },
    handler
  ).pipe(CliCommand.withDescription(description))
