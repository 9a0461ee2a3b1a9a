// The README's "Connect to your QEMU" example. Start QEMU first:
//   qemu-system-x86_64 -machine none -display none -nodefaults -qmp unix:/tmp/qmp.sock,server=on,wait=off &
// then: npx tsx examples/connect.ts [/tmp/qmp.sock]
import { Effect } from "effect"
import { QmpClient, QmpEvents } from "effect-qmp"

const program = Effect.gen(function*() {
  const qmp = yield* QmpClient.QmpClient
  const events = yield* QmpEvents.QmpEvents
  console.log(qmp.greeting.QMP.version.qemu) // { major: 7, minor: 2, micro: 22 }
  console.log(yield* qmp.execute("query-status")) // { status: "running", running: true, ... }

  const changes = yield* events.listener(["STOP", "RESUME"]) // before the commands that cause them
  yield* qmp.execute("stop")
  yield* qmp.execute("cont")
  console.log((yield* changes.take).event, (yield* changes.take).event) // STOP RESUME
})

program.pipe(
  Effect.scoped,
  Effect.provide(QmpClient.layer({ path: process.argv[2] ?? "/tmp/qmp.sock" })),
  Effect.runPromise
).catch((error) => {
  console.error(error instanceof Error ? error.message : String(error))
  process.exitCode = 1
})
