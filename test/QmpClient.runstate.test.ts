/**
 * A connection's state, as users see it (`QmpClient.runstate`), and command timeouts driven by
 * `TestClock`, on `QmpTestServer`'s real socket.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Option, Stream, TestClock } from "effect"
import { QmpClient } from "../src/index.js"
import * as QmpTestServer from "../src/testing/QmpTestServer.js"

/** The first `n` states, collected by a fiber that subscribes now. */
const firstStates = (client: QmpClient.Service, n: number) =>
  Effect.fork(Stream.runCollect(Stream.take(client.runstate.changes, n)).pipe(Effect.map(Chunk.toReadonlyArray)))

describe("QmpClient.runstate", () => {
  it.scopedLive("Running, then Disconnecting and Disconnected with the reason, on disconnect", () =>
    Effect.gen(function*() {
      const client = yield* QmpClient.QmpClient
      expect(yield* client.runstate.get).toEqual(QmpClient.Runstate.Running())
      const states = yield* firstStates(client, 3)
      yield* Effect.yieldNow()
      yield* client.disconnect
      const seen = yield* Fiber.join(states)
      expect(seen.map((state) => state._tag)).toEqual(["Running", "Disconnecting", "Disconnected"])
      const last = seen[2]
      expect(last._tag === "Disconnected" && last.reason).toMatchObject({ reason: "Disconnected" })
      expect(yield* client.runstate.get).toEqual(last)
      // A late subscriber sees the current state first.
      expect(yield* Stream.runHead(client.runstate.changes)).toEqual(Option.some(last))
    }).pipe(Effect.provide(QmpTestServer.layerWithClient())))

  it.scopedLive("a hang-up after quit: Disconnected, reason Closed; closed gives the same reason", () =>
    Effect.gen(function*() {
      const client = yield* QmpClient.QmpClient
      const states = yield* firstStates(client, 3)
      yield* Effect.yieldNow()
      yield* client.execute("quit")
      const reason = yield* client.closed
      expect(reason).toMatchObject({ _tag: "QmpDisconnected", reason: "Closed" })
      expect((yield* Fiber.join(states)).map((state) => state._tag)).toEqual([
        "Running",
        "Disconnecting",
        "Disconnected"
      ])
      expect(yield* client.runstate.get).toEqual(QmpClient.Runstate.Disconnected({ reason }))
      // Every later command fails at once with that reason.
      expect(yield* Effect.flip(client.execute("query-status"))).toEqual(reason)
    }).pipe(Effect.provide(QmpTestServer.layerWithClient())))
})

describe("command timeouts, on TestClock", () => {
  it.scoped("a command without a reply fails with QmpTimeoutError exactly when its timeout passes", () =>
    Effect.gen(function*() {
      const server = yield* QmpTestServer.QmpTestServer
      yield* server.handle("slow", QmpTestServer.silent)
      const client = yield* QmpClient.QmpClient
      const slow = yield* Effect.fork(client.executeUnknown("slow", undefined, { timeout: "2 seconds" }))
      const slower = yield* Effect.fork(client.executeUnknown("slow"))
      yield* server.nextCommand
      yield* server.nextCommand
      yield* TestClock.adjust("1999 millis")
      expect(slow.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.await(slow)).toEqual(
        Exit.fail(expect.objectContaining({ _tag: "QmpTimeoutError", command: "slow", timeout: "2s" }))
      )
      // The connection's own commandTimeout (30 s here) for the other, and the connection goes on.
      yield* TestClock.adjust("27 seconds")
      expect(slower.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 second")
      expect(yield* Effect.flip(Fiber.join(slower))).toMatchObject({ _tag: "QmpTimeoutError", timeout: "30s" })
      expect(yield* client.execute("query-status")).toMatchObject({ status: "running" })
    }).pipe(Effect.provide(QmpTestServer.layerWithClient({}, { commandTimeout: "30 seconds" }))))
})
