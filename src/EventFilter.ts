/**
 * Event filters: predicates that decide which events a listener accepts, after its names.
 *
 * A filter is a plain function, as in QEMU's Python client. The ones built here are Schema-validated:
 * {@link fromSchema} accepts an event iff it decodes with a schema, and {@link data} builds such a
 * schema from a pattern of fields. A filter sees only events that passed the check against
 * `QmpMessage.Event`; it may still throw on an event it did not expect, which closes its listener
 * with a `ListenerError` (never the connection).
 *
 * @since 0.1.0
 */
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { QmpEvent } from "./QmpMessage.js"

/**
 * `true` if the listener should accept the event. A typed listener's filter sees its typed events
 * (`EventFilter<EventOf<"JOB_STATUS_CHANGE">>`); the filters built here take any event, so they fit
 * every listener.
 *
 * @since 0.1.0
 * @category models
 */
export type EventFilter<E extends { readonly event: string } = QmpEvent> = (event: E) => boolean

/**
 * Accepts an event iff it decodes with `schema` (the schema's encoded side is the wire shape).
 *
 * @example
 * ```ts
 * const ShutdownByGuest = Schema.Struct({
 *   event: Schema.Literal("SHUTDOWN"),
 *   data: Schema.Struct({ guest: Schema.Literal(true) })
 * })
 * const filter = EventFilter.fromSchema(ShutdownByGuest)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromSchema = <A, I>(schema: Schema.Schema<A, I, never>): EventFilter => {
  // exact: a field the schema requires must be an own property, as in `data`.
  const decode = ParseResult.decodeUnknownEither(schema, { exact: true })
  return (event) => decode(event)._tag === "Right"
}

/**
 * A pattern of event data: literal values, nested patterns, and arrays matched element by element.
 *
 * @since 0.1.0
 * @category models
 */
export type DataPattern = { readonly [key: string]: PatternValue }

/**
 * @since 0.1.0
 * @category models
 */
export type PatternValue = string | number | boolean | null | DataPattern | ReadonlyArray<PatternValue>

const patternSchema = (value: PatternValue): Schema.Schema.Any => {
  if (value === null || typeof value !== "object") return Schema.Literal(value)
  if (Array.isArray(value)) return Schema.Tuple(...value.map(patternSchema))
  const fields: Record<string, Schema.Schema.Any> = Object.create(null) // a "__proto__" key stays a field
  for (const key of Object.keys(value)) {
    fields[key] = patternSchema((value as DataPattern)[key])
  }
  // An empty Struct accepts any non-nullish value: a nested pattern, even `{}`, must match an object.
  return Schema.Struct(fields).pipe(
    Schema.filter((u) => typeof u === "object" && u !== null && !Array.isArray(u))
  )
}

/**
 * Accepts an event whose `data` has these fields with these values: deep and partial (other fields
 * may be present), own properties only (a field inherited from a prototype never matches). Arrays
 * match element by element and must have the same length.
 *
 * @example
 * ```ts
 * // JOB_STATUS_CHANGE events of job "job1" only
 * qmp.listener("JOB_STATUS_CHANGE", EventFilter.data({ id: "job1" }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const data = (pattern: DataPattern): EventFilter => {
  const is = Schema.is(Schema.Struct({ data: patternSchema(pattern) }))
  return (event) => is(event)
}

/**
 * Accepts an event accepted by every filter (and every event, given none).
 *
 * @since 0.1.0
 * @category combinators
 */
export const and =
  <E extends { readonly event: string } = QmpEvent>(...filters: ReadonlyArray<EventFilter<E>>): EventFilter<E> =>
  (event) => {
    for (const filter of filters) {
      if (!filter(event)) return false
    }
    return true
  }

/**
 * Accepts an event accepted by any of the filters (and no event, given none).
 *
 * @since 0.1.0
 * @category combinators
 */
export const or =
  <E extends { readonly event: string } = QmpEvent>(...filters: ReadonlyArray<EventFilter<E>>): EventFilter<E> =>
  (event) => {
    for (const filter of filters) {
      if (filter(event)) return true
    }
    return false
  }

/**
 * Accepts the events that `filter` rejects.
 *
 * @since 0.1.0
 * @category combinators
 */
export const not =
  <E extends { readonly event: string } = QmpEvent>(filter: EventFilter<E>): EventFilter<E> => (event) => !filter(event)

/**
 * Accepts events with one of these names. Listeners take names of their own (which dispatch indexes);
 * this is for composing with `or`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const names = (...names: ReadonlyArray<string>): EventFilter => {
  const set = new Set(names)
  return (event) => set.has(event.event)
}
