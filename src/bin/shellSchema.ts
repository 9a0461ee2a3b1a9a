/**
 * What `qmp shell` knows of the commands' arguments, read from the live `query-qmp-schema` through
 * the generator's model (`codegen/model.ts`, the same reading of the introspection that generated
 * modules come from): the members at a dotted key, following the variant a union's tag chooses; the
 * values of an enum; whether a value must be sent as a string; and the actions of `transaction`.
 *
 * @since 0.1.0
 */
import * as Model from "../codegen/model.js"
import type { SchemaInfo } from "../QmpSchema.js"

/**
 * A member of an object at some key: its name, and what Tab may add after it (`=` for a value, `.`
 * for the members of an object, both for an alternate that may be either).
 *
 * @since 0.1.0
 * @category models
 */
export interface Member {
  readonly name: string
  readonly value: boolean
  readonly object: boolean
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ArgumentSchema {
  /** The type of a command's arguments, or `undefined` for a command the schema lacks. */
  readonly argumentsOf: (command: string) => string | undefined
  /**
   * The members of the object at `path` under `type` (the top level for `[]`), with those of the
   * variant that the tag's value in `given` chooses.
   */
  readonly membersAt: (type: string, path: ReadonlyArray<string>, given: unknown) => ReadonlyArray<Member>
  /** The values `path` may take, when it is an enum (or a boolean). */
  readonly valuesAt: (type: string, path: ReadonlyArray<string>, given: unknown) => ReadonlyArray<string>
  /**
   * Whether `text`, given at `path`, must be sent as a string: its member is a string or an enum, or
   * an alternate with a string branch and no branch for the JSON value `text` reads as.
   */
  readonly wantsString: (type: string, path: ReadonlyArray<string>, given: unknown, text: string) => boolean
  /** The actions `transaction` takes (`block-dirty-bitmap-add`, ...), and the type of each one's `data`. */
  readonly transactionActions: ReadonlyMap<string, string>
}

const isObject = (u: unknown): u is Readonly<Record<string, unknown>> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * Reads the schema of a live QEMU (`query-qmp-schema`'s reply).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (introspection: ReadonlyArray<SchemaInfo>): ArgumentSchema => {
  const model = Model.make(introspection)
  const commands = new Map(model.commands.map((command) => [command.name, command["arg-type"]]))

  /** An alternate's object branch (`BlockdevRef`: the options, or a node name), if it has one. */
  const objectOf = (name: string): Model.ObjectType | undefined => {
    const type = model.types.get(name)
    if (type === undefined) return undefined
    if (type["meta-type"] === "object") return type
    if (type["meta-type"] === "alternate") {
      for (const branch of type.members) {
        const found = model.types.get(branch.type)
        if (found?.["meta-type"] === "object") return found
      }
    }
    return undefined
  }

  /** An object's members, with those of the variant its tag's value in `given` chooses. */
  const membersOf = (object: Model.ObjectType, given: unknown) => {
    const tag = object.tag
    if (tag === undefined || !isObject(given)) return object.members
    const chosen = given[tag]
    const variant = (object.variants ?? []).find((v) => v.case === chosen)
    const variantType = variant === undefined ? undefined : model.types.get(variant.type)
    return variantType?.["meta-type"] === "object" ? [...object.members, ...variantType.members] : object.members
  }

  /** The type of the member at `path`, and the part of `given` beside it. */
  const typeAt = (type: string, path: ReadonlyArray<string>, given: unknown): string | undefined => {
    let current = type
    let value = given
    for (const part of path) {
      const object = objectOf(current)
      if (object === undefined) return undefined
      const member = membersOf(object, value).find((m) => m.name === part)
      if (member === undefined) return undefined
      current = member.type
      value = isObject(value) ? value[part] : undefined
    }
    return current
  }

  /** What `type`'s values read as in JSON: `string`, `int`, `number`, `boolean`, `null`, `object`, `array`. */
  const jsonKinds = (name: string): ReadonlyArray<string> => {
    const type = model.types.get(name)
    switch (type?.["meta-type"]) {
      case "builtin":
        return type["json-type"] === "value" ? ["any"] : [type["json-type"]]
      case "enum":
        return ["string"]
      case "object":
        return ["object"]
      case "array":
        return ["array"]
      case "alternate":
        return type.members.flatMap((branch) => jsonKinds(branch.type))
      default:
        return ["any"]
    }
  }

  const kindOfText = (text: string): string => {
    try {
      const value: unknown = JSON.parse(text)
      if (value === null) return "null"
      if (Array.isArray(value)) return "array"
      if (typeof value === "number") return Number.isInteger(value) ? "int" : "number"
      return typeof value
    } catch {
      return "string"
    }
  }

  const transactionActions = new Map<string, string>()
  const transaction = commands.get("transaction")
  const actions = transaction === undefined ?
    undefined :
    objectOf(transaction)?.members.find((m) => m.name === "actions")
  const actionType = actions === undefined ? undefined : model.types.get(actions.type)
  const action = actionType?.["meta-type"] === "array" ? objectOf(actionType["element-type"]) : undefined
  for (const variant of action?.variants ?? []) {
    const wrapper = objectOf(variant.type)
    const data = wrapper?.members.find((m) => m.name === "data")
    if (data !== undefined) transactionActions.set(variant.case, data.type)
  }

  return {
    argumentsOf: (command) => commands.get(command),
    membersAt: (type, path, given) => {
      const at = typeAt(type, path, given)
      const object = at === undefined ? undefined : objectOf(at)
      if (object === undefined) return []
      let value = given
      for (const part of path) value = isObject(value) ? value[part] : undefined
      return membersOf(object, value).map((member) => {
        const kinds = jsonKinds(member.type)
        return {
          name: member.name,
          object: kinds.includes("object"),
          value: kinds.some((kind) => kind !== "object")
        }
      })
    },
    valuesAt: (type, path, given) => {
      const at = typeAt(type, path, given)
      const info = at === undefined ? undefined : model.types.get(at)
      if (info?.["meta-type"] === "enum") return Model.enumValues(info)
      if (info?.["meta-type"] === "builtin" && info["json-type"] === "boolean") return ["true", "false"]
      return []
    },
    wantsString: (type, path, given, text) => {
      const at = typeAt(type, path, given)
      if (at === undefined) return false
      const kinds = jsonKinds(at)
      if (!kinds.includes("string") || kinds.includes("any")) return false
      const kind = kindOfText(text)
      if (kind === "string") return false
      // An alternate takes the value as it reads when a branch can (an int for an int branch).
      const accepted = kind === "int" ? ["int", "number"] : [kind]
      return !kinds.some((k) => accepted.includes(k))
    },
    transactionActions
  }
}
