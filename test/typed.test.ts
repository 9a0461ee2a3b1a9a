/**
 * Typed commands and typed listeners, with the small module of test/fixtures (generated from a
 * hand-written introspection) on QmpTestServer: what a reply or an event must be to reach typed code,
 * what passes (members and enum values a newer QEMU added), and what is kept out, with its log and
 * metric. The types themselves are checked by `npm run typecheck`: each `@ts-expect-error` below is a
 * mistake that must not compile, and fails the typecheck if it ever does.
 *
 * The same against QEMU 7.2's own module and a real QEMU: test/qemu/typed.test.ts.
 */
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import { Effect, Fiber, Metric, Option, Stream } from "effect"
import type { Scope } from "effect"
import { EventListener, QmpClient, QmpEvents, QmpMessage, QmpMetrics } from "../src/index.js"
import type { QmpError } from "../src/index.js"
import * as QmpTestServer from "../src/testing/QmpTestServer.js"
import * as Small from "./fixtures/small-qemu/index.js"
import { connect } from "./support/connect.js"
import { captureLogs } from "./support/logs.js"

/** A test server, and a connection to it typed by the small module. */
const typedConnect = (logs?: ReturnType<typeof captureLogs>) =>
  Effect.gen(function*() {
    const connected = yield* connect().pipe(logs === undefined ? (e) => e : Effect.provide(logs.layer))
    const qmp = yield* QmpClient.typed(Small.module).pipe(Effect.provideService(QmpClient.QmpClient, connected.client))
    const events = yield* QmpEvents.typed(Small.module).pipe(
      Effect.provideService(QmpEvents.QmpEvents, connected.events)
    )
    return { ...connected, qmp, events, untyped: connected.events }
  })

const machine = { state: "idle", uptime: 5 } as const

