/**
 * The command line of `qmp shell`.
 *
 * @since 0.1.0
 */
import * as CliCommand from "@effect/cli/Command"
import type * as Effect from "effect/Effect"
import type * as Shell from "../shell.js"
import type { Examples } from "./help.js"
import * as Shared from "./options.js"

/**
 * @since 0.1.0
 * @category examples
 */
export const examples: Examples = [
  ["qmp shell -s /tmp/qmp.sock", "An interactive shell: query-<Tab> lists the queries, Ctrl-D leaves."],
  ["qmp shell --hmp --log session.jsonl", "QEMU's human monitor (info status, info block, ...), with a transcript."],
  ["qmp shell < commands.txt", "A script from stdin: one JSON line per command; exit code 1 if any failed."]
]

/**
 * @since 0.1.0
 * @category descriptions
 */
export const description =
  "An interactive QMP shell: command key=value ... (quotes as in a shell, values typed by QEMU's schema) or " +
  "raw JSON, transaction( ... ), Tab completion of commands, members and enum values, history, events as " +
  "they arrive. Reading a script from stdin, it prints one JSON line per command and exits 1 if any failed."

/**
 * `qmp shell`, running `handler`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (handler: (config: Shell.Config) => Effect.Effect<void, unknown>) =>
  CliCommand.make(
    "shell",
    {
      ...Shared.connection,
      history: Shared.optionalText("history", "FILE", "The history file (default ~/.qmp_history)."),
      log: Shared.optionalText(
        "log",
        "FILE",
        "Append a transcript of every request and reply (JSON lines) to FILE."
      ),
      agent: Shared.agent,
      hmp: Shared.flag("hmp", "Talk to QEMU's human monitor (HMP) through QMP, as qmp-shell -H does.")
    },
    handler
  ).pipe(CliCommand.withDescription(description))
