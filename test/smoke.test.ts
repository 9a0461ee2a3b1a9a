import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { QmpEvents, QmpMessage } from "../src/index.js"

const body = Effect.gen(function*() {
  const qmp = yield* QmpEvents.QmpEvents
  console.log("a")
  const l = yield* qmp.listener("STOP")
  console.log("b")
  yield* qmp.publishAll([QmpMessage.makeEvent("RESUME"), QmpMessage.makeEvent("STOP")])
  console.log("c")
  const e = yield* l.take
  expect(e.event).toBe("STOP")
  expect((yield* qmp.events.history).length).toBe(2)
})
describe("smoke", () => {
  it.scoped("scoped", () => body.pipe(Effect.provide(QmpEvents.layer)))
  it.live("live", () => body.pipe(Effect.scoped, Effect.provide(QmpEvents.layer)))
  it.effect("effect", () => body.pipe(Effect.scoped, Effect.provide(QmpEvents.layer)))
})
