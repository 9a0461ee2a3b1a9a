/**
 * The quick way in: the plain command lines of `exec`, `events` and `wait`, parsed without loading
 * `@effect/cli`, which would cost more start-up time than the command itself (scripts call
 * `qmp exec` in loops).
 *
 * `parse` gives the same configuration that `@effect/cli` gives for the command lines it accepts, and
 * declines (gives `undefined`) everything else: help, `--opt=value`, an unknown or repeated option, a
 * value that starts with "-", a flag followed by a word that `@effect/cli` would read as its value
 * (`true`, `no`, ...), an empty or padded value of a repeatable option (which `@effect/cli` trims or
 * drops), a bad count or format. Declined command lines go to `@effect/cli`, which
 * parses them, shows help, or reports the error, as it always did. A property test holds the two
 * parsers to the same result.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { parseTcpAddress } from "../QmpAddress.js"
import * as Arguments from "./arguments.js"
import type { ConnectionOptions } from "./connection.js"
import type * as Events from "./events.js"
import type * as Exec from "./exec.js"
import type * as Wait from "./wait.js"

/**
 * A command line that the quick way runs.
 *
 * @since 0.1.0
 * @category models
 */
export type Invocation =
  | { readonly command: "exec"; readonly config: Exec.Config }
  | { readonly command: "events"; readonly config: Events.Config }
  | { readonly command: "wait"; readonly config: Wait.Config }

/** What an option takes: nothing, one value, or one value each time it is given (repeatable). */
type Kind = "flag" | "value" | "values"

interface Parsed {
  readonly flags: ReadonlySet<string>
  readonly values: ReadonlyMap<string, ReadonlyArray<string>>
  readonly positionals: ReadonlyArray<string>
}

const connection: Record<string, Kind> = {
  "--socket": "value",
  "--tcp": "value",
  "--connect-timeout": "value",
  "--verbose": "flag"
}
const aliases: Record<string, string> = { "-v": "--verbose", "-s": "--socket" }

const specs: Record<Invocation["command"], Record<string, Kind>> = {
  exec: { ...connection, "--args": "value", "--timeout": "value", "--oob": "flag", "--agent": "flag" },
  events: {
    ...connection,
    "--name": "values",
    "--match": "values",
    "--count": "value",
    "--timeout": "value",
    "--format": "value"
  },
  wait: { ...connection, "--name": "values", "--match": "values", "--timeout": "value" }
}

const formats = Arguments.parseChoice(["json", "pretty"])

/** `@effect/cli` reads these words after a flag as the flag's value (`--verbose no`). */
const booleanWords = new Set(["true", "1", "y", "yes", "on", "false", "0", "n", "no", "off"])

/** Anything that `@effect/cli` could take for an option (it trims before it looks). */
const looksLikeOption = (token: string): boolean => token.trim().startsWith("-")

/** Options and positional arguments, in `@effect/cli`'s way: options anywhere, `--` ends them. */
const parseTokens = (tokens: ReadonlyArray<string>, spec: Record<string, Kind>): Parsed | undefined => {
  const flags = new Set<string>()
  const values = new Map<string, Array<string>>()
  const positionals: Array<string> = []
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]
    if (token === "--") {
      const rest = tokens.slice(i + 1)
      if (rest.some(looksLikeOption)) return undefined
      positionals.push(...rest)
      break
    }
    if (!looksLikeOption(token)) {
      // `@effect/cli` takes the options with a value out first: a word that then follows a flag is
      // read as the flag's value (`--oob --socket S no`), however far from it the word stood.
      if (flags.size > 0 && booleanWords.has(token.trim().toLowerCase())) return undefined
      positionals.push(token)
      continue
    }
    const name = aliases[token] ?? token
    const kind = Object.hasOwn(spec, name) ? spec[name] : undefined
    if (kind === undefined) return undefined
    if (kind === "flag") {
      const next = tokens[i + 1]
      if (flags.has(name) || (next !== undefined && booleanWords.has(next.trim().toLowerCase()))) return undefined
      flags.add(name)
      continue
    }
    const value = tokens[i + 1]
    if (value === undefined || looksLikeOption(value)) return undefined
    // @effect/cli trims the values of a repeatable option, and drops the empty ones.
    if (kind === "values" && (value === "" || value.trim() !== value)) return undefined
    const given = values.get(name) ?? []
    if (kind === "value" && given.length > 0) return undefined
    values.set(name, [...given, value])
    i++
  }
  return { flags, values, positionals }
}

