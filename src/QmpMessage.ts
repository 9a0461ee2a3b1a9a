/**
 * The messages of the QEMU Machine Protocol, as `effect/Schema` definitions.
 *
 * QMP is line-delimited JSON: QEMU greets, the client negotiates capabilities, then sends commands
 * and receives one reply per command (`return` or `error`) and, at any time, asynchronous events.
 * These schemas are the definitions every incoming message is checked against.
 *
 * On the hot path (thousands of events a second) the client checks events with {@link isEvent}, a
 * hand-written guard that accepts exactly what {@link Event} decodes (a property test proves the two
 * agree); the schema is then used to explain a rejection.
 *
 * @since 0.1.0
 */
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/**
 * A JSON object as it was parsed from the wire: read-only by convention.
 *
 * @since 0.1.0
 * @category models
 */
export type JsonObject = Readonly<Record<string, unknown>>

/**
 * A JSON object taken as it is: checked to be a plain object, never copied. Copying untrusted
 * input through `Schema.Record` would let a wire key `"__proto__"` set the copy's prototype.
 *
 * @since 0.1.0
 * @category schemas
 */
export const JsonObject: Schema.Schema<JsonObject> = Schema.declare(
  (u: unknown): u is JsonObject => isJsonObject(u),
  { identifier: "JsonObject", description: "a JSON object" }
)

/**
 * The time at which QEMU emitted an event, since the Unix epoch.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Timestamp = Schema.Struct({
  seconds: Schema.Number,
  microseconds: Schema.Number
}).annotations({ identifier: "Timestamp" })

/**
 * @since 0.1.0
 * @category models
 */
export interface Timestamp extends Schema.Schema.Type<typeof Timestamp> {}

/**
 * An asynchronous event, such as `{"event": "STOP", "timestamp": {...}}`.
 *
 * @since 0.1.0
 * @category models
 */
export interface QmpEvent {
  readonly event: string
  readonly data?: JsonObject
  readonly timestamp: Timestamp
}

/**
 * The definition every incoming event is checked against.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Event: Schema.Schema<QmpEvent> = Schema.Struct({
  event: Schema.String,
  data: Schema.optionalWith(JsonObject, { exact: true }),
  timestamp: Timestamp
}).annotations({ identifier: "QmpEvent", parseOptions: { exact: true } })

/**
 * The greeting QEMU sends as soon as a client connects.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Greeting = Schema.Struct({
  QMP: Schema.Struct({
    version: Schema.Struct({
      qemu: Schema.Struct({ major: Schema.Number, minor: Schema.Number, micro: Schema.Number }),
      package: Schema.String
    }),
    capabilities: Schema.Array(Schema.String)
  })
}).annotations({ identifier: "QmpGreeting" })

/**
 * @since 0.1.0
 * @category models
 */
export interface Greeting extends Schema.Schema.Type<typeof Greeting> {}

/**
 * A command as the client writes it: `execute` (or `exec-oob` for out-of-band execution), its
 * arguments and an `id` that the reply echoes.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Command = Schema.Union(
  Schema.Struct({
    execute: Schema.String,
    arguments: Schema.optionalWith(JsonObject, { exact: true }),
    id: Schema.optionalWith(Schema.Unknown, { exact: true })
  }),
  Schema.Struct({
    "exec-oob": Schema.String,
    arguments: Schema.optionalWith(JsonObject, { exact: true }),
    id: Schema.Unknown
  })
).annotations({ identifier: "QmpCommand" })

/**
 * @since 0.1.0
 * @category models
 */
export type Command = Schema.Schema.Type<typeof Command>

/**
 * A successful reply.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Return = Schema.Struct({
  return: Schema.Unknown,
  id: Schema.optionalWith(Schema.Unknown, { exact: true })
}).annotations({ identifier: "QmpReturn", parseOptions: { exact: true } }) // "return" must be there

/**
 * @since 0.1.0
 * @category models
 */
export interface Return extends Schema.Schema.Type<typeof Return> {}

/**
 * A failed reply: QEMU's error class (`GenericError`, `CommandNotFound`, ...) and a description.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ErrorResponse = Schema.Struct({
  error: Schema.Struct({ class: Schema.String, desc: Schema.String }),
  id: Schema.optionalWith(Schema.Unknown, { exact: true })
}).annotations({ identifier: "QmpErrorResponse" })

/**
 * @since 0.1.0
 * @category models
 */
export interface ErrorResponse extends Schema.Schema.Type<typeof ErrorResponse> {}

/**
 * Any message a QMP server sends.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ServerMessage = Schema.Union(Greeting, Return, ErrorResponse, Event)

/**
 * `true` for a plain JSON object (not `null`, not an array).
 *
 * @since 0.1.0
 * @category guards
 */
export const isJsonObject = (u: unknown): u is JsonObject => typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * The fast guard for events: accepts exactly what {@link Event} decodes, in a few nanoseconds
 * instead of a Schema decode. Keep the two in step: `test/QmpMessage.test.ts` checks that they agree.
 *
 * @since 0.1.0
 * @category guards
 */
export const isEvent = (u: unknown): u is QmpEvent => {
  if (typeof u !== "object" || u === null || Array.isArray(u)) return false
  const message = u as Record<string, unknown>
  if (!Object.hasOwn(message, "event") || typeof message.event !== "string") return false
  if (Object.hasOwn(message, "data") && !isJsonObject(message.data)) return false
  if (!Object.hasOwn(message, "timestamp")) return false
  const timestamp = message.timestamp
  if (typeof timestamp !== "object" || timestamp === null || Array.isArray(timestamp)) return false
  const t = timestamp as Record<string, unknown>
  return Object.hasOwn(t, "seconds") && typeof t.seconds === "number" &&
    Object.hasOwn(t, "microseconds") && typeof t.microseconds === "number"
}

/**
 * Explains why a value does not decode with `schema`, one issue per path
 * (`timestamp.microseconds: is missing`), or `undefined` if it decodes: for logs and errors, off the
 * hot path (`explain(Event, u)` says why `isEvent(u)` is `false`).
 *
 * @since 0.1.0
 * @category guards
 */
export const explain = <A, I>(schema: Schema.Schema<A, I>, u: unknown): string | undefined => {
  const result = Schema.decodeUnknownEither(schema)(u)
  if (result._tag === "Right") return undefined
  return ParseResult.ArrayFormatter.formatErrorSync(result.left)
    .map((issue) => issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`)
    .join("; ")
}

/**
 * Builds an event with the current time as its timestamp: for tests and in-process publishers.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeEvent = (event: string, data?: JsonObject, now = Date.now()): QmpEvent => {
  const timestamp = { seconds: Math.floor(now / 1000), microseconds: (now % 1000) * 1000 }
  return data === undefined ? { event, timestamp } : { event, data, timestamp }
}
