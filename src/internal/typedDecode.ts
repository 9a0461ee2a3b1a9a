/**
 * What typed commands and typed listeners check with a generated module's Schemas, loaded the first
 * time one is needed: a command's return and an event's data. Generated Schemas transform nothing,
 * so decoding is validating: the value read from the wire is what the caller gets (the members a
 * newer QEMU added, and their order, as QEMU sent them), and every listener shares one event object.
 *
 * Enums are open at run time: a value the module does not know passes, and is counted and logged
 * once (see `QmpSchema.openEnum`).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { QmpProtocolError } from "../QmpError.js"
import type { Generated, Schemas } from "../QmpSchema.js"
import { hasUnknownEnumValues as pending, takeUnknownEnumValues } from "../QmpSchema.js"

/**
 * `true` if enum values the module did not know were met since they were last logged.
 *
 * @internal
 */
export const hasUnknownEnumValues = (): boolean => pending()

/** A Schema rejection, one issue per path: `status: is missing`. */
const describe = (error: ParseResult.ParseError): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .map((issue) => issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`)
    .join("; ")

/**
 * Logs the enum values met since the last call that the module did not know, once each.
 *
 * @internal
 */
export const logUnknownEnumValues = (qemu: string): Effect.Effect<void> => {
  const unknown = takeUnknownEnumValues()
  if (unknown.length === 0) return Effect.void
  return Effect.forEach(unknown, ({ enumName, value }) =>
    Effect.logWarning(
      `QEMU sent a value of ${enumName} that the module generated from QEMU ${qemu} does not know; it is passed on`
    ).pipe(Effect.annotateLogs({ enum: enumName, value })), { discard: true })
}

/** A decoder of returns: a command's reply, checked by its module's Schema. */
type ReturnDecoder = (command: string, reply: unknown) => Effect.Effect<unknown, QmpProtocolError>

/**
 * The decoders made so far, by the function that loads their module: every client typed by the
 * default module shares one (its guards are compiled once, not once per connection: a fleet holds a
 * thousand).
 */
const decoders = new WeakMap<() => Promise<Generated<any, any>>, ReturnDecoder>()

/**
 * Decodes the returns of a module's commands: a command the module lacks gives its reply as it is.
 * One decoder per `load` function.
 *
 * @internal
 */
export const makeReturnDecoder = (load: () => Promise<Generated<any, any>>): ReturnDecoder => {
  let decoder = decoders.get(load)
  if (decoder === undefined) {
    decoder = newReturnDecoder(load)
    decoders.set(load, decoder)
  }
  return decoder
}

const newReturnDecoder = (load: () => Promise<Generated<any, any>>): ReturnDecoder => {
  let module: Generated<any, any> | undefined
  let schemas: Schemas | undefined
  const guards = new Map<string, (u: unknown) => boolean>()

  const decodeWith = (command: string, reply: unknown): Effect.Effect<unknown, QmpProtocolError> => {
    if (!Object.hasOwn(module!.commands, command) || !Object.hasOwn(schemas!.returns, command)) {
      return Effect.succeed(reply)
    }
    let is = guards.get(command)
    if (is === undefined) {
      is = Schema.is(schemas!.returns[command], { onExcessProperty: "ignore" })
      guards.set(command, is)
    }
    if (!is(reply)) {
      const result = Schema.decodeUnknownEither(schemas!.returns[command])(reply)
      return Effect.fail(
        new QmpProtocolError({
          reason: "UnexpectedReturn",
          detail: `${command}: ${Either.isLeft(result) ? describe(result.left) : "rejected"} (the module of QEMU ${
            module!.qemu
          } expects otherwise)`
        })
      )
    }
    return pending() ? Effect.as(logUnknownEnumValues(module!.qemu), reply) : Effect.succeed(reply)
  }

  return (command: string, reply: unknown): Effect.Effect<unknown, QmpProtocolError> =>
    schemas !== undefined ?
      decodeWith(command, reply) :
      Effect.flatMap(
        Effect.promise(async () => {
          module = await load()
          schemas = await module.schemas()
        }),
        () => decodeWith(command, reply)
      )
}

/**
 * Checks events' data for typed listeners, by name (dispatch asks once per event, whatever the
 * number of listeners that name it). `false` for an event whose data does not match its name's
 * Schema (a wrong type, a missing member); `true` for every event the module has no Schema for.
 *
 * @internal
 */
export interface EventValidator {
  readonly qemu: string
  readonly validate: (event: { readonly event: string; readonly data?: unknown }) => boolean
  /** Why the last rejected event was rejected, for the log. */
  readonly explain: (event: { readonly event: string; readonly data?: unknown }) => string
}

const validators = new WeakMap<Generated<any, any>, Promise<EventValidator>>()

/**
 * The validator of a module's events, made once per module.
 *
 * @internal
 */
export const eventValidator = (module: Generated<any, any>): Promise<EventValidator> => {
  let validator = validators.get(module)
  if (validator === undefined) {
    validator = module.schemas().then((schemas) => {
      const checks = new Map<string, (u: unknown) => boolean>()
      const check = (name: string): ((u: unknown) => boolean) | undefined => {
        if (!Object.hasOwn(schemas.events, name)) return undefined
        let is = checks.get(name)
        if (is === undefined) {
          is = Schema.is(schemas.events[name], { onExcessProperty: "ignore" })
          checks.set(name, is)
        }
        return is
      }
      return {
        qemu: module.qemu,
        validate: (event) => {
          const is = check(event.event)
          return is === undefined || is(event.data)
        },
        explain: (event) => {
          if (!Object.hasOwn(schemas.events, event.event)) return ""
          const result = Schema.decodeUnknownEither(schemas.events[event.event])(event.data)
          return Either.isLeft(result) ? describe(result.left) : ""
        }
      }
    })
    validators.set(module, validator)
  }
  return validator
}
