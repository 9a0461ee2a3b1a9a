/**
 * The options that several `qmp` commands share, and how every option's value is checked: through
 * `@effect/cli`'s own validation (`Options.mapEffect`), with the parsers of `arguments.ts` that the
 * quick parser (`argv.ts`) uses too, so that both say the same thing of the same value.
 *
 * One wording for every bad value: `--NAME: expected WHAT, got "VALUE"`.
 *
 * @since 0.1.0
 */
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { parseTcpAddress } from "../../QmpAddress.js"
import * as Arguments from "../arguments.js"

/**
 * The option's text turned into a value by `parse`, or a `ValidationError` saying
 * `--NAME: expected ..., got "..."`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const parsedWith = <A>(name: string, parse: (text: string) => Either.Either<A, string>) =>
  Options.mapEffect((text: string) =>
    Either.match(parse(text), {
      onLeft: (message) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--${name}: ${message}`))),
      onRight: Effect.succeed
    })
  )

/**
 * An option with a value, described: `--NAME PSEUDONAME`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const text = (name: string, pseudoName: string, description: string): Options.Options<string> =>
  Options.text(name).pipe(Options.withDescription(description), Options.withPseudoName(pseudoName))

/**
 * An optional option with a value.
 *
 * @since 0.1.0
 * @category constructors
 */
export const optionalText = (name: string, pseudoName: string, description: string) =>
  Options.optional(text(name, pseudoName, description))

/**
 * A flag, described.
 *
 * @since 0.1.0
 * @category constructors
 */
export const flag = (name: string, description: string): Options.Options<boolean> =>
  Options.boolean(name).pipe(Options.withDescription(description))

/**
 * A duration option (`500ms`, `30s`, `2m`, ...), parsed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const duration = (name: string, description: string): Options.Options<Duration.Duration> =>
  text(name, "DURATION", description).pipe(parsedWith(name, Arguments.parseDuration))

/**
 * An option that takes one of `choices`, with a default.
 *
 * @since 0.1.0
 * @category constructors
 */
export const choice = <const A extends string>(
  name: string,
  choices: ReadonlyArray<A>,
  fallback: NoInfer<A>,
  description: string
): Options.Options<A> =>
  text(name, choices.join("|"), description).pipe(
    parsedWith(name, Arguments.parseChoice(choices)),
    Options.withDefault(fallback)
  )

/**
 * A repeatable option: every value given, in order (none when it is absent).
 *
 * @since 0.1.0
 * @category constructors
 */
export const repeated = (name: string, pseudoName: string, description: string): Options.Options<Array<string>> =>
  text(name, pseudoName, description).pipe(
    Options.repeated,
    Options.optional,
    Options.map(Option.getOrElse((): Array<string> => []))
  )

/**
 * Where and how to connect, for every command that connects: `--socket` (`-s`), `--tcp`,
 * `--connect-timeout`, `--verbose` (`-v`).
 *
 * @since 0.1.0
 * @category options
 */
export const connection = {
  socket: text(
    "socket",
    "PATH",
    "The QMP Unix socket of QEMU (-qmp unix:PATH,server=on,wait=off). Default: $QMP_SOCKET."
  ).pipe(Options.withAlias("s"), parsedWith("socket", Arguments.parsePath), Options.optional),
  tcp: text("tcp", "HOST:PORT", "The QMP TCP address of QEMU (-qmp tcp:HOST:PORT,server=on,wait=off).").pipe(
    parsedWith("tcp", parseTcpAddress),
    Options.optional
  ),
  connectTimeout: duration(
    "connect-timeout",
    "How long to wait for QEMU to accept and greet (default 10s). QEMU serves one client per socket: while " +
      "another holds it, no greeting comes."
  ).pipe(Options.optional),
  verbose: flag("verbose", "Show the QMP messages sent (->) and received (<-) on stderr.").pipe(
    Options.withAlias("v")
  )
}

/**
 * `--agent`: the guest agent rather than QEMU's monitor.
 *
 * @since 0.1.0
 * @category options
 */
export const agent = flag(
  "agent",
  "Talk to the QEMU guest agent (qemu-ga) at the socket: no greeting, resynchronised with guest-sync-delimited."
)

/**
 * `--args JSON`: a command's arguments as one JSON object.
 *
 * @since 0.1.0
 * @category options
 */
export const args = optionalText(
  "args",
  "JSON",
  "The command's arguments as a JSON object; key=value arguments are added to it."
)

/**
 * `--match key=value`, repeatable: a filter on the events' data.
 *
 * @since 0.1.0
 * @category options
 */
export const match = repeated(
  "match",
  "KEY=VALUE",
  "Only events whose data has this field (key=value, as for exec; dotted keys reach into objects). Repeatable."
)
