/**
 * QmpFleet on real QEMU: a QEMU killed and started again on the same socket path, a QEMU that stops
 * answering (SIGSTOP) beside 20 other VMs, and 200 VMs at once (a few real QEMUs among test servers).
 */
import { expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Metric, Option, Schedule, Stream } from "effect"
import type { Scope } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import type { QmpAddress } from "../../src/index.js"
import { QemuProcess, QmpFleet, QmpMetrics } from "../../src/index.js"
import * as QmpTestServer from "../../src/testing/QmpTestServer.js"
import { captureLogs } from "../support/logs.js"
import { isAlive, tempDir } from "../support/os.js"
import { binary, describeQemu } from "../support/qemu.js"

interface RawQemu {
  readonly pid: number
  readonly signal: (signal: NodeJS.Signals) => Effect.Effect<void>
  /** Completes when the process has exited. */
  readonly exited: Effect.Effect<void>
}

/**
 * A QEMU on the QMP socket `path`, started by hand (the fleet is its only client), for the current
 * scope: closing it resumes the process if it was stopped and kills it.
 */
const startQemu = (path: string): Effect.Effect<RawQemu, never, Scope.Scope> =>
  Effect.gen(function*() {
    const exit = yield* Deferred.make<void>()
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const child = ChildProcess.spawn(
          binary!,
          [...QemuProcess.defaultArgs, "-qmp", `unix:${path},server=on,wait=off`],
          { stdio: "ignore" }
        )
        child.once("exit", () => Deferred.unsafeDone(exit, Effect.void))
        return child
      }),
      (child) =>
        Effect.gen(function*() {
          if (isAlive(child.pid!)) {
            process.kill(child.pid!, "SIGCONT")
            process.kill(child.pid!, "SIGKILL")
          }
          yield* Deferred.await(exit)
        })
    )
    return {
      pid: child.pid!,
      signal: (signal) => Effect.sync(() => process.kill(child.pid!, signal)),
      exited: Deferred.await(exit)
    }
  })

/** Waits until QEMU has made its socket, so that the fleet's first connection finds it. */
const socketReady = (path: string) =>
  Effect.repeat(Effect.sync(() => Fs.existsSync(path)), { until: (exists) => exists, schedule: Schedule.spaced(10) })

/** Waits until the VM's runstate is `tag`, and gives it. */
const reach = (runstate: { readonly changes: Stream.Stream<QmpFleet.Runstate> }, tag: QmpFleet.Runstate["_tag"]) =>
  runstate.changes.pipe(Stream.filter((state) => state._tag === tag), Stream.runHead, Effect.map(Option.getOrThrow))

