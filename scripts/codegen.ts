/**
 * `npm run codegen`: QEMU's QMP schema, read from a real QEMU, as a generated module in
 * `src/qemu/vMAJOR_MINOR/` (QEMU 7.2, the version CI installs, is what `QmpClient` is typed by).
 *
 * It starts `qemu-system-x86_64 -machine none` for the occasion (QemuProcess), reads
 * `query-qmp-schema` and `query-version`, and writes the module; its output is committed, and a test
 * regenerates it from the committed introspection to prove it is not stale.
 *
 *     npm run codegen
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { fetchLive, writeModule } from "../src/codegen/write.js"
import * as QemuProcess from "../src/QemuProcess.js"
import * as QmpClient from "../src/QmpClient.js"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")

const program = Effect.gen(function*() {
  const client = yield* QmpClient.QmpClient
  const { introspection, qemu } = yield* fetchLive(client)
  const [major, minor] = qemu.split(".")
  const directory = Path.join(root, "src", "qemu", `v${major}_${minor}`)
  const written = writeModule(introspection, { qemu, directory, runtime: "../../QmpSchema.js" })
  yield* Effect.log(
    `QEMU ${qemu}: ${written.commands} commands and ${written.events} events, written to ` +
      `${Path.relative(root, written.directory)}/ (${written.files.join(", ")})`
  )
  if (`${major}.${minor}` !== "7.2") {
    yield* Effect.logWarning(`QmpClient is typed by src/qemu/v7_2; this QEMU is ${qemu}: use QmpClient.typed`)
  }
})

program.pipe(Effect.scoped, Effect.provide(QemuProcess.layer()), NodeRuntime.runMain)
