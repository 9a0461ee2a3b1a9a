/**
 * Tab completion in `qmp shell`: command names first, then argument names, the members of an
 * object after its dotted key (`file.`), the members of the variant a union's tag chose
 * (`blockdev-add driver=qcow2 ` offers qcow2's), and an enum's values after `key=`. In a
 * transaction, the actions and their data; with `--hmp`, HMP's commands.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as KeyValue from "./KeyValue.js"
import type { ArgumentSchema } from "./shellSchema.js"

/**
 * What QEMU says it can do: command names, and the schema of their arguments (QEMU's monitor only).
 *
 * @since 0.1.0
 * @category models
 */
export interface Vocabulary {
  readonly commands: ReadonlyArray<string>
  readonly schema: ArgumentSchema | undefined
}

/**
 * A vocabulary with nothing in it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const empty: Vocabulary = { commands: [], schema: undefined }

/**
 * What the line being completed is: a command, a transaction's action, or an HMP command line.
 *
 * @since 0.1.0
 * @category models
 */
export type Mode = "command" | "action" | "hmp"

/** The words given before the one being completed, read leniently (quotes dropped, errors ignored). */
const givenArguments = (words: ReadonlyArray<string>): unknown => {
  const assignments = words.filter((word) => word.includes("=")).map((word) => word.replaceAll(/["']/g, ""))
  const parsed = KeyValue.parse(assignments)
  return Either.isRight(parsed) ? parsed.right : {}
}

/**
 * Completes `line`: gives the candidates and the part of the line they replace (readline's
 * `completer` contract).
 *
 * @since 0.1.0
 * @category completion
 */
export const complete = (words: Vocabulary, line: string, mode: Mode = "command"): [Array<string>, string] => {
  if (mode === "hmp") {
    // HMP's commands are phrases (`info status`): complete the whole line.
    const hits = words.commands.filter((phrase) => phrase.startsWith(line))
    return [hits.length === 1 ? [`${hits[0]} `] : hits, line]
  }
  const tokens = line.split(/\s+/)
  const current = tokens[tokens.length - 1]
  const names = mode === "action" ? [...(words.schema?.transactionActions.keys() ?? [])].sort() : words.commands
  if (tokens.length === 1) {
    const hits = names.filter((name) => name.startsWith(current))
    return [hits.length === 1 ? [`${hits[0]} `] : hits, current]
  }
  const schema = words.schema
  const type = schema === undefined ? undefined : mode === "action" ?
    schema.transactionActions.get(tokens[0]) :
    schema.argumentsOf(tokens[0])
  if (schema === undefined || type === undefined) return [[], current]
  const given = givenArguments(tokens.slice(1, -1))

  const equals = current.indexOf("=")
  if (equals > 0) {
    // A value: an enum's (or a boolean's).
    const key = current.slice(0, equals).replace(/:$/, "")
    const prefix = current.slice(equals + 1)
    const values = schema.valuesAt(type, key.split("."), given).filter((value) => value.startsWith(prefix))
    const start = current.slice(0, equals + 1)
    return [values.map((value) => `${start}${value}${values.length === 1 ? " " : ""}`), current]
  }

  // A key: the members at the dotted path typed so far, but those given already.
  const path = current.split(".")
  const partial = path.pop()!
  const givenKeys = new Set(tokens.slice(1, -1).map((token) => token.split(/:?=/)[0]))
  const base = path.length === 0 ? "" : `${path.join(".")}.`
  const hits = schema.membersAt(type, path, given)
    .filter((member) => member.name.startsWith(partial) && !givenKeys.has(base + member.name))
    .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
    .flatMap((member) => [
      ...(member.value ? [`${base}${member.name}=`] : []),
      ...(member.object ? [`${base}${member.name}.`] : [])
    ])
  return [hits, current]
}