const one = (parsed: Parsed, name: string): Option.Option<string> => Option.fromNullable(parsed.values.get(name)?.[0])

const all = (parsed: Parsed, name: string): Array<string> => [...(parsed.values.get(name) ?? [])]

/** Declines a value its option's parser refuses: `@effect/cli` then reports it, in its one wording. */
class Declined {}

/** The option's value parsed as `@effect/cli` parses it (with the same parser), if given. */
const parsedOne = <A>(parsed: Parsed, name: string, parse: (text: string) => Either.Either<A, string>) =>
  Option.map(one(parsed, name), (text) =>
    Either.getOrElse(parse(text), () => {
      throw new Declined()
    }))

const connectionOf = (parsed: Parsed): ConnectionOptions => ({
  socket: parsedOne(parsed, "--socket", Arguments.parsePath),
  tcp: parsedOne(parsed, "--tcp", parseTcpAddress),
  connectTimeout: parsedOne(parsed, "--connect-timeout", Arguments.parseDuration),
  verbose: parsed.flags.has("--verbose")
})

/**
 * Parses `argv` (`process.argv`: node, the script, then the arguments) when it is a plain command
 * line of `exec`, `events` or `wait`; gives `undefined` for anything that `@effect/cli` should see.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = (argv: ReadonlyArray<string>): Invocation | undefined => {
  try {
    return parseOrThrow(argv)
  } catch (error) {
    if (error instanceof Declined) return undefined
    throw error
  }
}

const parseOrThrow = (argv: ReadonlyArray<string>): Invocation | undefined => {
  const [command, ...tokens] = argv.slice(2)
  switch (command) {
    case "exec": {
      const parsed = parseTokens(tokens, specs.exec)
      if (parsed === undefined || parsed.positionals.length === 0) return undefined
      const [name, ...params] = parsed.positionals
      return {
        command,
        config: {
          ...connectionOf(parsed),
          args: one(parsed, "--args"),
          timeout: parsedOne(parsed, "--timeout", Arguments.parseDuration),
          oob: parsed.flags.has("--oob"),
          agent: parsed.flags.has("--agent"),
          command: name,
          params
        }
      }
    }
    case "events": {
      const parsed = parseTokens(tokens, specs.events)
      if (parsed === undefined || parsed.positionals.length > 0) return undefined
      const count = parsedOne(parsed, "--count", Arguments.parseCount)
      const format = Option.getOrElse(parsedOne(parsed, "--format", formats), () => "json" as const)
      return {
        command,
        config: {
          ...connectionOf(parsed),
          names: all(parsed, "--name"),
          match: all(parsed, "--match"),
          count,
          timeout: parsedOne(parsed, "--timeout", Arguments.parseDuration),
          format
        }
      }
    }
    case "wait": {
      const parsed = parseTokens(tokens, specs.wait)
      if (parsed === undefined || !parsed.values.has("--name")) return undefined
      return {
        command,
        config: {
          ...connectionOf(parsed),
          names: all(parsed, "--name"),
          match: all(parsed, "--match"),
          timeout: Option.getOrElse(
            parsedOne(parsed, "--timeout", Arguments.parseDuration),
            () => Duration.seconds(30)
          ),
          command: [...parsed.positionals]
        }
      }
    }
    default:
      return undefined
  }
}
