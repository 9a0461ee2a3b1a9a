// The README's QemuProcess example: a QEMU started for the scope, and stopped for sure after it.
//   npx tsx examples/qemu-process.ts
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import { QemuProcess, QmpClient } from "effect-qmp"

const program = Effect.gen(function*() {
  const qemu = yield* QemuProcess.QemuProcess // the QEMU started for this scope
  const qmp = yield* QmpClient.QmpClient // and the connection to it
  console.log(qemu.pid, yield* qmp.execute("query-status")) // 4242 { status: "running", ... }
})

program.pipe(Effect.scoped, Effect.provide(QemuProcess.layer()), NodeRuntime.runMain)
