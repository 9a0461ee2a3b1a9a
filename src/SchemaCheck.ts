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
  /**
   * A typed call or listener can trip on it. Which differences can depends on the direction: in what
   * QEMU sends (returns, events' data), a removed or newly optional member can be missing and a
   * retyped one fails, while additions still decode; in what it is sent (arguments), a removed
   * member, enum value or variant, a member newly required and a required member added make calls
   * QEMU refuses, while additions of what may be left out do not.
   */
  readonly breaking: boolean
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
  /** Events of the module that the running QEMU lacks: their typed listeners hear nothing. */
  readonly missingEvents: ReadonlyArray<string>
  /** Events of the running QEMU that the module lacks (`listenerUnknown` hears them). */
  readonly newEvents: ReadonlyArray<string>
  /** Where the types of what both have differ; a type shared by several places is reported once. */
  readonly differences: ReadonlyArray<Difference>
}

/**
 * `true` when nothing the module relies on is gone or changed: no command or event missing, no
 * breaking difference.
 *
 * @since 0.1.0
 * @category models
 */
export const isCompatible = (report: Report): boolean =>
  report.missingCommands.length === 0 && report.missingEvents.length === 0 &&
  report.differences.every((difference) => !difference.breaking)

/** Which kinds of difference break what QEMU sends (`received`) and what it is sent (`sent`). */
const breaks = {
  received: new Set<Difference["kind"]>(["MemberRemoved", "Retyped", "NowOptional"]),
  sent: new Set<Difference["kind"]>(["MemberRemoved", "Retyped", "NowRequired", "EnumValuesRemoved", "VariantRemoved"])
} as const

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
  let direction: keyof typeof breaks = "received"
  const differ = (path: string, kind: Difference["kind"], detail: string, breaking = breaks[direction].has(kind)) =>
    differences.push({ path, kind, detail, breaking })

  const walk = (path: string, typeA: string, typeB: string): void => {
    const key = `${direction}\u0000${typeA}\u0000${typeB}`
    if (seen.has(key)) return
    seen.add(key)
    const infoA = a.types.get(typeA)!
    const infoB = b.types.get(typeB)!
    const kindA = kindOf(a, typeA)
    const kindB = kindOf(b, typeB)
    if (kindA !== kindB) {
      differ(path, "Retyped", `${kindA} in the module, ${kindB} in the running QEMU`)
      return
    }
    if (infoA["meta-type"] === "array" && infoB["meta-type"] === "array") {
      walk(`${path}[]`, infoA["element-type"], infoB["element-type"])
    } else if (infoA["meta-type"] === "enum" && infoB["meta-type"] === "enum") {
      const valuesA = new Set(Model.enumValues(infoA))
      const valuesB = new Set(Model.enumValues(infoB))
      const added = [...valuesB].filter((value) => !valuesA.has(value))
      const removed = [...valuesA].filter((value) => !valuesB.has(value))
      if (added.length > 0) differ(path, "EnumValuesAdded", added.join(", "))
      if (removed.length > 0) differ(path, "EnumValuesRemoved", removed.join(", "))
    } else if (infoA["meta-type"] === "alternate" && infoB["meta-type"] === "alternate") {
      const kindsA = infoA.members.map((member) => kindOf(a, member.type)).sort().join(" | ")
      const kindsB = infoB.members.map((member) => kindOf(b, member.type)).sort().join(" | ")
      if (kindsA !== kindsB) {
        differ(path, "Retyped", `${kindsA} in the module, ${kindsB} in the running QEMU`)
      }
    } else if (infoA["meta-type"] === "object" && infoB["meta-type"] === "object") {
      const membersB = new Map(infoB.members.map((member) => [member.name, member]))
      for (const member of infoA.members) {
        const other = membersB.get(member.name)
        const at = `${path}.${member.name}`
        if (other === undefined) {
          differ(
            at,
            "MemberRemoved",
            "the running QEMU has no such member",
            // What QEMU sends may lack a member the module has as optional.
            direction === "sent" || !Model.isOptional(member)
          )
          continue
        }
        if (Model.isOptional(member) && !Model.isOptional(other)) {
          differ(at, "NowRequired", "optional in the module, required now")
        } else if (!Model.isOptional(member) && Model.isOptional(other)) {
          differ(at, "NowOptional", "required in the module, optional now")
        }
        walk(at, member.type, other.type)
      }
      const membersA = new Set(infoA.members.map((member) => member.name))
      for (const member of infoB.members) {
        if (!membersA.has(member.name)) {
          differ(
            `${path}.${member.name}`,
            "MemberAdded",
            `${Model.isOptional(member) ? "optional" : "required"} ${kindOf(b, member.type)}`,
            // A call that leaves out a member QEMU now requires is refused.
            direction === "sent" && !Model.isOptional(member)
          )
        }
      }
      const variantsB = new Map((infoB.variants ?? []).map((variant) => [variant.case, variant.type]))
      for (const variant of infoA.variants ?? []) {
        const other = variantsB.get(variant.case)
        if (other === undefined) {
          differ(`${path}|${variant.case}`, "VariantRemoved", "no such variant now")
        } else {
          walk(`${path}|${variant.case}`, variant.type, other)
        }
      }
      const casesA = new Set((infoA.variants ?? []).map((variant) => variant.case))
      for (const variant of infoB.variants ?? []) {
        if (!casesA.has(variant.case)) {
          differ(`${path}|${variant.case}`, "VariantAdded", "a new variant")
        }
      }
    }
  }

  const commandsB = new Map(b.commands.map((command) => [command.name, command]))
  const eventsB = new Map(b.events.map((event) => [event.name, event]))
  for (const command of a.commands) {
    const other = commandsB.get(command.name)
    if (other === undefined) continue
    direction = "sent"
    walk(`command:${command.name} arguments`, command["arg-type"], other["arg-type"])
    direction = "received"
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
 * Compares a generated module (or a saved introspection) with the QEMU a client is connected to
 * (its `query-qmp-schema`).
 *
 * @since 0.1.0
 * @category comparing
 */
export const check = (
  client: {
    readonly executeUnknown: (command: string) => Effect.Effect<unknown, ExecuteError>
  },
  against: Generated<any, any> | ReadonlyArray<SchemaInfo>
): Effect.Effect<Report, ExecuteError> =>
  Effect.gen(function*() {
    const live = decodeIntrospection(yield* client.executeUnknown("query-qmp-schema"))
    if (Either.isLeft(live)) {
      return yield* new QmpProtocolError({
        reason: "UnexpectedReturn",
        detail: `query-qmp-schema: ${live.left.message}`
      })
    }
    const ours = isIntrospection(against) ? against : yield* Effect.promise(() => against.introspection())
    return compare(ours, live.right)
  })

const isIntrospection = (u: Generated<any, any> | ReadonlyArray<SchemaInfo>): u is ReadonlyArray<SchemaInfo> =>
  Array.isArray(u)

/**
 * The report as lines for a person: what is missing, what is new, each difference. `against` names
 * what the QEMU was compared with: a module (`QEMU 7.2.22's module`), or any label.
 *
 * @since 0.1.0
 * @category formatting
 */
export const format = (report: Report, against: { readonly qemu: string } | string): ReadonlyArray<string> => {
  const ours = typeof against === "string" ? against : `QEMU ${against.qemu}'s module`
  const lines: Array<string> = []
  const list = (title: string, names: ReadonlyArray<string>) => {
    if (names.length > 0) lines.push(`${title} (${names.length}): ${names.join(", ")}`)
  }
  list(`Commands of ${ours} that this QEMU lacks`, report.missingCommands)
  list(`Events of ${ours} that this QEMU lacks`, report.missingEvents)
  list(`Commands this QEMU has that ${ours} lacks (run them with executeUnknown)`, report.newCommands)
  list(`Events this QEMU has that ${ours} lacks (listen with listenerUnknown)`, report.newEvents)
  for (const difference of report.differences) {
    lines.push(`${difference.breaking ? "! " : ""}${difference.path}: ${difference.kind}: ${difference.detail}`)
  }
  if (lines.length === 0) lines.push(`This QEMU's schema is ${ours}'s, exactly.`)
  else if (isCompatible(report)) lines.push("Compatible: the differences are additions, which still decode.")
  else lines.push("Not compatible: typed calls or listeners can fail on what is missing, or marked with !, above.")
  return lines
}
