/**
 * `qmp exec COMMAND [key=value ...]`: runs one command and prints its return as JSON; with `--agent`,
 * on the QEMU guest agent.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Arguments from "./arguments.js"
import type { ConnectionOptions } from "./connection.js"
import { withConnection } from "./connection.js"
import { usage } from "./errors.js"
import * as Output from "./output.js"

/**
 * The command line of `qmp exec`, parsed.
 *
 * @since 0.1.0
 * @category models
 */
export interface Config extends ConnectionOptions {
  readonly args: Option.Option<string>
  readonly timeout: Option.Option<Duration.Duration>
  readonly oob: boolean
  /** Talk to the guest agent (`qemu-ga`) rather than QEMU's monitor. */
  readonly agent: boolean
  readonly command: string
  readonly params: ReadonlyArray<string>
}

/**
 * Runs `qmp exec`.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (config: Config) =>
  Effect.gen(function*() {
    const name = yield* Arguments.commandName(config.command)
    const args = yield* Arguments.commandArguments(config.params, config.args)
    const options = Option.match(config.timeout, {
      onNone: () => ({}),
      onSome: (commandTimeout) => ({ commandTimeout })
    })
    if (config.agent) {
      if (config.oob) return yield* usage("--oob: the guest agent has no out-of-band execution")
      const Agent = yield* Effect.promise(() => import("./agent.js"))
      return yield* Agent.withAgent(
        config,
        options,
        (agent) => Effect.flatMap(agent.execute(name, args), (result) => Output.line(Output.json(result)))
      )
    }
    yield* withConnection(
      config,
      options,
      () => Effect.void,
      (qmp) =>
        (config.oob ? qmp.executeOobUnknown : qmp.executeUnknown)(name, args).pipe(
          Effect.flatMap((result) => Output.line(Output.json(result)))
        )
    )
  })
