/**
 * The command line of `qmp codegen`.
 *
 * @since 0.1.0
 */
import * as CliCommand from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import type * as Effect from "effect/Effect"
import type * as Codegen from "../codegen.js"
import type { Examples } from "./help.js"
import * as Shared from "./options.js"

/**
 * @since 0.1.0
 * @category examples
 */
export const examples: Examples = [
  ["qmp codegen -s /tmp/qmp.sock --out src/qemu", "The module of the QEMU at /tmp/qmp.sock, for QmpClient.typed."],
  [
    "qmp codegen --from schema.json --qemu 8.2.0 --out src/qemu-8.2",
    "From a saved query-qmp-schema reply (qmp exec query-qmp-schema > schema.json), without a QEMU."
  ]
]

/**
 * @since 0.1.0
 * @category descriptions
 */
export const description =
  "Generate TypeScript types and Effect Schemas of every command, event and type of your QEMU, from its " +
  "query-qmp-schema, for QmpClient.typed and QmpEvents.typed."

/**
 * `qmp codegen`, running `handler`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (handler: (config: Codegen.Config) => Effect.Effect<void, unknown>) =>
  CliCommand.make(
    "codegen",
    {
      ...Shared.connection,
      out: Shared.text("out", "DIR", "The directory to write the module into (types.ts, schemas.ts, index.ts, ...)."),
      from: Shared.optionalText("from", "FILE", "A saved query-qmp-schema reply, instead of asking a QEMU."),
      qemu: Shared.optionalText("qemu", "VERSION", "The QEMU version to record (default: the QEMU's query-version)."),
      runtime: Shared.text(
        "runtime",
        "MODULE",
        "Where the generated code imports QmpSchema from (default effect-qmp/QmpSchema)."
      ).pipe(Options.withDefault("effect-qmp/QmpSchema"))
    },
    handler
  ).pipe(CliCommand.withDescription(description))
