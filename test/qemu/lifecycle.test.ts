/**
 * How a real QEMU connection ends: quit, SIGKILL, a second client on a busy socket, disconnect.
 */
import { expect, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import { QmpClient, QmpEvents } from "../../src/index.js"
import { describeQemu, session } from "../support/qemu.js"

describeQemu("QmpClient on real QEMU: the end of a connection", () => {
  it.scopedLive("quit succeeds; pending calls and listeners end with QmpDisconnected; QEMU exits", () =>
    Effect.gen(function*() {
      const { events, qemu, qmp } = yield* session()
      const listener = yield* events.listener()
      // Freeze QEMU so that `quit` and a command after it are both in its socket when it wakes up:
      // QEMU exits after `quit` without answering the next one.
      yield* qemu.signal("SIGSTOP")
      const quit = yield* Effect.fork(qmp.execute("quit"))
      yield* Effect.sleep("50 millis")
      const pending = yield* Effect.fork(qmp.execute("query-status"))
      yield* Effect.sleep("50 millis")
      yield* qemu.signal("SIGCONT")
      expect(yield* Fiber.join(quit)).toEqual({})
      expect(yield* Effect.flip(Fiber.join(pending))).toMatchObject({ _tag: "QmpDisconnected" })
      expect(yield* listener.take).toMatchObject({ event: "SHUTDOWN", data: { guest: false, reason: "host-qmp-quit" } })
      expect(yield* Effect.flip(listener.take)).toMatchObject({ _tag: "QmpDisconnected" })
      // The default listener's stream yields SHUTDOWN, then fails instead of waiting forever.
      const heard: Array<string> = []
      const streamEnd = yield* events.events.stream.pipe(
        Stream.runForEach((event) => Effect.sync(() => heard.push(event.event))),
        Effect.flip
      )
      expect(heard).toEqual(["SHUTDOWN"])
      expect(streamEnd).toMatchObject({ _tag: "QmpDisconnected" })
      expect(yield* Effect.flip(qmp.execute("query-status"))).toMatchObject({ _tag: "QmpDisconnected" })
      expect(yield* qemu.exited).toBe(0)
    }))

  it.scopedLive("SIGKILL of QEMU ends pending calls and listeners with QmpDisconnected", () =>
    Effect.gen(function*() {
      const { events, qemu, qmp } = yield* session()
      const listener = yield* events.listener()
      yield* qmp.execute("stop")
      yield* qemu.signal("SIGSTOP")
      const pending = yield* Effect.fork(qmp.execute("query-status"))
      yield* Effect.sleep("50 millis")
      yield* qemu.signal("SIGKILL")
      expect(yield* Effect.flip(Fiber.join(pending))).toMatchObject({ _tag: "QmpDisconnected" })
      // The listener yields what it held, then fails, and keeps failing.
      expect((yield* listener.take).event).toBe("STOP")
      const ended = yield* Effect.flip(listener.take)
      expect(ended).toMatchObject({ _tag: "QmpDisconnected" })
      expect(yield* Effect.flip(listener.take)).toBe(ended)
      expect(yield* qmp.closed).toBe(ended)
      expect(yield* qemu.exited).toBe("SIGKILL")
    }))

  it.scopedLive("a second client on a busy socket fails with QmpConnectError NoGreeting within connectTimeout", () =>
    Effect.gen(function*() {
      const { qemu, qmp } = yield* session()
      // NoGreeting (not Timeout): the second client connected, then waited in vain for a greeting. That it
      // fails exactly when connectTimeout has passed is shown on TestClock against QmpTestServer.
      const error = yield* QmpClient.make(qemu.address, { connectTimeout: "1 second" }).pipe(
        Effect.provide(QmpEvents.layer),
        Effect.scoped,
        Effect.flip
      )
      expect(error).toMatchObject({ _tag: "QmpConnectError", reason: "NoGreeting", address: qemu.address })
      expect(error.message).toContain("another client probably holds this QMP socket")
      // The first client is unharmed.
      expect(yield* qmp.execute("query-status")).toMatchObject({ status: "running" })
    }))

  it.scopedLive("after disconnect, QEMU serves the next client", () =>
    Effect.gen(function*() {
      const { events, qemu, qmp } = yield* session()
      const listener = yield* events.listener()
      yield* qmp.disconnect
      expect(yield* Effect.flip(listener.take)).toMatchObject({ _tag: "QmpDisconnected", reason: "Disconnected" })
      expect(yield* Effect.flip(qmp.execute("query-status"))).toMatchObject({ reason: "Disconnected" })
      const status = yield* Effect.gen(function*() {
        const next = yield* QmpClient.QmpClient
        return yield* next.execute("query-status")
      }).pipe(Effect.provide(QmpClient.layer(qemu.address, { connectTimeout: "5 seconds" })))
      expect(status).toMatchObject({ status: "running" })
    }))
})
