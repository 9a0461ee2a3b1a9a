/**
 * Is the QEMU running the QEMU a generated module was made from? `compare` walks both
 * introspections from the same places (each command's arguments and return, each event's data) and
 * reports where they differ: commands and events missing or new, members added, removed, retyped,
 * made required or optional, enum values added or removed. Type names are masked in both, so the
 * walk compares structure, never names.
 *
 * What a difference means at run time: a member or an enum value that the running QEMU added still
 * decodes (extra members are kept, enums are open); a command or event it lacks fails or never
 * comes; a member it removed or retyped fails the typed decode of a return, or keeps an event from
 * typed listeners.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Model from "./codegen/model.js"
import { QmpProtocolError } from "./QmpError.js"
import type { ExecuteError } from "./QmpError.js"
import type { Generated, SchemaInfo } from "./QmpSchema.js"
import { decodeIntrospection } from "./QmpSchema.js"

/**
 * One difference, at a path such as `command:blockdev-add arguments.cache.direct`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Difference {
  readonly path: string
  readonly kind:
    | "MemberAdded"
    | "MemberRemoved"
    | "Retyped"
    | "NowRequired"
    | "NowOptional"
    | "EnumValuesAdded"
    | "EnumValuesRemoved"
    | "VariantAdded"
    | "VariantRemoved"
  readonly detail: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Report {
  /** Commands of the module that the running QEMU lacks. */
  readonly missingCommands: ReadonlyArray<string>
  /** Commands of the running QEMU that the module lacks (`executeUnknown` runs them). */
  readonly newCommands: ReadonlyArray<string>
  readonly missingEvents: ReadonlyArray<string>
  readonly newEvents: ReadonlyArray<string>
  readonly differences: ReadonlyArray<Difference>
}

/** A difference that a typed call or listener can trip on (additions are not). */
const breaking: ReadonlySet<Difference["kind"]> = new Set([
  "MemberRemoved",
  "Retyped",
  "NowRequired",
  "EnumValuesRemoved",
  "VariantRemoved"
])

/**
 * `true` when nothing the module relies on is gone or changed: only additions (which still decode).
 *
 * @since 0.1.0
 * @category models
 */
export const isCompatible = (report: Report): boolean =>
  report.missingCommands.length === 0 && report.missingEvents.length === 0 &&
  report.differences.every((difference) => !breaking.has(difference.kind))

/** A type's kind, to tell a retyped member: `str`, `int`, `[...]`, `object`, `enum`, `alternate`. */
const kindOf = (model: Model.Model, type: string): string => {
  const info = model.types.get(type)!
  switch (info["meta-type"]) {
    case "builtin":
      return info["json-type"]
    case "array":
      return `array of ${kindOf(model, info["element-type"])}`
    default:
      return info["meta-type"]
  }
}

/**
 * The differences between the module's introspection (`ours`) and the running QEMU's (`theirs`).
 *
 * @since 0.1.0
 * @category comparing
 */
