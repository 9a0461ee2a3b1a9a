/**
 * QEMU's QMP schema as data: the reply of `query-qmp-schema` (QEMU's introspection), what a module
 * generated from it looks like, and what the generated Schemas are built with.
 *
 * QEMU describes every command, event and type it has in its introspection: an array of entries,
 * each a command (its argument type and return type), an event (its data type), or a type (an
 * object with members, perhaps a flat union of variants; an enum; an array; an alternate; a
 * builtin). Type names are masked (numbers), so that clients depend on structure, not names.
 * `npm run codegen` (and `qmp codegen`) turn such a reply into a module of interfaces and Schemas,
 * for `QmpClient` and `QmpEvents` to type commands and events with; `SchemaCheck` compares a module
 * with the QEMU actually running.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import * as Schema from "effect/Schema"
import { unknownEnumValuesKey } from "./internal/metrics.js"

// ---------------------------------------------------------------------------------------------------
// The introspection reply

const Features = Schema.optional(Schema.Array(Schema.String))

/**
 * A member of an object type. A member with `default` (always `null`) is optional.
 *
 * @since 0.1.0
 * @category introspection
 */
export const ObjectMember = Schema.Struct({
  name: Schema.String,
  type: Schema.String,
  default: Schema.optional(Schema.Unknown),
  features: Features
})

/**
 * @since 0.1.0
 * @category introspection
 */
export const SchemaInfo = Schema.Union(
  Schema.Struct({
    name: Schema.String,
    "meta-type": Schema.Literal("command"),
    "arg-type": Schema.String,
    "ret-type": Schema.String,
    "allow-oob": Schema.optional(Schema.Boolean),
    features: Features
  }),
  Schema.Struct({
    name: Schema.String,
    "meta-type": Schema.Literal("event"),
    "arg-type": Schema.String,
    features: Features
  }),
  Schema.Struct({
    name: Schema.String,
    "meta-type": Schema.Literal("object"),
    members: Schema.Array(ObjectMember),
    tag: Schema.optional(Schema.String),
    variants: Schema.optional(Schema.Array(Schema.Struct({ case: Schema.String, type: Schema.String }))),
    features: Features
  }),
  Schema.Struct({
    name: Schema.String,
    "meta-type": Schema.Literal("enum"),
    // Since QEMU 6.2 `members` (with features); `values` is there in every version.
    members: Schema.optional(Schema.Array(Schema.Struct({ name: Schema.String, features: Features }))),
    values: Schema.optional(Schema.Array(Schema.String)),
    features: Features
  }),
  Schema.Struct({
    name: Schema.String,
    "meta-type": Schema.Literal("array"),
    "element-type": Schema.String,
    features: Features
  }),
  Schema.Struct({
    name: Schema.String,
    "meta-type": Schema.Literal("alternate"),
    members: Schema.Array(Schema.Struct({ type: Schema.String })),
    features: Features
  }),
  Schema.Struct({
    name: Schema.String,
    "meta-type": Schema.Literal("builtin"),
    "json-type": Schema.String,
    features: Features
  })
).annotations({ identifier: "SchemaInfo" })

/**
 * One entry of `query-qmp-schema`.
 *
 * @since 0.1.0
 * @category introspection
 */
export type SchemaInfo = Schema.Schema.Type<typeof SchemaInfo>

/**
 * The whole reply of `query-qmp-schema`. Members a newer QEMU adds to an entry are kept.
 *
 * @since 0.1.0
 * @category introspection
 */
export const Introspection: Schema.Schema<ReadonlyArray<SchemaInfo>> = Schema.Array(SchemaInfo)

/**
 * Reads a `query-qmp-schema` reply (or its text), or says where it is not one.
 *
 * @since 0.1.0
 * @category introspection
 */
export const decodeIntrospection = Schema.decodeUnknownEither(Introspection, { onExcessProperty: "preserve" })

// ---------------------------------------------------------------------------------------------------
// A generated module

/**
 * What a generated module tells about one command.
 *
 * @since 0.1.0
 * @category generated
 */
export interface CommandInfo {
  /** The command takes arguments, some required: `execute` must be given them. */
  readonly argsRequired: boolean
  /** QEMU runs it out of band (`exec-oob`) when asked. */
  readonly allowOob: boolean
  /** QEMU's features of the command: `deprecated`, `unstable`, ... */
  readonly features: ReadonlyArray<string>
}

/**
 * The shape of a generated command map: for each command, its arguments and its return, as types.
 *
 * @since 0.1.0
 * @category generated
 */
export interface CommandShape {
  readonly args: object
  readonly return: unknown
  readonly argsRequired: boolean
}

/**
 * The shape of a generated event map: for each event, its `data` (`undefined` for none), as a type.
 *
 * @since 0.1.0
 * @category generated
 */
export interface EventShape {
  readonly data: object | undefined
}

/**
 * The Schemas of a generated module, loaded when a typed decode first needs them.
 *
 * @since 0.1.0
 * @category generated
 */
