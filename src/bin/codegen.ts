/**
 * `qmp codegen --out DIR`: QEMU's QMP schema as a module of types and Effect Schemas, for a client
 * typed by your QEMU (`QmpClient.typed`, `QmpEvents.typed`). Reads `query-qmp-schema` from the QEMU
 * it connects to, or a saved reply (`--from FILE`).
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { fetchLive, readSaved, writeModule } from "../codegen/write.js"
import type { ConnectionOptions } from "./connection.js"
import { withConnection } from "./connection.js"
import { usage } from "./errors.js"
import * as Output from "./output.js"

/**
 * The command line of `qmp codegen`, parsed.
 *
 * @since 0.1.0
 * @category models
 */
export interface Config extends ConnectionOptions {
  readonly out: string
  readonly from: Option.Option<string>
  readonly qemu: Option.Option<string>
  readonly runtime: string
}

/** The generator refused its input, or the directory could not be written. */
class CodegenFailed extends Data.TaggedError("CodegenFailed")<{ readonly message: string }> {}

const write = (introspection: unknown, qemu: string, config: Config) =>
  Effect.try({
    try: () => writeModule(introspection, { qemu, directory: config.out, runtime: config.runtime }),
    catch: (cause) => new CodegenFailed({ message: cause instanceof Error ? cause.message : String(cause) })
  }).pipe(
    Effect.flatMap((written) =>
      Output.line(
        `QEMU ${qemu}: ${written.commands} commands and ${written.events} events, written to ${written.directory}/ ` +
          `(${written.files.join(", ")}). Import { module } from its index.js, and give it to QmpClient.typed.`
      )
    )
  )

/**
 * Runs `qmp codegen`.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (config: Config) =>
  Option.match(config.from, {
    onSome: (file) =>
      Effect.try({
        try: () => readSaved(file),
        catch: (cause) => usage(`--from: ${cause instanceof Error ? cause.message : String(cause)}`)
      }).pipe(
        Effect.flatMap((introspection) => write(introspection, Option.getOrElse(config.qemu, () => "unknown"), config))
      ),
    onNone: () =>
      withConnection(config, {}, () =>
        Effect.void, (qmp) =>
        Effect.flatMap(fetchLive(qmp), ({ introspection, qemu }) =>
          write(
            introspection,
            Option.getOrElse(config.qemu, () =>
              qemu),
            config
          )))
  })
