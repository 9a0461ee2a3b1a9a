/**
 * `qmp schema check`: is the QEMU you connect to the QEMU a generated module was made from (QEMU
 * 7.2's, yours with `--module`, or a saved `query-qmp-schema` reply with `--from`)? Prints what is
 * missing, what is new and what changed; exits 1 when a typed call or listener could fail on the
 * differences.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"
import { readSaved } from "../codegen/write.js"
import { loadDefaultModule } from "../internal/defaultModule.js"
import type { Generated, SchemaInfo } from "../QmpSchema.js"
import { decodeIntrospection } from "../QmpSchema.js"
import * as SchemaCheck from "../SchemaCheck.js"
import type { ConnectionOptions } from "./connection.js"
import { withConnection } from "./connection.js"
import { usage } from "./errors.js"
import * as Output from "./output.js"

/**
 * The command line of `qmp schema check`, parsed.
 *
 * @since 0.1.0
 * @category models
 */
export interface Config extends ConnectionOptions {
  readonly module: Option.Option<string>
  readonly from: Option.Option<string>
}

/** The check found differences a typed call or listener could fail on. */
class NotCompatible extends Data.TaggedError("NotCompatible")<{ readonly message: string }> {}

const loadModule = (config: Config): Effect.Effect<Generated<any, any>, ReturnType<typeof usage>> =>
  Option.match(config.module, {
    onNone: () => Effect.promise(loadDefaultModule),
    onSome: (file) =>
      Effect.tryPromise({
        try: () =>
          import(pathToFileURL(Path.resolve(file)).href).then((m: { readonly module?: Generated<any, any> }) => {
            if (m.module === undefined) throw new Error("it exports no `module`")
            return m.module
          }),
        catch: (cause) => usage(`--module ${file}: ${cause instanceof Error ? cause.message : String(cause)}`)
      })
  })

/** What the QEMU is compared with: a saved reply (`--from`), or a module, and how to name it. */
const loadAgainst = (config: Config): Effect.Effect<
  { readonly against: Generated<any, any> | ReadonlyArray<SchemaInfo>; readonly label: string },
  ReturnType<typeof usage>
> => {
  if (Option.isSome(config.from) && Option.isSome(config.module)) {
    return Effect.fail(usage("give --from or --module, not both"))
  }
  return Option.match(config.from, {
    onSome: (file) =>
      Effect.try({
        try: () => readSaved(file),
        catch: (cause) => usage(`--from ${file}: ${cause instanceof Error ? cause.message : String(cause)}`)
      }).pipe(
        Effect.flatMap((saved) =>
          Either.match(decodeIntrospection(saved), {
            onLeft: (error) => Effect.fail(usage(`--from ${file}: not a query-qmp-schema reply: ${error.message}`)),
            onRight: (introspection) => Effect.succeed({ against: introspection, label: `the saved reply ${file}` })
          })
        )
      ),
    onNone: () =>
      Effect.map(loadModule(config), (module) => ({ against: module, label: `QEMU ${module.qemu}'s module` }))
  })
}

/**
 * Runs `qmp schema check`.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (config: Config) =>
  Effect.flatMap(
    loadAgainst(config),
    ({ against, label }) =>
      withConnection(config, {}, () => Effect.void, (qmp) =>
        Effect.gen(function*() {
          const report = yield* SchemaCheck.check(qmp, against)
          for (const line of SchemaCheck.format(report, label)) yield* Output.line(line)
          if (!SchemaCheck.isCompatible(report)) {
            return yield* new NotCompatible({ message: `this QEMU differs from ${label}` })
          }
        }))
  )
