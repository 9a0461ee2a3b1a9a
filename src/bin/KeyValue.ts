/**
 * The `key=value` arguments of the `qmp` command-line tool, turned into a QMP `arguments` object.
 *
 * - `key=value`: the value is parsed as JSON when it is JSON (`size=1048576`, `force=true`,
 *   `opts={"a":1}`, `ids=[1,2]`, `x=null`) and kept as a string otherwise (`device=drive0`).
 * - `key:=value`: the value is a string, always (`id:=123` gives `"123"`).
 * - Dotted keys build objects: `file.driver=file file.filename=/tmp/a.img` gives
 *   `{"file":{"driver":"file","filename":"/tmp/a.img"}}`.
 *
 * Everything is checked before anything is sent: a token without `=`, an empty key part, a key given
 * twice (or both as a value and as an object), a number JavaScript cannot represent exactly.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import type { JsonObject } from "../QmpMessage.js"

/**
 * A JSON value, as QMP arguments hold them.
 *
 * @since 0.1.0
 * @category models
 */
export type Json = string | number | boolean | null | ReadonlyArray<Json> | { readonly [key: string]: Json }

/**
 * One parsed `key=value` argument: the key's path and its value.
 *
 * @since 0.1.0
 * @category models
 */
export interface Assignment {
  readonly path: ReadonlyArray<string>
  readonly value: Json
}

// A key part: QAPI member names (`node-name`, `job-id`, `x-perf`, `__com.redhat_x` aside).
const keyPart = /^[A-Za-z0-9_][A-Za-z0-9_+-]*$/

/** The first number in `value` that JavaScript cannot hold exactly, if any. */
const inexactNumber = (value: unknown): number | undefined => {
  if (typeof value === "number") {
    return !Number.isFinite(value) || (Number.isInteger(value) && !Number.isSafeInteger(value)) ? value : undefined
  }
  if (typeof value === "object" && value !== null) {
    for (const item of Object.values(value)) {
      const found = inexactNumber(item)
      if (found !== undefined) return found
    }
  }
  return undefined
}

/**
 * Parses a JSON text into a value, or says why it cannot: invalid JSON, or a number beyond what a
 * JavaScript number holds exactly (2^53, or overflowing to infinity).
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseJson = (text: string): Either.Either<Json, string> => {
  let value: Json
  try {
    value = JSON.parse(text) as Json
  } catch (error) {
    return Either.left(`invalid JSON (${error instanceof Error ? error.message : String(error)})`)
  }
  return inexactNumber(value) === undefined
    ? Either.right(value)
    : Either.left("a number in it is beyond 2^53: it cannot be represented exactly")
}

/**
 * Parses one `key=value` or `key:=value` token.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseAssignment = (token: string): Either.Either<Assignment, string> => {
  const equals = token.indexOf("=")
  if (token.startsWith("-")) {
    return Either.left(`unknown option ${JSON.stringify(token.split("=")[0])}`)
  }
  if (equals < 0) {
    return Either.left(`expected key=value (or key:=string), got ${JSON.stringify(token)}`)
  }
  const forceString = equals > 0 && token[equals - 1] === ":"
  const key = token.slice(0, forceString ? equals - 1 : equals)
  const text = token.slice(equals + 1)
  const path = key.split(".")
  if (key === "" || !path.every((part) => keyPart.test(part))) {
    return Either.left(
      `bad key in ${JSON.stringify(token)}: expected names of letters, digits, '-' and '_', joined by dots`
    )
  }
  if (forceString) return Either.right({ path, value: text })
  const trimmed = text.trim()
  // JSON when it looks like JSON, a string otherwise; a malformed object or array is an error, not a string.
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    return Either.mapBoth(parseJson(text), {
      onLeft: (message) => `${key}: ${message}`,
      onRight: (value) => ({ path, value })
    })
  }
  let value: Json
  try {
    value = JSON.parse(text) as Json
  } catch {
    return Either.right({ path, value: text })
  }
  // A number JavaScript cannot hold exactly is an error: it would reach QEMU changed.
  if (inexactNumber(value) !== undefined) {
    return Either.left(
      `${key}: ${trimmed} cannot be represented exactly as a number; use ${key}:=${trimmed} for a string`
    )
  }
  return Either.right({ path, value })
}

/**
 * Sets `assignment` in `target` (mutated: it is a fresh object being built), or says why it cannot:
 * the key was set already, or a part of its path holds a value that is not an object.
 */
const assign = (target: Record<string, unknown>, assignment: Assignment): string | undefined => {
  const { path, value } = assignment
  let node: Record<string, unknown> = target
  for (let i = 0; i < path.length - 1; i++) {
    const part = path[i]
    if (!Object.hasOwn(node, part)) {
      const child: Record<string, unknown> = {}
      Object.defineProperty(node, part, { value: child, enumerable: true, writable: true, configurable: true })
      node = child
      continue
    }
    const next = node[part]
    if (typeof next !== "object" || next === null || Array.isArray(next)) {
      return `${path.slice(0, i + 1).join(".")} is given a value and also used as an object (${path.join(".")})`
    }
    node = next as Record<string, unknown>
  }
  const last = path[path.length - 1]
  if (Object.hasOwn(node, last)) return `${path.join(".")} is given twice`
  // defineProperty: a key "__proto__" stays a plain field.
  Object.defineProperty(node, last, { value, enumerable: true, writable: true, configurable: true })
  return undefined
}

/** A deep copy of a JSON object whose keys are own, plain fields (`__proto__` included). */
const copyObject = (object: JsonObject): Record<string, unknown> => {
  const copy: Record<string, unknown> = {}
  for (const key of Object.keys(object)) {
    const value = object[key]
    const field = typeof value === "object" && value !== null && !Array.isArray(value)
      ? copyObject(value as JsonObject)
      : value
    Object.defineProperty(copy, key, { value: field, enumerable: true, writable: true, configurable: true })
  }
  return copy
}

/**
 * Builds an arguments object from `key=value` tokens, on top of `base` (the `--args` object, if
 * any). A key may be set once: by `base` or by one token.
 *
 * @example
 * ```ts
 * KeyValue.parse(["driver=null-co", "node-name=src", "size=1048576", "opts.x:=1"])
 * // Either.right({ driver: "null-co", "node-name": "src", size: 1048576, opts: { x: "1" } })
 * ```
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = (tokens: ReadonlyArray<string>, base: JsonObject = {}): Either.Either<JsonObject, string> => {
  const result = copyObject(base)
  for (const token of tokens) {
    const assignment = parseAssignment(token)
    if (Either.isLeft(assignment)) return Either.left(assignment.left)
    const conflict = assign(result, assignment.right)
    if (conflict !== undefined) return Either.left(conflict)
  }
  return Either.right(result)
}

/**
 * Parses the `--args` option: a JSON object.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseObject = (text: string): Either.Either<JsonObject, string> =>
  Either.flatMap(
    parseJson(text),
    (value) =>
      typeof value === "object" && value !== null && !Array.isArray(value)
        ? Either.right(value as JsonObject)
        : Either.left(`expected a JSON object, got ${Array.isArray(value) ? "an array" : JSON.stringify(value)}`)
  )
