// The README's QmpTestServer example: QMP code tested without QEMU.
//   npx tsx examples/test-server.ts
import { Effect } from "effect"
import { QmpClient, QmpEvents } from "effect-qmp"
import * as QmpTestServer from "effect-qmp/testing/QmpTestServer"

const program = Effect.gen(function*() {
  const server = yield* QmpTestServer.QmpTestServer
  yield* server.handle("guest-ping", (args, ctx) => Effect.as(ctx.emit("PONG", { echo: args.text }), { pong: true }))
  const qmp = yield* QmpClient.QmpClient
  const pongs = yield* (yield* QmpEvents.QmpEvents).listenerUnknown("PONG")
  console.log(yield* qmp.executeUnknown("guest-ping", { text: "hi" })) // { pong: true }
  console.log((yield* pongs.take).data) // { echo: "hi" }: PONG came before the return
})

program.pipe(Effect.scoped, Effect.provide(QmpTestServer.layerWithClient()), Effect.runPromise)
