/**
 * The command line of `qmp wait`.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as CliCommand from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Wait from "../wait.js"
import type { Examples } from "./help.js"
import * as Shared from "./options.js"

/**
 * @since 0.1.0
 * @category examples
 */
export const examples: Examples = [
  ["qmp wait --name STOP -- stop", "Stop the VM and print its STOP event (the listener is there before stop is sent)."],
  [
    "qmp wait --name JOB_STATUS_CHANGE --match id=j1 --match status=concluded --timeout 2m",
    "Wait until job j1 concludes; exit code 2 if it has not within two minutes."
  ],
  ["qmp wait --name SHUTDOWN --name RESET", "Wait for whichever comes first."]
]

/**
 * @since 0.1.0
 * @category descriptions
 */
export const description =
  "Wait for one matching event and print it; with -- COMMAND, run that command first (the listener is " +
  "registered before it is sent). Exit code 2 on timeout, 3 if the connection ends."

/**
 * `qmp wait`, running `handler`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (handler: (config: Wait.Config) => Effect.Effect<void, unknown>) =>
  CliCommand.make(
    "wait",
    {
      ...Shared.connection,
      names: Shared.text("name", "NAME", "The event to wait for. Repeatable: any of them.").pipe(
        Options.atLeast(1)
      ),
      match: Shared.match,
      timeout: Shared.duration("timeout", "Give up after this long (default 30s), with exit code 2.").pipe(
        Options.withDefault(Duration.seconds(30))
      ),
      command: Args.text({ name: "-- COMMAND key=value" }).pipe(
        Args.withDescription(
          "A command to run once the listener is registered, so that an event QEMU sends before the command's " +
            "return is not missed."
        ),
        Args.repeated
      )
    },
    handler
  ).pipe(CliCommand.withDescription(description))
