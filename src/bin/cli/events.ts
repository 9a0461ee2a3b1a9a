/**
 * The command line of `qmp events`.
 *
 * @since 0.1.0
 */
import * as CliCommand from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import type * as Effect from "effect/Effect"
import * as Arguments from "../arguments.js"
import type * as Events from "../events.js"
import type { Examples } from "./help.js"
import * as Shared from "./options.js"

/**
 * @since 0.1.0
 * @category examples
 */
export const examples: Examples = [
  ["qmp events", "Print every event as one line of JSON, as QEMU sent it, until Ctrl-C."],
  ["qmp events --name STOP --name RESUME --count 2 --format pretty", "The next two STOP or RESUME events, readable."],
  [
    "qmp events --name JOB_STATUS_CHANGE --match id=job0 --timeout 30s",
    "The status changes of job job0, for 30 seconds at most."
  ]
]

/**
 * @since 0.1.0
 * @category descriptions
 */
export const description =
  "Print QMP events as they arrive, until Ctrl-C, --count events, --timeout, or the end of the connection."

/**
 * `qmp events`, running `handler`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (handler: (config: Events.Config) => Effect.Effect<void, unknown>) =>
  CliCommand.make(
    "events",
    {
      ...Shared.connection,
      names: Shared.repeated("name", "NAME", "Only events of this name (STOP, JOB_STATUS_CHANGE, ...). Repeatable."),
      match: Shared.match,
      count: Shared.text("count", "N", "Stop after this many events.").pipe(
        Shared.parsedWith("count", Arguments.parseCount),
        Options.optional
      ),
      timeout: Shared.duration("timeout", "Stop after this long (500ms, 30s, 2m, ...). Default: no limit.").pipe(
        Options.optional
      ),
      format: Shared.choice(
        "format",
        ["json", "pretty"],
        "json",
        "json (the default): one JSON object per line, as QEMU sent it; pretty: local time, name and data."
      )
    },
    handler
  ).pipe(CliCommand.withDescription(description))