describe("typed commands", () => {
  it.scopedLive("a reply is checked by its command's Schema and given as sent; members a newer QEMU added are kept", () =>
    Effect.gen(function*() {
      const { qmp, server } = yield* typedConnect()
      yield* server.handle("query-machine", () => Effect.succeed({ ...machine, tags: ["a"], newer: { x: 1 } }))
      const reply = yield* qmp.execute("query-machine")
      expectTypeOf(reply).toEqualTypeOf<Small.QueryMachineReturn>()
      expect(reply).toEqual({ ...machine, tags: ["a"], newer: { x: 1 } })
      // Validated, not rebuilt: the members in the order QEMU sent them, not the Schema's.
      // (Written raw: the server writes objects in QEMU's own member order.)
      yield* server.handle("query-machine", (_, context) =>
        Effect.zipRight(
          context.noReply,
          context.connection.raw(
            `{"return": {"newer": 1, "uptime": 2, "state": "busy"}, "id": ${JSON.stringify(context.command.id)}}\r\n`
          )
        ))
      expect(Object.keys(yield* qmp.execute("query-machine"))).toEqual(["newer", "uptime", "state"])
    }))

  it.scopedLive("arguments go out as given", () =>
    Effect.gen(function*() {
      const { qmp, server } = yield* typedConnect()
      yield* server.handle("device-del", () => Effect.succeed({}))
      yield* server.handle("query-devices", () => Effect.succeed([]))
      yield* server.nextCommand // qmp_capabilities
      expect(yield* qmp.execute("device-del", { id: "d0", force: true })).toEqual({})
      expect((yield* server.nextCommand).arguments).toEqual({ id: "d0", force: true })
      expect(yield* qmp.execute("query-devices")).toEqual([])
      expect((yield* server.nextCommand).arguments).toBeUndefined()
    }))

  it.scopedLive("a reply of the wrong shape fails with QmpProtocolError UnexpectedReturn, saying where", () =>
    Effect.gen(function*() {
      const { qmp, server } = yield* typedConnect()
      yield* server.handle("query-machine", () => Effect.succeed({ state: "idle", uptime: "5" }))
      const error = yield* Effect.flip(qmp.execute("query-machine"))
      expect(error).toMatchObject({ _tag: "QmpProtocolError", reason: "UnexpectedReturn" })
      expect(error.message).toContain("query-machine: uptime: Expected number, actual \"5\"")
      expect(error.message).toContain("QEMU 0.1.0")
      // The untyped door gives the reply as it came; the connection is unharmed.
      expect(yield* qmp.executeUnknown("query-machine")).toEqual({ state: "idle", uptime: "5" })
    }))

  it.scopedLive("an enum value the module lacks passes, counted and logged once", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const { qmp, server } = yield* typedConnect()
      yield* server.handle("query-machine", () => Effect.succeed({ state: "hibernating", uptime: 1 }))
      const counter = Metric.tagged(QmpMetrics.unknownEnumValues, "enum", "DeviceChangedDataState")
      const before = (yield* Metric.value(counter)).count
      expect(yield* qmp.execute("query-machine")).toEqual({ state: "hibernating", uptime: 1 })
      expect(yield* qmp.execute("query-machine")).toEqual({ state: "hibernating", uptime: 1 })
      expect((yield* Metric.value(counter)).count - before).toBe(2)
      const warnings = logs.entries.filter((entry) => entry.annotations.value === "hibernating")
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toMatchObject({ level: "WARN", annotations: { enum: "DeviceChangedDataState" } })
      expect(warnings[0].message).toContain("QEMU 0.1.0 does not know")
    }).pipe(Effect.provide(logs.layer))
  })

  it.scopedLive("a command the module lacks, and an error reply, are what they were untyped", () =>
    Effect.gen(function*() {
      const { qmp, server } = yield* typedConnect()
      yield* server.handle("x-newer", () => Effect.succeed({ anything: [1] }))
      expect(yield* qmp.executeUnknown("x-newer", { a: 1 })).toEqual({ anything: [1] })
      // `execute` of a name the module lacks does not compile; at run time (JavaScript, a newer QEMU)
      // it behaves as executeUnknown.
      const untypedExecute = qmp.execute as unknown as (
        command: string,
        args?: object
      ) => Effect.Effect<unknown, unknown>
      expect(yield* untypedExecute("x-newer", { a: 2 })).toEqual({ anything: [1] })
      expect((yield* server.commands).at(-1)).toMatchObject({ command: "x-newer", arguments: { a: 2 } })
      yield* server.handle("device-del", () => Effect.fail({ class: "DeviceNotFound", desc: "no d9" }))
      const error = yield* Effect.flip(qmp.execute("device-del", { id: "d9" }))
      expect(error).toMatchObject({ _tag: "QmpExecuteError", errorClass: "DeviceNotFound" })
    }))

  it.scopedLive("an out-of-band command the module allows", () =>
    Effect.gen(function*() {
      const { qmp, server } = yield* typedConnect()
      yield* server.handle("device-del", () => Effect.succeed({}), { oob: true })
      expect(yield* qmp.executeOob("device-del", { id: "d0" })).toEqual({})
      expect((yield* server.commands).at(-1)).toMatchObject({ command: "device-del", oob: true })
    }))
})

