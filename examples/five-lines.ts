// The README's five-line example.
import { Effect } from "effect"
import { QmpEvents, QmpMessage } from "effect-qmp"

const program = Effect.gen(function*() {
  const qmp = yield* QmpEvents.QmpEvents
  const stops = yield* qmp.listener("STOP") // registered now, removed when the scope ends
  yield* qmp.publish(QmpMessage.makeEvent("STOP")) // a connection does this for every event it reads
  console.log((yield* stops.take).event) // "STOP"
})

Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(QmpEvents.layer)))
