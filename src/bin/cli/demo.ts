/**
 * The command line of `qmp demo`.
 *
 * @since 0.1.0
 */
import * as CliCommand from "@effect/cli/Command"
import type * as Effect from "effect/Effect"
import type * as Demo from "../demo.js"
import type { Examples } from "./help.js"
import * as Shared from "./options.js"

/**
 * @since 0.1.0
 * @category examples
 */
export const examples: Examples = [
  ["qmp demo", "A real QEMU when one is installed, else the built-in test server (what npm start runs)."],
  ["qmp demo --server builtin -v", "On the built-in test server, with every QMP message shown on stderr."]
]

/**
 * @since 0.1.0
 * @category descriptions
 */
export const description = "Watch the event system at work on a live QMP connection (what npm start runs)."

/**
 * `qmp demo`, running `handler`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (handler: (config: Demo.Config) => Effect.Effect<void, unknown>) =>
  CliCommand.make(
    "demo",
    {
      verbose: Shared.connection.verbose,
      server: Shared.choice(
        "server",
        ["auto", "qemu", "builtin"],
        "auto",
        "auto (the default): a real QEMU when qemu-system-x86_64 is on PATH, else the built-in QmpTestServer; " +
          "qemu or builtin to choose."
      )
    },
    handler
  ).pipe(CliCommand.withDescription(description))
