/**
 * One line of `qmp shell`: split into words as a Unix shell would (quotes group, and are removed),
 * then read as a raw JSON command or `command key=value ...`, the values typed by the live schema
 * when the shell has it.
 *
 * Quoting: `'...'` takes everything up to the next `'` as it is; `"..."` the same, but `\"` and `\\`
 * stand for `"` and `\`. Quotes may begin anywhere in a word (`command-line="info status"`). A value
 * that was quoted is a string (`id="123"` sends `"123"`), unless what was quoted is a JSON object or
 * array (`opts='{"a": 1}'`), which is sent as JSON.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import type * as QmpMessage from "../QmpMessage.js"
import * as KeyValue from "./KeyValue.js"
import type { ArgumentSchema } from "./shellSchema.js"

/**
 * A command parsed from one line of input.
 *
 * @since 0.1.0
 * @category models
 */
export interface ParsedCommand {
  readonly command: string
  readonly arguments: QmpMessage.JsonObject | undefined
}

/**
 * Splits a line into words: whitespace separates them outside quotes; quotes are removed. A value
 * (after the first `=`) that was quoted, and is not a JSON object or array, is marked as a string
 * (`key:=value`), so that `KeyValue` sends it as one. An unterminated quote is an error.
 *
 * @since 0.1.0
 * @category parsing
 */
export const tokenize = (line: string): Either.Either<Array<string>, string> => {
  const words: Array<string> = []
  let word = ""
  let inWord = false
  // Whether a quote began after the word's first `=`: its value was quoted.
  let valueQuoted = false
  const end = () => {
    if (!inWord) return
    const equals = word.indexOf("=")
    if (valueQuoted && equals > 0 && word[equals - 1] !== ":") {
      const value = word.slice(equals + 1).trim()
      if (!value.startsWith("{") && !value.startsWith("[")) {
        word = `${word.slice(0, equals)}:=${word.slice(equals + 1)}`
      }
    }
    words.push(word)
    word = ""
    inWord = false
    valueQuoted = false
  }
  for (let i = 0; i < line.length; i++) {
    const c = line[i]
    if (c === " " || c === "\t") {
      end()
      continue
    }
    inWord = true
    if (c !== "'" && c !== "\"") {
      word += c
      continue
    }
    if (word.includes("=")) valueQuoted = true
    const close = c
    let closed = false
    for (i++; i < line.length; i++) {
      const d = line[i]
      if (d === close) {
        closed = true
        break
      }
      if (close === "\"" && d === "\\" && (line[i + 1] === "\"" || line[i + 1] === "\\")) {
        word += line[++i]
        continue
      }
      word += d
    }
    if (!closed) return Either.left(`unterminated ${close === "'" ? "single" : "double"} quote`)
  }
  end()
  return Either.right(words)
}

/**
 * Builds a command's arguments from its `key=value` words, typed by `schema` when given: a value
 * whose member is a string (or an enum) in the schema is sent as a string even if it looks like a
 * number or a boolean (`node-name=123`, `id=true`).
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseArguments = (
  words: ReadonlyArray<string>,
  argumentType: string | undefined,
  schema: ArgumentSchema | undefined
): Either.Either<QmpMessage.JsonObject, string> =>
  Either.flatMap(KeyValue.parse(words), (inferred) => {
    if (schema === undefined || argumentType === undefined) return Either.right(inferred)
    let changed = false
    const typed = words.map((word) => {
      const equals = word.indexOf("=")
      if (equals <= 0 || word[equals - 1] === ":") return word
      const path = word.slice(0, equals).split(".")
      const text = word.slice(equals + 1)
      if (!schema.wantsString(argumentType, path, inferred, text)) return word
      changed = true
      return `${word.slice(0, equals)}:=${text}`
    })
    return changed ? KeyValue.parse(typed) : Either.right(inferred)
  })

/**
 * Parses a line: a raw JSON command (`{"execute": "stop"}`), or `command key=value ...` (quotes as
 * `tokenize` reads them, values typed by `schema` when given).
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseLine = (line: string, schema?: ArgumentSchema): Either.Either<ParsedCommand, string> => {
  const text = line.trim()
  if (text.startsWith("{")) {
    return Either.flatMap(KeyValue.parseJson(text), (json) => {
      if (typeof json !== "object" || json === null || Array.isArray(json)) {
        return Either.left("a raw command must be a JSON object")
      }
      const object = json as QmpMessage.JsonObject
      const command = object.execute
      if (typeof command !== "string") return Either.left("a raw command needs \"execute\": \"NAME\"")
      const args = object.arguments
      if (args !== undefined && (typeof args !== "object" || args === null || Array.isArray(args))) {
        return Either.left("\"arguments\" must be a JSON object")
      }
      return Either.right({ command, arguments: args as QmpMessage.JsonObject | undefined })
    })
  }
  return Either.flatMap(tokenize(text), ([command, ...words]) =>
    Either.map(
      parseArguments(words, schema?.argumentsOf(command), schema),
      (args) => ({ command, arguments: Object.keys(args).length === 0 ? undefined : args })
    ))
}
