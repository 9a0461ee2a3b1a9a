/**
 * `npm start`: the event system at work, in process.
 *
 * A small stand-in VM publishes the events QEMU 7.2 sends for `stop`, `cont` and a block job, in
 * QEMU's order, and the steps below listen to them the ways the seed's tutorial shows.
 */
import { Console, Effect, Fiber, Stream } from "effect"
import { EventFilter, QmpEvents, QmpMessage } from "effect-qmp"

const { makeEvent } = QmpMessage

// What QEMU sends for each command, before the command's return.
const vm = {
  stop: [makeEvent("STOP")],
  cont: [makeEvent("RESUME")],
  backup: (id: string) => [
    ...["created", "running", "waiting", "pending"].map((status) => makeEvent("JOB_STATUS_CHANGE", { id, status })),
    makeEvent("BLOCK_JOB_COMPLETED", { device: id, len: 1048576, offset: 1048576, speed: 0, type: "backup" }),
    ...["concluded", "null"].map((status) => makeEvent("JOB_STATUS_CHANGE", { id, status }))
  ]
}

const title = (text: string) => Console.log(`\n== ${text}`)
const show = (event: QmpMessage.QmpEvent) =>
  Console.log(`   ${event.event}${event.data === undefined ? "" : " " + JSON.stringify(event.data)}`)

const program = Effect.gen(function*() {
  const qmp = yield* QmpEvents.QmpEvents
  const execute = (events: ReadonlyArray<QmpMessage.QmpEvent>) => qmp.publishAll(events)

  yield* Console.log("effect-qmp demo: the event system, in process (no QEMU involved yet)")

  yield* title("A listener for STOP")
  yield* Effect.scoped(Effect.gen(function*() {
    const listener = yield* qmp.listener("STOP")
    yield* execute(vm.stop)
    yield* show(yield* listener.take)
  }))

  yield* title("A listener for STOP and RESUME")
  yield* Effect.scoped(Effect.gen(function*() {
    const listener = yield* qmp.listener(["STOP", "RESUME"])
    yield* execute(vm.cont)
    yield* execute(vm.stop)
    yield* show(yield* listener.take)
    yield* show(yield* listener.take)
  }))

  yield* title("clear, then cont: only RESUME is left in the default listener")
  yield* qmp.events.clear
  yield* execute(vm.cont)
  yield* show(yield* qmp.events.take)
  yield* Console.log(`   pending now: ${(yield* qmp.events.isEmpty) ? "none" : "some"}`)

  yield* title("A filtered listener following block job job1 (job0 runs beside it)")
  yield* Effect.scoped(Effect.gen(function*() {
    const listener = yield* qmp.listener("JOB_STATUS_CHANGE", EventFilter.data({ id: "job1" }))
    const follower = yield* listener.stream.pipe(
      Stream.takeUntil((event) => event.data?.status === "concluded"),
      Stream.runForEach(show),
      Effect.fork
    )
    yield* execute(vm.backup("job0"))
    yield* execute(vm.backup("job1"))
    yield* Fiber.join(follower)
  }))

  yield* title("The default listener's history")
  const history = yield* qmp.events.history
  yield* Console.log(`   ${"#".padStart(3)}  ${"time".padEnd(12)}  ${"event".padEnd(20)}  data`)
  for (const [i, event] of history.entries()) {
    const time = new Date(event.timestamp.seconds * 1000 + event.timestamp.microseconds / 1000)
      .toISOString().slice(11, 23)
    const data = event.data === undefined ? "" : JSON.stringify(event.data)
    yield* Console.log(`   ${String(i + 1).padStart(3)}  ${time.padEnd(12)}  ${event.event.padEnd(20)}  ${data}`)
  }
  yield* Console.log(`\n${history.length} events heard. Run the tests with: npm test`)
})

program.pipe(Effect.provide(QmpEvents.layer), Effect.runPromise).catch((error) => {
  console.error(String(error))
  process.exitCode = 1
})
