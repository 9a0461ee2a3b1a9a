/**
 * QmpFleet against QmpTestServer, in this process, on TestClock where time matters: reconnects and
 * gap events, the ref-counted sharing of one connection per VM, idleTimeToLive, liveness pings,
 * bad options. Real QEMU killed, restarted and stopped is in test/qemu/fleet.test.ts.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Metric, Option, Ref, Schedule, Scope, Stream, TestClock } from "effect"
import { EventListener, QmpAddress, QmpFleet, QmpMetrics } from "../src/index.js"
import { events as qemuEvents } from "../src/qemu/v7_2/schemas.js"
import * as QmpTestServer from "../src/testing/QmpTestServer.js"
import { captureLogs } from "./support/logs.js"

type Runstate = QmpFleet.Runstate["_tag"]

/** Waits until the VM's runstate is `tag` (and `also` accepts it), and gives it. */
const reach = (
  runstate: { readonly changes: Stream.Stream<QmpFleet.Runstate> },
  tag: Runstate,
  also: (state: any) => boolean = () => true
): Effect.Effect<QmpFleet.Runstate> =>
  runstate.changes.pipe(
    Stream.filter((state) => state._tag === tag && also(state)),
    Stream.runHead,
    Effect.map(Option.getOrThrow)
  )

/** Waits until the VM in a gap has failed `attempts` reconnect attempts. */
const failed = (runstate: { readonly changes: Stream.Stream<QmpFleet.Runstate> }, attempts: number) =>
  reach(runstate, "Reconnecting", (state) => state.attempts === attempts)

/** The names of a listener's pending events, taken. */
const drain = (listener: EventListener.EventListener): Effect.Effect<ReadonlyArray<string>> =>
  Effect.map(listener.clear, (events) => events.map((event) => event.event))

/** An address where nothing listens: connecting fails at once. */
const nowhere: QmpAddress.QmpAddress = { path: "/nonexistent/effect-qmp-fleet.sock" }

