/**
 * The generator: QEMU's introspection (the reply of `query-qmp-schema`) in, a module of interfaces
 * and Effect Schemas out, for `QmpClient.typed` and typed listeners. `npm run codegen` runs it for
 * the QEMU this package is typed by; `qmp codegen` for yours.
 *
 * @example
 * ```ts
 * import * as Codegen from "effect-qmp/codegen/generate"
 *
 * const files = Codegen.generate(introspection, { qemu: "9.2.0", runtime: "effect-qmp/QmpSchema" })
 * for (const file of files) fs.writeFileSync(path.join("src/qemu", file.path), file.content)
 * ```
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import { decodeIntrospection } from "../QmpSchema.js"
import type { EmitOptions, File } from "./emit.js"
import { emit } from "./emit.js"
import * as Model from "./model.js"
import { assignNames } from "./naming.js"

export type {
  /**
   * @since 0.1.0
   * @category models
   */
  File
} from "./emit.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The QEMU the introspection came from (its `query-version`): `7.2.22`. */
  readonly qemu: string
  /** Where generated code imports `QmpSchema` from: `effect-qmp/QmpSchema` by default. */
  readonly runtime?: string | undefined
}

/**
 * The files of a module generated from `introspection` (what `query-qmp-schema` returned, or that
 * saved as JSON): `types.ts`, `schemas.ts`, `index.ts` and `introspection.ts`. Throws an `Error`
 * saying what is wrong if the input is not QEMU's introspection.
 *
 * @since 0.1.0
 * @category generating
 */
export const generate = (introspection: unknown, options: Options): ReadonlyArray<File> => {
  const decoded = decodeIntrospection(introspection)
  if (Either.isLeft(decoded)) {
    throw new Error(`not a query-qmp-schema reply: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}`)
  }
  const model = Model.make(decoded.right)
  const emitOptions: EmitOptions = {
    qemu: options.qemu,
    runtime: options.runtime ?? "effect-qmp/QmpSchema",
    introspection: introspection as ReadonlyArray<unknown>
  }
  return emit(model, assignNames(model), emitOptions)
}
