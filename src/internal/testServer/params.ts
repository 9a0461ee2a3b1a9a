/**
 * Command arguments, checked as QEMU's QAPI input visitor checks them, with its error texts: the
 * declared members in their QAPI order (a missing one, then a wrong type), then any member that is
 * not declared.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type { CommandError } from "../../testing/QmpTestServer.js"
import { genericError } from "./wire.js"

/** @internal */
export const fail = (desc: string): Effect.Effect<never, CommandError> => Effect.fail(genericError(desc))

type ParamType = "string" | "int" | "bool" | "array" | "any"

/** A member's type; `?` marks an optional member. @internal */
export type ParamSpec = ParamType | `${ParamType}?`

const expected: Record<ParamType, string> = {
  string: "string",
  int: "integer",
  bool: "boolean",
  array: "array",
  any: "value"
}

const hasType = (type: ParamType, value: unknown): boolean => {
  switch (type) {
    case "string":
      return typeof value === "string"
    case "int":
      return Number.isSafeInteger(value)
    case "bool":
      return typeof value === "boolean"
    case "array":
      return Array.isArray(value)
    case "any":
      return true
  }
}

/**
 * Checks `args` against `spec` (members in QAPI's order).
 *
 * @internal
 */
export const params = (
  args: Readonly<Record<string, unknown>>,
  spec: Readonly<Record<string, ParamSpec>>
): Effect.Effect<void, CommandError> =>
  Effect.suspend(() => {
    for (const [name, declared] of Object.entries(spec)) {
      const optional = declared.endsWith("?")
      const type = (optional ? declared.slice(0, -1) : declared) as ParamType
      if (!Object.hasOwn(args, name)) {
        if (!optional) return fail(`Parameter '${name}' is missing`)
        continue
      }
      if (!hasType(type, args[name])) return fail(`Invalid parameter type for '${name}', expected: ${expected[type]}`)
    }
    for (const name of Object.keys(args)) {
      if (!Object.hasOwn(spec, name)) return fail(`Parameter '${name}' is unexpected`)
    }
    return Effect.void
  })

/** Checks that an enum member has one of its values. @internal */
export const oneOf = (name: string, value: unknown, values: ReadonlyArray<string>): Effect.Effect<void, CommandError> =>
  typeof value === "string" && values.includes(value) ?
    Effect.void :
    fail(`Parameter '${name}' does not accept value '${String(value)}'`)
