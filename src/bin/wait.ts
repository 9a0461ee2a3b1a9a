/**
 * `qmp wait --name NAME [-- COMMAND key=value ...]`: waits for one matching event, registering its
 * listener before it runs the command.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as EventListener from "../EventListener.js"
import type * as QmpClient from "../QmpClient.js"
import * as Arguments from "./arguments.js"
import type { ConnectionOptions } from "./connection.js"
import { withConnection } from "./connection.js"
import { WaitEnded, WaitTimeout } from "./errors.js"
import * as Output from "./output.js"

/**
 * The command line of `qmp wait`, parsed.
 *
 * @since 0.1.0
 * @category models
 */
export interface Config extends ConnectionOptions {
  readonly names: ReadonlyArray<string>
  readonly match: ReadonlyArray<string>
  readonly timeout: Duration.Duration
  readonly command: ReadonlyArray<string>
}

/**
 * Runs `qmp wait`: exits 2 when `--timeout` passes first, 3 when the connection ends first.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (config: Config) =>
  Effect.gen(function*() {
    const filter = yield* Arguments.matchFilter(config.match)
    const timeout = config.timeout
    const [first, ...tokens] = config.command
    const name = first === undefined ? undefined : yield* Arguments.commandName(first)
    const args = yield* Arguments.commandArguments(tokens, Option.none())
    const names = config.names
    // The listener is registered before the connection is made, so before the command is written:
    // the command's events may come before its return.
    const body = (qmp: QmpClient.Service, listener: EventListener.EventListener) =>
      Effect.gen(function*() {
        const event = yield* Effect.gen(function*() {
          if (name !== undefined) {
            // If the command's fate is lost with the connection, the event may still be there.
            yield* qmp.executeUnknown(name, args).pipe(Effect.catchTag("QmpDisconnected", () => Effect.void))
          }
          return yield* listener.take
        }).pipe(
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () => new WaitTimeout({ names, timeout: Arguments.showDuration(timeout) })
          }),
          Effect.catchTags({
            QmpDisconnected: (error) => new WaitEnded({ names, detail: error.message }),
            ListenerError: (error) => Effect.die(error)
          })
        )
        yield* Output.line(Output.json(event))
      })
    yield* withConnection(config, {}, (events) => events.listenerUnknown(names, filter), body)
  })