describe("typed listeners", () => {
  const changed = (id: string, state: unknown) => QmpMessage.makeEvent("DEVICE_CHANGED", { id, state })

  it.scopedLive("take events whose data matches their name's Schema, typed; a newer member passes", () =>
    Effect.gen(function*() {
      const { events, server } = yield* typedConnect()
      const listener = yield* events.listener(["DEVICE_CHANGED", "MACHINE_STOPPED"])
      yield* server.emit("DEVICE_CHANGED", { id: "d0", state: "busy", newer: true })
      yield* server.emit("MACHINE_STOPPED")
      const first = yield* listener.take
      expect(first).toMatchObject({ event: "DEVICE_CHANGED", data: { id: "d0", state: "busy", newer: true } })
      if (first.event === "DEVICE_CHANGED") expectTypeOf(first.data).toEqualTypeOf<Small.DeviceChangedData>()
      expect((yield* listener.take).event).toBe("MACHINE_STOPPED")
    }))

  it.scopedLive("an event of the wrong shape is kept from typed listeners (logged, counted), and reaches the others", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const { events, server, untyped } = yield* typedConnect(logs)
      const typed = yield* events.listener("DEVICE_CHANGED")
      const unknown = yield* events.listenerUnknown("DEVICE_CHANGED")
      const rejected = Metric.tagged(QmpMetrics.eventsRejected, "event", "DEVICE_CHANGED")
      const before = (yield* Metric.value(rejected)).count
      yield* server.emitAll([
        changed("d0", 3),
        QmpMessage.makeEvent("DEVICE_CHANGED", { state: "busy" }),
        changed("d1", "idle")
      ])
      expect((yield* typed.take).data).toEqual({ id: "d1", state: "idle" })
      expect(yield* typed.isEmpty).toBe(true)
      const heard = [yield* unknown.take, yield* unknown.take, yield* unknown.take]
      expect(heard.map((event) => event.data)).toEqual([{ id: "d0", state: 3 }, { state: "busy" }, {
        id: "d1",
        state: "idle"
      }])
      expect((yield* untyped.events.history).map((event) => event.event)).toEqual([
        "DEVICE_CHANGED",
        "DEVICE_CHANGED",
        "DEVICE_CHANGED"
      ])
      const warning = yield* logs.logged((entry) => entry.annotations.detail === "id: is missing")
      expect(warning.message).toContain("does not match its Schema (QEMU 0.1.0's)")
      yield* logs.logged((entry) => String(entry.annotations.detail).startsWith("state:"))
      expect((yield* Metric.value(rejected)).count - before).toBe(2)
    })
  })

  it.scopedLive("an event's data is checked once, however many typed listeners name it", () =>
    Effect.gen(function*() {
      const { events } = yield* typedConnect()
      const listeners = [
        yield* events.listener("DEVICE_CHANGED"),
        yield* events.listener(["DEVICE_CHANGED", "MACHINE_STOPPED"]),
        yield* events.listener("DEVICE_CHANGED", (event) => event.data.id === "d0")
      ]
      // The Schema reads `state` once per check: count the reads.
      let reads = 0
      const data = { id: "d0" } as { id: string; state: string }
      Object.defineProperty(data, "state", { enumerable: true, get: () => (reads++, "busy") })
      yield* events.publish(QmpMessage.makeEvent("DEVICE_CHANGED", data))
      for (const listener of listeners) expect(((yield* listener.take) as QmpMessage.QmpEvent).data).toBe(data)
      expect(reads).toBe(1)
    }))

  it.scopedLive("a filter sees the typed event, after its data was checked", () =>
    Effect.gen(function*() {
      const { events, server } = yield* typedConnect()
      const seen: Array<unknown> = []
      const busy = yield* events.listener("DEVICE_CHANGED", (event) => {
        seen.push(event.data.id)
        return event.data.state === "busy"
      })
      yield* server.emitAll([changed("d0", 7), changed("d1", "idle"), changed("d2", "busy")])
      expect((yield* busy.take).data.id).toBe("d2")
      expect(seen).toEqual(["d1", "d2"])
    }))

  it.scopedLive("subscribe is typed as listener is", () =>
    Effect.gen(function*() {
      const { events, server } = yield* typedConnect()
      const head = yield* Effect.fork(Stream.runHead(events.subscribe("DEVICE_CHANGED")))
      // The stream registers its listener when first pulled: emit until it has heard one.
      while ((yield* head.poll)._tag === "None") {
        yield* server.emitAll([changed("s0", 1), changed("s1", "idle")])
        yield* Effect.sleep("5 millis")
      }
      const first = yield* Fiber.join(head)
      expectTypeOf(first).toEqualTypeOf<Option.Option<EventListener.EventOf<"DEVICE_CHANGED", Small.Events>>>()
      expect(Option.map(first, (event) => event.data)).toEqual(Option.some({ id: "s1", state: "idle" }))
    }))

  it.scopedLive("EventListener.makeUnknown hears any name; EventListener.make only names the module knows", () =>
    Effect.gen(function*() {
      const { server, untyped } = yield* typedConnect()
      const any = yield* EventListener.makeUnknown({ names: "SOMETHING_NEW" })
      yield* untyped.listen(any)
      yield* server.emit("SOMETHING_NEW", { x: 1 })
      expect((yield* any.take).data).toEqual({ x: 1 })
    }))
})

