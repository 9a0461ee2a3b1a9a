/**
 * The values on a `qmp` command line, checked and turned into what the commands use: durations, a
 * command's `arguments`, a `--match` filter, a command name.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as EventFilter from "../EventFilter.js"
import type * as QmpMessage from "../QmpMessage.js"
import type { UsageError } from "./errors.js"
import { usage } from "./errors.js"
import * as KeyValue from "./KeyValue.js"

/**
 * Parses a duration: `500ms`, `30s`, `2m`, `1h`, a bare number of seconds (`1.5`), or Effect's
 * `"30 seconds"`.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseDuration = (text: string): Either.Either<Duration.Duration, string> => {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(text.trim())
  if (match !== null) {
    const n = Number(match[1])
    switch (match[2]) {
      case "ms":
        return Either.right(Duration.millis(n))
      case "m":
        return Either.right(Duration.minutes(n))
      case "h":
        return Either.right(Duration.hours(n))
      default:
        return Either.right(Duration.millis(n * 1000))
    }
  }
  return Option.match(Duration.decodeUnknown(text.trim()), {
    onNone: () => Either.left(`expected a duration such as 500ms, 30s, 2m or 1h, got ${JSON.stringify(text)}`),
    onSome: (duration) =>
      Duration.greaterThanOrEqualTo(duration, Duration.zero)
        ? Either.right(duration)
        : Either.left(`expected a positive duration, got ${JSON.stringify(text)}`)
  })
}

/**
 * Parses a count: a whole number from 1 (`--count`).
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseCount = (text: string): Either.Either<number, string> =>
  /^\d{1,9}$/.test(text) && Number(text) >= 1 ?
    Either.right(Number(text)) :
    Either.left(`expected a whole number from 1, got ${JSON.stringify(text)}`)

/**
 * Parses one of `choices` (`--format json`).
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseChoice =
  <const A extends string>(choices: ReadonlyArray<A>) => (text: string): Either.Either<A, string> =>
    (choices as ReadonlyArray<string>).includes(text) ?
      Either.right(text as A) :
      Either.left(`expected ${choices.slice(0, -1).join(", ")} or ${choices.at(-1)}, got ${JSON.stringify(text)}`)

/**
 * Parses a Unix socket's path: anything but nothing.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parsePath = (text: string): Either.Either<string, string> =>
  text === "" ? Either.left("expected a path, got \"\"") : Either.right(text)

/**
 * Renders a duration as it was probably typed: `30s`, `1.5s`, `500ms`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const showDuration = (duration: Duration.Duration): string => {
  const millis = Duration.toMillis(duration)
  return millis < 1000 ? `${millis}ms` : `${millis / 1000}s`
}

/**
 * The `arguments` of a command: `key=value` tokens on top of `--args JSON`; `undefined` when there
 * are none at all (the command is then sent without an `arguments` member).
 *
 * @since 0.1.0
 * @category parsing
 */
export const commandArguments = (
  tokens: ReadonlyArray<string>,
  argsJson: Option.Option<string>
): Effect.Effect<QmpMessage.JsonObject | undefined, UsageError> =>
  Effect.gen(function*() {
    const base = Option.isSome(argsJson)
      ? yield* Either.match(KeyValue.parseObject(argsJson.value), {
        onLeft: (message) => Effect.fail(usage(`--args: ${message}`)),
        onRight: Effect.succeed
      })
      : {}
    const args = yield* Either.match(KeyValue.parse(tokens, base), {
      onLeft: (message) => Effect.fail(usage(message)),
      onRight: Effect.succeed
    })
    return Object.keys(args).length === 0 ? undefined : args
  })

/**
 * The filter of `--match key=value ...`: the event's data has all these fields.
 *
 * @since 0.1.0
 * @category parsing
 */
export const matchFilter = (
  matches: ReadonlyArray<string>
): Effect.Effect<EventFilter.EventFilter | undefined, UsageError> =>
  matches.length === 0
    ? Effect.succeed(undefined)
    : Either.match(KeyValue.parse(matches), {
      onLeft: (message) => Effect.fail(usage(`--match: ${message}`)),
      onRight: (pattern) => Effect.succeed(EventFilter.data(pattern as EventFilter.DataPattern))
    })

/**
 * A command name. One that starts with "-" is an option that `@effect/cli` did not know (it passes
 * those on as arguments).
 *
 * @since 0.1.0
 * @category parsing
 */
export const commandName = (name: string): Effect.Effect<string, UsageError> =>
  name.startsWith("-")
    ? Effect.fail(usage(`unknown option ${JSON.stringify(name.split("=")[0])}`))
    : Effect.succeed(name)
