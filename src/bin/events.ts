/**
 * `qmp events`: prints events as they arrive.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import type * as QmpMessage from "../QmpMessage.js"
import * as Arguments from "./arguments.js"
import type { ConnectionOptions } from "./connection.js"
import { withConnection } from "./connection.js"
import { ExitCode, interruptedExitCode } from "./errors.js"
import * as Output from "./output.js"

/**
 * The command line of `qmp events`, parsed.
 *
 * @since 0.1.0
 * @category models
 */
export interface Config extends ConnectionOptions {
  readonly names: ReadonlyArray<string>
  readonly match: ReadonlyArray<string>
  readonly count: Option.Option<number>
  readonly timeout: Option.Option<Duration.Duration>
  readonly format: "json" | "pretty"
}

/**
 * Runs `qmp events`: until Ctrl-C, `--count` events, `--timeout`, or the end of the connection.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (config: Config) =>
  Effect.gen(function*() {
    const filter = yield* Arguments.matchFilter(config.match)
    // Ctrl-C is the normal way to stop watching.
    yield* Ref.set(interruptedExitCode, ExitCode.Ok)
    const format = config.format === "pretty"
      ? Output.prettyEvent
      : (event: QmpMessage.QmpEvent) => JSON.stringify(event)
    yield* withConnection(
      config,
      {},
      (events) => events.listenerUnknown(config.names.length === 0 ? undefined : config.names, filter),
      (_, listener) => {
        let stream = listener.stream.pipe(Stream.catchTag("QmpDisconnected", () => Stream.empty))
        if (Option.isSome(config.count)) stream = Stream.take(stream, config.count.value)
        if (Option.isSome(config.timeout)) stream = Stream.interruptWhen(stream, Effect.sleep(config.timeout.value))
        return Stream.runForEach(stream, (event) => Output.line(format(event)))
      }
    )
  })
