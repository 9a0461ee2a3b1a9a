/**
 * QEMU's introspection as the generator reads it: entries by name, commands and events in name
 * order, and what each type refers to.
 *
 * @since 0.1.0
 */
import type { SchemaInfo } from "../QmpSchema.js"

/** @since 0.1.0 */
export type Command = Extract<SchemaInfo, { readonly "meta-type": "command" }>
/** @since 0.1.0 */
export type Event = Extract<SchemaInfo, { readonly "meta-type": "event" }>
/** @since 0.1.0 */
export type ObjectType = Extract<SchemaInfo, { readonly "meta-type": "object" }>
/** @since 0.1.0 */
export type EnumType = Extract<SchemaInfo, { readonly "meta-type": "enum" }>
/** @since 0.1.0 */
export type ArrayType = Extract<SchemaInfo, { readonly "meta-type": "array" }>
/** @since 0.1.0 */
export type AlternateType = Extract<SchemaInfo, { readonly "meta-type": "alternate" }>
/** @since 0.1.0 */
export type BuiltinType = Extract<SchemaInfo, { readonly "meta-type": "builtin" }>
/** @since 0.1.0 */
export type Type = ObjectType | EnumType | ArrayType | AlternateType | BuiltinType

/**
 * @since 0.1.0
 * @category models
 */
export interface Model {
  readonly types: ReadonlyMap<string, Type>
  /** In name order. */
  readonly commands: ReadonlyArray<Command>
  /** In name order. */
  readonly events: ReadonlyArray<Event>
}

const byName = <A extends { readonly name: string }>(a: A, b: A): number =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : 0

/**
 * Sorts the entries; fails with a message if a name is given twice, or a type that something
 * refers to is not there.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (entries: ReadonlyArray<SchemaInfo>): Model => {
  const types = new Map<string, Type>()
  const commands: Array<Command> = []
  const events: Array<Event> = []
  const seen = new Set<string>()
  for (const entry of entries) {
    const key = `${
      entry["meta-type"] === "command" || entry["meta-type"] === "event" ? entry["meta-type"] : "type"
    }:${entry.name}`
    if (seen.has(key)) throw new Error(`the introspection names ${key} twice`)
    seen.add(key)
    switch (entry["meta-type"]) {
      case "command":
        commands.push(entry)
        break
      case "event":
        events.push(entry)
        break
      default:
        types.set(entry.name, entry)
    }
  }
  const model: Model = { types, commands: commands.sort(byName), events: events.sort(byName) }
  const need = (name: string, where: string) => {
    if (!types.has(name)) {
      throw new Error(`${where} refers to type ${JSON.stringify(name)}, which the introspection lacks`)
    }
  }
  for (const command of model.commands) {
    need(command["arg-type"], `command ${command.name}`)
    need(command["ret-type"], `command ${command.name}`)
  }
  for (const event of model.events) need(event["arg-type"], `event ${event.name}`)
  for (const type of types.values()) {
    for (const ref of references(type)) need(ref, `type ${type.name}`)
  }
  return model
}

/**
 * The types a type refers to, in order: members, then variants (objects); the element (arrays); the
 * alternatives (alternates).
 *
 * @since 0.1.0
 * @category models
 */
export const references = (type: Type): ReadonlyArray<string> => {
  switch (type["meta-type"]) {
    case "object":
      return [...type.members.map((member) => member.type), ...(type.variants ?? []).map((variant) => variant.type)]
    case "array":
      return [type["element-type"]]
    case "alternate":
      return type.members.map((member) => member.type)
    default:
      return []
  }
}

/**
 * The values of an enum: from `members` when QEMU gives them (6.2 and later), else `values`.
 *
 * @since 0.1.0
 * @category models
 */
export const enumValues = (type: EnumType): ReadonlyArray<string> =>
  type.members !== undefined ? type.members.map((member) => member.name) : type.values ?? []

/**
 * An object with no members and no variants: `{}`.
 *
 * @since 0.1.0
 * @category models
 */
export const isEmptyObject = (type: Type): boolean =>
  type["meta-type"] === "object" && type.members.length === 0 && (type.variants ?? []).length === 0

/**
 * A member with `default` (QEMU reports `null`) is optional.
 *
 * @since 0.1.0
 * @category models
 */
export const isOptional = (member: { readonly default?: unknown }): boolean => Object.hasOwn(member, "default")