describeQemu("QmpFleet on real QEMU", () => {
  it.scopedLive("QEMU killed and restarted on the same socket: the gap event, then the new QEMU's events", () =>
    Effect.gen(function*() {
      const path = Path.join(yield* tempDir(), "vm.sock")
      const first = yield* startQemu(path)
      yield* socketReady(path)
      const fleet = yield* QmpFleet.make({
        resolve: () => Effect.succeed({ path }),
        reconnect: Schedule.spaced("50 millis"),
        client: { connectTimeout: "5 seconds" }
      })
      const client = yield* fleet.client("vm")
      const events = yield* fleet.events("vm")
      const runstate = yield* fleet.runstate("vm")
      const listener = yield* events.listenerUnknown(undefined, undefined, { gaps: true })
      const stops = yield* events.listener("STOP")
      yield* client.execute("stop")
      expect((yield* listener.take).event).toBe("STOP")

      // A command QEMU will never answer: it is stopped, then killed.
      yield* first.signal("SIGSTOP")
      const pending = yield* Effect.fork(client.execute("query-status"))
      yield* Effect.sleep("50 millis")
      yield* first.signal("SIGKILL")
      yield* first.exited
      expect(yield* Effect.flip(Fiber.join(pending))).toMatchObject({ _tag: "QmpDisconnected" })
      yield* reach(runstate, "Reconnecting")
      expect(yield* Effect.flip(client.execute("query-status"))).toMatchObject({ _tag: "QmpDisconnected" })

      // A new QEMU on the same path: the fleet finds it on its schedule.
      yield* startQemu(path)
      yield* reach(runstate, "Connected")
      expect(yield* client.execute("query-status")).toMatchObject({ status: "running" })
      yield* client.execute("stop")
      const gap = yield* listener.take
      expect(gap).toMatchObject({ event: QmpFleet.gapEvent, data: { vm: "vm" } })
      expect((gap.data as QmpFleet.GapData).attempts).toBeGreaterThanOrEqual(1)
      expect((yield* listener.take).event).toBe("STOP")
      expect((yield* stops.history).map((event) => event.event)).toEqual(["STOP", "STOP"])
      expect(client.greeting.QMP.version.qemu.major).toBeGreaterThanOrEqual(7)
    }))

  it.scopedLive("a stopped QEMU is reported within the ping timeout while 20 other VMs answer; SIGCONT: it recovers", () =>
    Effect.gen(function*() {
      const logs = captureLogs()
      const path = Path.join(yield* tempDir(), "vm.sock")
      const qemu = yield* startQemu(path)
      yield* socketReady(path)
      const others = yield* Effect.all(Array.from({ length: 20 }, () => QmpTestServer.make()))
      const test = Effect.gen(function*() {
        const fleet = yield* QmpFleet.make({
          resolve: (vm) => Effect.succeed(vm === "qemu" ? { path } : others[Number(vm)].address),
          ping: { every: "100 millis", timeout: "500 millis" },
          reconnect: Schedule.spaced("100 millis"),
          client: { connectTimeout: "1 second" }
        })
        const client = yield* fleet.client("qemu")
        const runstate = yield* fleet.runstate("qemu")
        const clients = yield* Effect.forEach(others, (_, i) => fleet.client(String(i)))
        yield* reach(runstate, "Connected")

        // Stopped until the test resumes it, or its scope closes (startQemu's finalizer resumes it too).
        yield* Effect.acquireRelease(qemu.signal("SIGSTOP"), () => qemu.signal("SIGCONT"))
        // Commands to the other VMs go on, round after round, until the stopped one is reported.
        let rounds = 0
        const round = Effect.forEach(clients, (other) => other.execute("query-status"), {
          concurrency: "unbounded",
          discard: true
        }).pipe(Effect.tap(() => Effect.sync(() => rounds++)))
        const reported = yield* reach(runstate, "Reconnecting").pipe(
          Effect.raceFirst(Effect.forever(round).pipe(Effect.zipRight(Effect.never)))
        )
        expect(reported).toMatchObject({ reason: { _tag: "QmpDisconnected", reason: "Unresponsive" } })
        expect(rounds).toBeGreaterThan(0)
        expect(logs.messages("WARN").some((message) => message.includes("did not answer a ping within 500ms")))
          .toBe(true)
        expect(yield* Metric.value(QmpMetrics.vmUnresponsive.pipe(Metric.tagged("vm", "qemu")))).toMatchObject({
          count: 1
        })
        yield* round

        yield* qemu.signal("SIGCONT")
        yield* reach(runstate, "Connected")
        expect(yield* client.execute("query-status")).toMatchObject({ status: "running" })
      })
      yield* test.pipe(Effect.provide(logs.layer))
    }))

  it.scopedLive(
    "200 VMs at once, 3 real QEMUs among them: nothing crosses VMs, all tags each event",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir()
        const qemus = ["q0", "q1", "q2"]
        yield* Effect.forEach(qemus, (vm) => startQemu(Path.join(dir, `${vm}.sock`)), { discard: true })
        yield* Effect.forEach(qemus, (vm) => socketReady(Path.join(dir, `${vm}.sock`)), { discard: true })
        const servers = yield* Effect.all(Array.from({ length: 197 }, () => QmpTestServer.make()))
        const vms = [...qemus, ...servers.map((_, i) => `t${i}`)]
        const addressOf = (vm: string): QmpAddress.QmpAddress =>
          vm.startsWith("q") ? { path: Path.join(dir, `${vm}.sock`) } : servers[Number(vm.slice(1))].address
        const fleet = yield* QmpFleet.make({ resolve: (vm) => Effect.succeed(addressOf(vm)) })

        const seen: Array<QmpFleet.FleetEvent> = []
        yield* fleet.all.pipe(Stream.runForEach((event) => Effect.sync(() => seen.push(event))), Effect.forkScoped)
        yield* Effect.yieldNow()

        // Each VM: stop and cont `rounds` times (its own number of times), and for a test server, a
        // custom event naming its VM; all VMs at once.
        const rounds = (i: number) => 1 + (i % 3)
        const perVm = yield* Effect.forEach(vms, (vm, i) =>
          Effect.gen(function*() {
            const client = yield* fleet.client(vm)
            const listener = yield* (yield* fleet.events(vm)).listenerUnknown()
            for (let r = 0; r < rounds(i); r++) {
              yield* client.execute("stop")
              if (!vm.startsWith("q")) yield* servers[Number(vm.slice(1))].emit("X_VM", { vm, r })
              yield* client.execute("cont")
            }
            return { vm, listener }
          }), { concurrency: "unbounded" })

        const expected = (vm: string, i: number) =>
          Array.from({ length: rounds(i) }).flatMap(() =>
            vm.startsWith("q") ? ["STOP", "RESUME"] : ["STOP", "X_VM", "RESUME"]
          )
        const total = vms.reduce((sum, vm, i) => sum + expected(vm, i).length, 0)
        yield* Effect.repeat(Effect.sync(() => seen.length), {
          until: (n) => n >= total,
          schedule: Schedule.spaced(10)
        })
        expect(seen).toHaveLength(total)
        yield* Effect.forEach(perVm, ({ listener, vm }, i) =>
          Effect.gen(function*() {
            const events = yield* listener.clear
            expect(events.map((event) => event.event)).toEqual(expected(vm, i))
            for (const event of events) if (event.event === "X_VM") expect(event.data?.vm).toBe(vm)
            const tagged = seen.filter((event) => event.vm === vm).map((event) => event.event)
            expect(tagged).toEqual(events)
          }), { discard: true })
        for (const { event, vm } of seen) if (event.event === "X_VM") expect(event.data?.vm).toBe(vm)
      }),
    { timeout: 60_000 }
  )
})