describe("QmpFleet (QmpTestServer)", () => {
  describe("reconnecting, and the gap event", () => {
    it.scoped("listeners survive a drop; the gap event goes first to the default and gaps listeners only", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make()
        yield* server.handle("slow", QmpTestServer.silent)
        // Where the VM is: nowhere while the test holds the gap open.
        const target = yield* Ref.make<QmpAddress.QmpAddress>(server.address)
        const fleet = yield* QmpFleet.make({ resolve: () => Ref.get(target), reconnect: Schedule.spaced("1 second") })
        const client = yield* fleet.client("vm1")
        const events = yield* fleet.events("vm1")
        const runstate = yield* fleet.runstate("vm1")
        const typed = yield* events.listener("STOP")
        const gaps = yield* events.listenerUnknown(undefined, undefined, { gaps: true })
        const namedWithGaps = yield* events.listenerUnknown("RESUME", undefined, { gaps: true })
        const plain = yield* events.listenerUnknown()
        const greeting = client.greeting

        yield* client.execute("stop")
        const pending = yield* Effect.fork(client.executeUnknown("slow"))
        expect((yield* server.nextCommand).command).toBe("qmp_capabilities")
        yield* server.nextCommand // stop
        expect((yield* server.nextCommand).command).toBe("slow")

        yield* Ref.set(target, nowhere)
        yield* server.destroy
        // The command pending at the drop fails; it is never sent again.
        expect(yield* Effect.flip(Fiber.join(pending))).toMatchObject({ _tag: "QmpDisconnected" })
        const gap = yield* failed(runstate, 1)
        expect(gap).toMatchObject({ reason: { _tag: "QmpDisconnected" } })
        if (gap._tag !== "Reconnecting") return
        // During the gap a command fails at once (no clock moves), and the client is the same object.
        expect(yield* Effect.flip(client.execute("query-status"))).toMatchObject({ _tag: "QmpDisconnected" })
        expect(yield* client.runstate.get).toMatchObject({ _tag: "Disconnected" })
        expect(yield* fleet.client("vm1")).toBe(client)

        // Two scheduled attempts fail (nothing there), the third finds the server again.
        yield* TestClock.adjust("1 second")
        yield* failed(runstate, 2)
        yield* TestClock.adjust("1 second")
        yield* failed(runstate, 3)
        yield* Ref.set(target, server.address)
        yield* TestClock.adjust("1 second")
        yield* reach(runstate, "Connected")
        expect(yield* client.execute("query-status")).toMatchObject({ status: "paused" })
        yield* client.execute("cont")
        expect(client.greeting).toEqual(greeting)

        const defaults = yield* events.events.clear
        expect(defaults.map((event) => event.event)).toEqual(["STOP", QmpFleet.gapEvent, "RESUME"])
        const gapEvent = defaults[1]
        expect(QmpFleet.isGapEvent(gapEvent)).toBe(true)
        expect(gapEvent).toMatchObject({
          event: "effect-qmp.gap",
          data: { vm: "vm1", reason: gap.reason.reason, message: gap.reason.message, attempts: 4 },
          timestamp: (gapEvent.data as QmpFleet.GapData).restored
        })
        const data = gapEvent.data as QmpFleet.GapData
        expect(data.restored.seconds - data.lost.seconds).toBe(3)
        expect(yield* drain(gaps)).toEqual(["STOP", QmpFleet.gapEvent, "RESUME"])
        expect(yield* drain(namedWithGaps)).toEqual([QmpFleet.gapEvent, "RESUME"])
        expect(yield* drain(plain)).toEqual(["STOP", "RESUME"])
        // A typed listener by name never sees it.
        expect((yield* typed.history).map((event) => event.event)).toEqual(["STOP"])
        // Never replayed: the second connection got qmp_capabilities, query-status and cont only.
        const commands = yield* server.commands
        expect(commands.filter((command) => command.command === "slow")).toHaveLength(1)
        expect(commands.filter((command) => command.connection === 2).map((command) => command.command))
          .toEqual(["qmp_capabilities", "query-status", "cont"])
        expect(yield* Metric.value(QmpMetrics.vmReconnects.pipe(Metric.tagged("vm", "vm1")))).toMatchObject({
          count: 1
        })
      }))

    it("the gap event's name cannot be a QEMU event's", () => {
      expect(QmpFleet.gapEvent).toBe("effect-qmp.gap")
      // QEMU names events in upper case, digits and underscores.
      for (const name of Object.keys(qemuEvents)) expect(name).toMatch(/^[A-Z0-9_]+$/)
      expect(QmpFleet.gapEvent).not.toMatch(/^[A-Z0-9_]+$/)
      expect(QmpFleet.isGapEvent({ event: "STOP" })).toBe(false)
    })

    it.scoped("when the schedule gives up, the VM is gone: listeners yield what they hold, then end", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make()
        const target = yield* Ref.make<QmpAddress.QmpAddress>(server.address)
        const fleet = yield* QmpFleet.make({
          resolve: () => Ref.get(target),
          reconnect: Schedule.spaced("1 second").pipe(Schedule.intersect(Schedule.recurs(2)))
        })
        const client = yield* fleet.client("vm1")
        const events = yield* fleet.events("vm1")
        const runstate = yield* fleet.runstate("vm1")
        const listener = yield* events.listenerUnknown(undefined, undefined, { gaps: true })
        yield* client.execute("stop")
        yield* Ref.set(target, nowhere)
        yield* server.destroy
        yield* failed(runstate, 1)
        yield* TestClock.adjust("1 second")
        yield* failed(runstate, 2)
        yield* TestClock.adjust("1 second")
        const gone = yield* reach(runstate, "Gone")
        expect(gone).toMatchObject({ reason: { _tag: "QmpDisconnected" } })
        const reason = (gone as Extract<QmpFleet.Runstate, { _tag: "Gone" }>).reason
        expect(reason.message).toContain("gave up reconnecting after 3 attempts")
        expect((yield* listener.take).event).toBe("STOP")
        expect(yield* Effect.flip(listener.take)).toBe(reason)
        expect(yield* Effect.flip(events.events.take.pipe(Effect.repeat({ until: () => false })))).toBe(reason)
        expect(yield* client.closed).toBe(reason)
        expect(yield* Effect.flip(client.execute("query-status"))).toBe(reason)
        // The next use of the VM starts afresh.
        yield* Ref.set(target, server.address)
        const again = yield* fleet.client("vm1")
        expect(again).not.toBe(client)
        expect(yield* again.execute("query-status")).toMatchObject({ status: "paused" })
      }))

    it.scoped("a first connection that fails fails client(vm) with the error, and holds nothing", () =>
      Effect.gen(function*() {
        const fleet = yield* QmpFleet.make({
          resolve: (vm) => vm === "bad" ? Effect.fail("no such VM") : Effect.succeed(nowhere)
        })
        expect(yield* Effect.flip(fleet.client("bad"))).toMatchObject({ _tag: "QmpResolveError", vm: "bad" })
        expect(yield* Effect.flip(fleet.client("missing"))).toMatchObject({ _tag: "QmpConnectError" })
        const wrong = yield* QmpFleet.make({ resolve: () => Effect.succeed({ port: "x" } as any) })
        const error = yield* Effect.flip(wrong.client("vm"))
        expect(error).toMatchObject({ _tag: "QmpResolveError" })
        expect(error.message).toContain("not a QmpAddress")
      }))
  })

  describe("sharing one connection per VM", () => {
    it.scopedLive("100 concurrent client(vm) calls open one socket and give one client", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make({ exclusive: false })
        const fleet = yield* QmpFleet.make({ resolve: () => Effect.succeed(server.address) })
        const clients = yield* Effect.all(Array.from({ length: 100 }, () => fleet.client("vm1")), {
          concurrency: "unbounded"
        })
        expect(new Set(clients).size).toBe(1)
        yield* Effect.forEach(clients, (client) => client.execute("query-status"), { concurrency: "unbounded" })
        expect(yield* server.connections).toHaveLength(1)
        const commands = yield* server.commands
        expect(commands.filter((command) => command.command === "qmp_capabilities")).toHaveLength(1)
        expect(new Set(commands.map((command) => command.connection))).toEqual(new Set([1]))
      }))

    it.scoped("closing one user's scope releases its share; the last release closes after idleTimeToLive", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make()
        const fleet = yield* QmpFleet.make({
          resolve: () => Effect.succeed(server.address),
          idleTimeToLive: "2 seconds"
        })
        const first = yield* Scope.make()
        const second = yield* Scope.make()
        const a = yield* fleet.client("vm1").pipe(Scope.extend(first))
        const b = yield* fleet.client("vm1").pipe(Scope.extend(second))
        expect(a).toBe(b)
        const connection = yield* server.accept
        // A listener registered by hand outlives the scopes: it shows when the VM is let go of.
        const events = yield* fleet.events("vm1").pipe(Scope.extend(second))
        const listener = yield* EventListener.make()
        yield* events.register(listener)

        yield* Scope.close(first, Exit.void)
        yield* TestClock.adjust("5 seconds")
        expect(yield* connection.isOpen).toBe(true)
        expect(yield* b.execute("query-status")).toMatchObject({ status: "running" })

        yield* Scope.close(second, Exit.void)
        yield* TestClock.adjust("1999 millis")
        expect(yield* connection.isOpen).toBe(true)
        expect(yield* listener.isEmpty).toBe(true)
        yield* TestClock.adjust("1 millis")
        yield* connection.closed
        expect(yield* Effect.flip(listener.take)).toMatchObject({ _tag: "QmpDisconnected", reason: "Disconnected" })
        expect(yield* Effect.flip(a.execute("query-status"))).toMatchObject({ _tag: "QmpDisconnected" })
        // Used again, the VM connects afresh.
        const c = yield* fleet.client("vm1")
        expect(c).not.toBe(a)
        expect((yield* server.accept).id).toBe(2)
      }))

    it.scoped("disconnect lets go of the VM for every user; its next use connects afresh", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make()
        const fleet = yield* QmpFleet.make({ resolve: () => Effect.succeed(server.address) })
        const client = yield* fleet.client("vm1")
        const listener = yield* (yield* fleet.events("vm1")).listenerUnknown()
        yield* client.disconnect
        expect(yield* Effect.flip(listener.take)).toMatchObject({ reason: "Disconnected" })
        const next = yield* fleet.client("vm1")
        expect(next).not.toBe(client)
        expect(yield* next.execute("query-status")).toMatchObject({ status: "running" })
      }))
  })

  describe("liveness", () => {
    it.scoped("a VM that stops answering pings is reported and its connection recycled; others go on", () =>
      Effect.gen(function*() {
        const logs = captureLogs()
        // Not exclusive: the reconnect attempt is greeted at once, then stalled like the rest.
        const silent = yield* QmpTestServer.make({ exclusive: false })
        const other = yield* QmpTestServer.make()
        const test = Effect.gen(function*() {
          const fleet = yield* QmpFleet.make({
            resolve: (vm) => Effect.succeed(vm === "silent" ? silent.address : other.address),
            ping: { every: "5 seconds", timeout: "1 second" },
            reconnect: Schedule.spaced("1 second")
          })
          const client = yield* fleet.client("silent")
          const otherClient = yield* fleet.client("other")
          const runstate = yield* fleet.runstate("silent")
          const connection = yield* silent.accept
          // The VM stops answering, this connection and the next ones alike.
          yield* silent.stall()
          yield* TestClock.adjust("5 seconds")
          // The ping is out; nothing is reported before its timeout.
          yield* TestClock.adjust("999 millis")
          expect((yield* runstate.get)._tag).toBe("Connected")
          expect(yield* otherClient.execute("query-status")).toMatchObject({ status: "running" })
          yield* TestClock.adjust("1 millis")
          const gap = yield* reach(runstate, "Reconnecting")
          expect(gap).toMatchObject({ reason: { reason: "Unresponsive" } })
          expect(yield* Metric.value(QmpMetrics.vmUnresponsive.pipe(Metric.tagged("vm", "silent")))).toMatchObject({
            count: 1
          })
          expect(logs.messages("WARN").some((message) => message.includes("did not answer a ping"))).toBe(true)
          // The other VM answered its ping: its round trip is recorded, tagged with its VM.
          expect((yield* Metric.value(QmpMetrics.pingLatency.pipe(Metric.tagged("vm", "other")))).count).toBe(1)
          // It answers again: the VM recovers.
          yield* silent.release
          // The server sees the dropped connection once it reads again.
          yield* connection.closed
          yield* reach(runstate, "Connected")
          expect(yield* client.execute("query-status")).toMatchObject({ status: "running" })
          expect(yield* otherClient.execute("query-status")).toMatchObject({ status: "running" })
        })
        yield* test.pipe(Effect.provide(logs.layer))
      }))
  })

  describe("fleet.all and metrics", () => {
    it.scopedLive("all tags each event with its VM, gap events too, each VM's in order", () =>
      Effect.gen(function*() {
        const servers = yield* Effect.all(Array.from({ length: 3 }, () => QmpTestServer.make()))
        const fleet = yield* QmpFleet.make({
          resolve: (vm) => Effect.succeed(servers[Number(vm.slice(2))].address),
          reconnect: Schedule.spaced("10 millis")
        })
        const seen: Array<QmpFleet.FleetEvent> = []
        const reader = yield* fleet.all.pipe(
          Stream.runForEach((event) => Effect.sync(() => seen.push(event))),
          Effect.fork
        )
        yield* Effect.yieldNow()
        const clients = yield* Effect.forEach(servers, (_, i) => fleet.client(`vm${i}`))
        yield* Effect.forEach(clients, (client, i) =>
          Effect.forEach(Array.from({ length: i + 1 }), () =>
            Effect.zipRight(client.execute("stop"), client.execute("cont"))), { concurrency: "unbounded" })
        const gapSeen = Effect.sync(() =>
          seen.some((event) =>
            event.event.event === QmpFleet.gapEvent
          )
        )
        yield* Effect.repeat(Effect.sync(() => seen.length), { until: (n) => n >= 12, schedule: Schedule.spaced(5) })
        yield* servers[1].destroy
        yield* Effect.repeat(gapSeen, { until: (seen) => seen, schedule: Schedule.spaced(5) })
        yield* clients[1].execute("stop")
        yield* Effect.repeat(Effect.sync(() => seen.length), { until: (n) => n >= 14, schedule: Schedule.spaced(5) })
        const of = (vm: string) => seen.filter((event) => event.vm === vm).map(({ event }) => event.event)
        expect(of("vm0")).toEqual(["STOP", "RESUME"])
        expect(of("vm1")).toEqual(["STOP", "RESUME", "STOP", "RESUME", QmpFleet.gapEvent, "STOP"])
        expect(of("vm2")).toEqual(["STOP", "RESUME", "STOP", "RESUME", "STOP", "RESUME"])
        expect(seen.find((event) => event.event.event === QmpFleet.gapEvent)?.event.data).toMatchObject({ vm: "vm1" })
        yield* Fiber.interrupt(reader)
        expect(yield* Metric.value(QmpMetrics.vmConnected.pipe(Metric.tagged("vm", "vm2")))).toMatchObject({
          value: 1
        })
        // A connection's own metrics carry the VM beside the address.
        const received = QmpMetrics.eventsReceived.pipe(
          Metric.tagged("address", QmpAddress.format(servers[2].address)),
          Metric.tagged("vm", "vm2")
        )
        expect((yield* Metric.value(received)).count).toBe(6)
      }))
  })

  describe("options", () => {
    it.scoped("bad ping, allCapacity or defaultListener options die with IllegalArgumentException", () =>
      Effect.gen(function*() {
        const resolve = () => Effect.succeed(nowhere)
        const bad = [
          QmpFleet.make({ resolve, ping: { every: "0 millis", timeout: "1 second" } }),
          QmpFleet.make({ resolve, ping: { every: "1 second", timeout: Infinity } }),
          QmpFleet.make({ resolve, allCapacity: 0 }),
          QmpFleet.make({ resolve, defaultListener: { capacity: -1 } })
        ]
        for (const make of bad) {
          const exit = yield* Effect.exit(make)
          expect(Exit.isFailure(exit) && String(exit.cause)).toContain("IllegalArgumentException")
        }
      }))

    it.scoped("each VM's default listener is bounded by the fleet's defaultListener (100 by default)", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make()
        const fleet = yield* QmpFleet.make({
          resolve: () => Effect.succeed(server.address),
          defaultListener: { capacity: 3 }
        })
        const client = yield* fleet.client("vm1")
        const events = yield* fleet.events("vm1")
        for (let i = 0; i < 3; i++) yield* Effect.zipRight(client.execute("stop"), client.execute("cont"))
        expect(yield* drain(events.events)).toEqual(["RESUME", "STOP", "RESUME"])
        expect(yield* events.events.dropped).toBe(3)
        expect(QmpFleet.defaultListener).toEqual({ capacity: 100, historyLimit: 100 })
      }))
  })
})
