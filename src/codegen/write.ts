/**
 * Generating a module and writing it to a directory, from a live QEMU or a saved reply: what
 * `npm run codegen` and `qmp codegen` share.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import type { ExecuteError } from "../QmpError.js"
import { generate } from "./generate.js"

/**
 * What was written.
 *
 * @since 0.1.0
 * @category models
 */
export interface Written {
  readonly directory: string
  readonly files: ReadonlyArray<string>
  readonly commands: number
  readonly events: number
}

/**
 * Reads a saved `query-qmp-schema` reply: the array itself, or a whole QMP reply (`{"return": [...]}`).
 *
 * @since 0.1.0
 * @category reading
 */
export const readSaved = (file: string): unknown => {
  const parsed: unknown = JSON.parse(Fs.readFileSync(file, "utf8"))
  return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) && "return" in parsed ?
    (parsed as { readonly return: unknown }).return :
    parsed
}

/**
 * The introspection and the version of the QEMU a client is connected to.
 *
 * @since 0.1.0
 * @category reading
 */
export const fetchLive = (client: {
  readonly executeUnknown: (command: string) => Effect.Effect<unknown, ExecuteError>
}): Effect.Effect<{ readonly introspection: unknown; readonly qemu: string }, ExecuteError> =>
  Effect.all({
    introspection: client.executeUnknown("query-qmp-schema"),
    qemu: Effect.map(client.executeUnknown("query-version"), (version) => {
      const q =
        (version as { readonly qemu?: { readonly major?: number; readonly minor?: number; readonly micro?: number } })
          .qemu
      return `${q?.major ?? 0}.${q?.minor ?? 0}.${q?.micro ?? 0}`
    })
  })

/**
 * Generates the module for `introspection` and writes its files into `directory` (made if need be).
 * Throws an `Error` saying what is wrong with the input or the directory.
 *
 * @since 0.1.0
 * @category writing
 */
export const writeModule = (
  introspection: unknown,
  options: { readonly qemu: string; readonly directory: string; readonly runtime?: string | undefined }
): Written => {
  const files = generate(introspection, { qemu: options.qemu, runtime: options.runtime })
  Fs.mkdirSync(options.directory, { recursive: true })
  for (const file of files) Fs.writeFileSync(Path.join(options.directory, file.path), file.content)
  const entries = introspection as ReadonlyArray<{ readonly "meta-type"?: unknown }>
  return {
    directory: options.directory,
    files: files.map((file) => file.path),
    commands: entries.filter((entry) => entry["meta-type"] === "command").length,
    events: entries.filter((entry) => entry["meta-type"] === "event").length
  }
}