/**
 * Never run: what must and must not compile. `tsc` checks this function like any other code, and an
 * `@ts-expect-error` whose line compiles is itself an error.
 */
export const compileOnly = (
  qmp: QmpClient.Service<Small.Commands>,
  events: QmpEvents.Service<Small.Events>,
  qemu: QmpClient.Service,
  registry: QmpEvents.Service
): Effect.Effect<void, QmpError.ExecuteError | QmpError.ListenerClosed, Scope.Scope> =>
  Effect.gen(function*() {
    // Commands: names, arguments, returns.
    // @ts-expect-error a misspelled command
    yield* qmp.execute("query-machin")
    // @ts-expect-error a command that requires arguments, without them
    yield* qmp.execute("device-del")
    // @ts-expect-error a required argument missing
    yield* qmp.execute("device-del", { force: true })
    // @ts-expect-error an argument of the wrong type
    yield* qmp.execute("device-del", { id: 1 })
    // @ts-expect-error arguments to a command that takes none
    yield* qmp.execute("query-machine", { verbose: true })
    // @ts-expect-error a command that may not run out of band
    yield* qmp.executeOob("query-machine")
    expectTypeOf(yield* qmp.execute("query-devices", { verbose: true })).toEqualTypeOf<
      ReadonlyArray<Small.DeviceAddedDataDevice>
    >()
    expectTypeOf(yield* qmp.executeUnknown("anything", { at: "all" })).toEqualTypeOf<unknown>()

    // Listeners: names, data, filters.
    // @ts-expect-error a misspelled event
    yield* events.listener("DEVICE_CHANGD")
    // @ts-expect-error a filter that reads a member the event lacks
    yield* events.listener("DEVICE_CHANGED", (event) => event.data.size > 0)
    const listener = yield* events.listener(["DEVICE_ADDED", "MACHINE_STOPPED"])
    const event = yield* listener.take
    expectTypeOf(event.event).toEqualTypeOf<"DEVICE_ADDED" | "MACHINE_STOPPED">()
    if (event.event === "DEVICE_ADDED") {
      const device = event.data.device
      if (device.kind === "disk") expectTypeOf(device.size).toEqualTypeOf<number>()
    } else {
      expectTypeOf(event).not.toHaveProperty("data")
    }
    expectTypeOf(yield* (yield* events.listenerUnknown("ANY")).take).toEqualTypeOf<QmpMessage.QmpEvent>()

    // Without a module: QEMU 7.2's.
    expectTypeOf(yield* qemu.execute("query-status")).toHaveProperty("status")
    // @ts-expect-error a misspelled QEMU 7.2 command
    yield* qemu.execute("query-statu")
    // @ts-expect-error a misspelled QEMU 7.2 event
    yield* registry.listener("STPO")
    const jobs = yield* registry.listener("JOB_STATUS_CHANGE")
    expectTypeOf((yield* jobs.take).data.status).toEqualTypeOf<
      | "undefined"
      | "created"
      | "running"
      | "paused"
      | "ready"
      | "standby"
      | "waiting"
      | "pending"
      | "aborting"
      | "concluded"
      | "null"
    >()
    // An untyped server's names go through the Unknown doors.
    yield* QmpTestServer.make().pipe(Effect.asVoid)
  })