export interface Schemas {
  /** For each command, the Schema of its return. */
  readonly returns: Readonly<Record<string, Schema.Schema<any, any>>>
  /** For each command, the Schema of its arguments. */
  readonly arguments: Readonly<Record<string, Schema.Schema<any, any>>>
  /** For each event that carries data, the Schema of its `data`. */
  readonly events: Readonly<Record<string, Schema.Schema<any, any>>>
}

/**
 * A module generated from QEMU's introspection (`npm run codegen`, `qmp codegen`). `Commands` and
 * `Events` are its maps of types; at run time it lists names and loads its Schemas on demand.
 *
 * @since 0.1.0
 * @category generated
 */
export interface Generated<
  Commands extends { readonly [C in keyof Commands]: CommandShape } = Record<string, CommandShape>,
  Events extends { readonly [E in keyof Events]: EventShape } = Record<string, EventShape>
> {
  /** The QEMU the module was generated from: `7.2.22` (its `query-version`). */
  readonly qemu: string
  readonly commands: Readonly<Record<keyof Commands & string, CommandInfo>>
  readonly events: Readonly<
    Record<keyof Events & string, { readonly data: boolean; readonly features: ReadonlyArray<string> }>
  >
  /** The module's Schemas: the same promise every time. */
  readonly schemas: () => Promise<Schemas>
  /** The introspection it was generated from, for `SchemaCheck`. */
  readonly introspection: () => Promise<ReadonlyArray<SchemaInfo>>
  /** Phantom: the maps of types. */
  readonly Commands?: Commands
  readonly Events?: Events
}

// ---------------------------------------------------------------------------------------------------
// What generated Schemas are built with

/** `QmpMetrics.unknownEnumValues`. */
const unknownEnumValues: Metric.Metric.Counter<number> = Metric.fromMetricKey(unknownEnumValuesKey)

const seenUnknown = new Set<string>()
const pendingUnknown: Array<{ readonly enumName: string; readonly value: string }> = []

/**
 * The values of generated enums met since the last call, each reported once per process: for the
 * caller to log. `QmpClient` and `QmpEvents` drain them after each decode.
 *
 * @since 0.1.0
 * @category generated
 */
export const takeUnknownEnumValues = (): ReadonlyArray<{ readonly enumName: string; readonly value: string }> =>
  pendingUnknown.length === 0 ? [] : pendingUnknown.splice(0)

/**
 * `true` if `takeUnknownEnumValues` has values to give.
 *
 * @since 0.1.0
 * @category generated
 */
export const hasUnknownEnumValues = (): boolean => pendingUnknown.length > 0

/**
 * A QEMU enum: closed in the types (`"running" | "paused" | ...`), open at run time, so that a newer
 * QEMU's new value still decodes. An unknown value is counted (`QmpMetrics.unknownEnumValues`,
 * tagged with the enum's name) and reported once per process through `takeUnknownEnumValues`.
 *
 * @since 0.1.0
 * @category generated
 */
export const openEnum = <const Values extends ReadonlyArray<string>>(
  enumName: string,
  values: Values
): Schema.Schema<Values[number]> => {
  const known = new Set<string>(values)
  const counter = Metric.tagged(unknownEnumValues, "enum", enumName)
  return Schema.String.pipe(
    Schema.filter((value) => {
      if (!known.has(value)) {
        counter.unsafeUpdate(1, [])
        const key = `${enumName}\u0000${value}`
        if (!seenUnknown.has(key)) {
          seenUnknown.add(key)
          pendingUnknown.push({ enumName, value })
        }
      }
      return true
    }),
    Schema.annotations({ identifier: enumName, description: `one of ${values.join(", ")} (or a newer value)` })
  ) as unknown as Schema.Schema<Values[number]>
}

/**
 * The tag of a flat union's variant that a newer QEMU added (a new block driver, say): any value the
 * generated module did not list, counted and reported as `openEnum`'s.
 *
 * @since 0.1.0
 * @category generated
 */
export const unknownCase = (unionName: string, cases: ReadonlyArray<string>): Schema.Schema<string> => {
  const known = new Set(cases)
  const counter = Metric.tagged(unknownEnumValues, "enum", unionName)
  return Schema.String.pipe(
    Schema.filter((value) => {
      if (known.has(value)) return false
      counter.unsafeUpdate(1, [])
      const key = `${unionName}\u0000${value}`
      if (!seenUnknown.has(key)) {
        seenUnknown.add(key)
        pendingUnknown.push({ enumName: unionName, value })
      }
      return true
    })
  )
}

/**
 * A variant that decodes at run time but is not in the type: the variant of a newer QEMU's tag
 * value, which the generated types leave out (they are closed), and Schemas accept (they are open).
 *
 * @since 0.1.0
 * @category generated
 */
export const newerVariant = <A, I, R>(schema: Schema.Schema<A, I, R>): Schema.Schema<never, never, R> =>
  schema as unknown as Schema.Schema<never, never, R>