export const compare = (ours: ReadonlyArray<SchemaInfo>, theirs: ReadonlyArray<SchemaInfo>): Report => {
  const a = Model.make(ours)
  const b = Model.make(theirs)
  const differences: Array<Difference> = []
  const seen = new Set<string>()

  const walk = (path: string, typeA: string, typeB: string): void => {
    const key = `${typeA}\u0000${typeB}`
    if (seen.has(key)) return
    seen.add(key)
    const infoA = a.types.get(typeA)!
    const infoB = b.types.get(typeB)!
    const kindA = kindOf(a, typeA)
    const kindB = kindOf(b, typeB)
    if (kindA !== kindB) {
      differences.push({ path, kind: "Retyped", detail: `${kindA} in the module, ${kindB} in the running QEMU` })
      return
    }
    if (infoA["meta-type"] === "array" && infoB["meta-type"] === "array") {
      walk(`${path}[]`, infoA["element-type"], infoB["element-type"])
    } else if (infoA["meta-type"] === "enum" && infoB["meta-type"] === "enum") {
      const valuesA = new Set(Model.enumValues(infoA))
      const valuesB = new Set(Model.enumValues(infoB))
      const added = [...valuesB].filter((value) => !valuesA.has(value))
      const removed = [...valuesA].filter((value) => !valuesB.has(value))
      if (added.length > 0) differences.push({ path, kind: "EnumValuesAdded", detail: added.join(", ") })
      if (removed.length > 0) differences.push({ path, kind: "EnumValuesRemoved", detail: removed.join(", ") })
    } else if (infoA["meta-type"] === "alternate" && infoB["meta-type"] === "alternate") {
      const kindsA = infoA.members.map((member) => kindOf(a, member.type)).sort().join(" | ")
      const kindsB = infoB.members.map((member) => kindOf(b, member.type)).sort().join(" | ")
      if (kindsA !== kindsB) {
        differences.push({ path, kind: "Retyped", detail: `${kindsA} in the module, ${kindsB} in the running QEMU` })
      }
    } else if (infoA["meta-type"] === "object" && infoB["meta-type"] === "object") {
      const membersB = new Map(infoB.members.map((member) => [member.name, member]))
      for (const member of infoA.members) {
        const other = membersB.get(member.name)
        const at = `${path}.${member.name}`
        if (other === undefined) {
          differences.push({ path: at, kind: "MemberRemoved", detail: "the running QEMU has no such member" })
          continue
        }
        if (Model.isOptional(member) && !Model.isOptional(other)) {
          differences.push({ path: at, kind: "NowRequired", detail: "optional in the module, required now" })
        } else if (!Model.isOptional(member) && Model.isOptional(other)) {
          differences.push({ path: at, kind: "NowOptional", detail: "required in the module, optional now" })
        }
        walk(at, member.type, other.type)
      }
      const membersA = new Set(infoA.members.map((member) => member.name))
      for (const member of infoB.members) {
        if (!membersA.has(member.name)) {
          differences.push({
            path: `${path}.${member.name}`,
            kind: "MemberAdded",
            detail: `${Model.isOptional(member) ? "optional" : "required"} ${kindOf(b, member.type)}`
          })
        }
      }
      const variantsB = new Map((infoB.variants ?? []).map((variant) => [variant.case, variant.type]))
      for (const variant of infoA.variants ?? []) {
        const other = variantsB.get(variant.case)
        if (other === undefined) {
          differences.push({ path: `${path}|${variant.case}`, kind: "VariantRemoved", detail: "no such variant now" })
        } else {
          walk(`${path}|${variant.case}`, variant.type, other)
        }
      }
      const casesA = new Set((infoA.variants ?? []).map((variant) => variant.case))
      for (const variant of infoB.variants ?? []) {
        if (!casesA.has(variant.case)) {
          differences.push({ path: `${path}|${variant.case}`, kind: "VariantAdded", detail: "a new variant" })
        }
      }
    }
  }

  const commandsB = new Map(b.commands.map((command) => [command.name, command]))
  const eventsB = new Map(b.events.map((event) => [event.name, event]))
  for (const command of a.commands) {
    const other = commandsB.get(command.name)
    if (other === undefined) continue
    walk(`command:${command.name} arguments`, command["arg-type"], other["arg-type"])
    walk(`command:${command.name} return`, command["ret-type"], other["ret-type"])
  }
  for (const event of a.events) {
    const other = eventsB.get(event.name)
    if (other !== undefined) walk(`event:${event.name} data`, event["arg-type"], other["arg-type"])
  }
  const commandsA = new Set(a.commands.map((command) => command.name))
  const eventsA = new Set(a.events.map((event) => event.name))
  return {
    missingCommands: a.commands.map((command) => command.name).filter((name) => !commandsB.has(name)),
    newCommands: b.commands.map((command) => command.name).filter((name) => !commandsA.has(name)),
    missingEvents: a.events.map((event) => event.name).filter((name) => !eventsB.has(name)),
    newEvents: b.events.map((event) => event.name).filter((name) => !eventsA.has(name)),
    differences
  }
}

/**
 * Compares a generated module with the QEMU a client is connected to (its `query-qmp-schema`).
 *
 * @since 0.1.0
 * @category comparing
 */
export const check = (
  client: {
    readonly executeUnknown: (command: string) => Effect.Effect<unknown, ExecuteError>
  },
  module: Generated<any, any>
): Effect.Effect<Report, ExecuteError> =>
  Effect.gen(function*() {
    const live = decodeIntrospection(yield* client.executeUnknown("query-qmp-schema"))
    if (Either.isLeft(live)) {
      return yield* new QmpProtocolError({
        reason: "UnexpectedReturn",
        detail: `query-qmp-schema: ${live.left.message}`
      })
    }
    const ours = yield* Effect.promise(() => module.introspection())
    return compare(ours, live.right)
  })

/**
 * The report as lines for a person: what is missing, what is new, each difference.
 *
 * @since 0.1.0
 * @category formatting
 */
export const format = (report: Report, module: { readonly qemu: string }): ReadonlyArray<string> => {
  const lines: Array<string> = []
  const list = (title: string, names: ReadonlyArray<string>) => {
    if (names.length > 0) lines.push(`${title} (${names.length}): ${names.join(", ")}`)
  }
  list(`Commands of QEMU ${module.qemu}'s module that this QEMU lacks`, report.missingCommands)
  list(`Events of QEMU ${module.qemu}'s module that this QEMU lacks`, report.missingEvents)
  list("Commands this QEMU has that the module lacks (run them with executeUnknown)", report.newCommands)
  list("Events this QEMU has that the module lacks (listen with listenerUnknown)", report.newEvents)
  for (const difference of report.differences) {
    lines.push(`${difference.path}: ${difference.kind}: ${difference.detail}`)
  }
  if (lines.length === 0) lines.push(`This QEMU's schema is QEMU ${module.qemu}'s module's, exactly.`)
  else if (isCompatible(report)) lines.push("Compatible: the differences are additions, which still decode.")
  else lines.push("Not compatible: typed calls or listeners can fail on the differences above.")
  return lines
}
