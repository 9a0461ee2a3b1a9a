/**
 * `qmp schema check`: is the QEMU you connect to the QEMU a generated module was made from (QEMU
 * 7.2's, or yours with `--module`)? Prints what is missing, what is new and what changed; exits 1
 * when a typed call or listener could fail on the differences.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"
import type { Generated } from "../QmpSchema.js"
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
}

/** The check found differences a typed call or listener could fail on. */
class NotCompatible extends Data.TaggedError("NotCompatible")<{ readonly message: string }> {}

const loadModule = (config: Config): Effect.Effect<Generated<any, any>, ReturnType<typeof usage>> =>
  Option.match(config.module, {
    onNone: () => Effect.promise(() => import("../qemu/v7_2/index.js").then((m) => m.module as Generated<any, any>)),
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

/**
 * Runs `qmp schema check`.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (config: Config) =>
  Effect.flatMap(
    loadModule(config),
    (module) =>
      withConnection(config, {}, () => Effect.void, (qmp) =>
        Effect.gen(function*() {
          const report = yield* SchemaCheck.check(qmp, module)
          for (const line of SchemaCheck.format(report, module)) yield* Output.line(line)
          if (!SchemaCheck.isCompatible(report)) {
            return yield* new NotCompatible({ message: `this QEMU differs from QEMU ${module.qemu}'s module` })
          }
        }))
  )
