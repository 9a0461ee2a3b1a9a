/**
 * QEMU 7.2's generated module against a real QEMU 7.2: every no-argument query decodes through typed
 * `execute`, every event the suite can make QEMU send decodes with its generated Schema and reaches
 * typed listeners, and the schema check finds the module exactly the running QEMU's.
 *
 * "Decodes" is held to more than the client asks: the client keeps members a newer QEMU adds, but
 * here a member the Schema lacks is an error too (`onExcessProperty: "error"`), so that a Schema
 * which let everything through would fail.
 */
import { expect, it } from "@effect/vitest"
import { Effect, Either, LogLevel, Schema } from "effect"
import type { EventListener } from "../../src/index.js"
import type { QmpClient, QmpMessage } from "../../src/index.js"
import { SchemaCheck } from "../../src/index.js"
import { module as qemu72 } from "../../src/qemu/v7_2/index.js"
import type * as Qemu72 from "../../src/qemu/v7_2/index.js"
import * as Small from "../fixtures/small-qemu/index.js"
import { backup, nullNodes } from "../support/blockdev.js"
import { captureLogs } from "../support/logs.js"
import { describeQemu, session } from "../support/qemu.js"
import { takeUntil } from "../support/registry.js"

/** Decodes with nothing let through: every member QEMU sent is one the Schema names. */
const decodeExactly = (schema: Schema.Schema<any>, u: unknown) =>
  Schema.decodeUnknownEither(schema, { onExcessProperty: "error", errors: "all" })(u)

const schemas = Effect.promise(() => qemu72.schemas())

/** Every event heard decodes exactly with its name's Schema; the names heard. */
const expectEventsDecode = (heard: ReadonlyArray<QmpMessage.QmpEvent>) =>
  Effect.gen(function*() {
    const { events } = yield* schemas
    for (const event of heard) {
      expect(Object.hasOwn(qemu72.events, event.event), `${event.event} is in the module`).toBe(true)
      if (qemu72.events[event.event as keyof Qemu72.Events].data) {
        const decoded = decodeExactly(events[event.event], event.data)
        expect(decoded, `${event.event} ${JSON.stringify(event.data)}`).toEqual(Either.right(event.data))
      } else {
        expect(event.data, event.event).toBeUndefined()
      }
    }
    return new Set(heard.map((event) => event.event))
  })

/**
 * The commands of the module that take no arguments and only read: `query-*` and `x-query-*`. Each
 * is run on the QEMU that can answer it; those no QEMU here can answer are listed with the reason.
 */
const queries = Object.entries(qemu72.commands)
  .filter(([name, command]) => /^(x-)?query-/.test(name) && !command.argsRequired)
  .map(([name]) => name as keyof Qemu72.Commands & string)

/** They need a device or a board that `-machine none` has not: run on `-machine pc` with it. */
const needsPc: Readonly<Record<string, string>> = {
  "query-acpi-ospm-status": "an ACPI device",
  "query-balloon": "a balloon device (-device virtio-balloon)",
  "query-hotpluggable-cpus": "a machine with hot-pluggable CPUs",
  "query-vm-generation-id": "a vmgenid device (-device vmgenid)",
  "x-query-usb": "a USB bus (usb=on)"
}

/** No QEMU started here answers them. */
const unanswerable: Readonly<Record<string, string>> = {
  "query-sev-capabilities": "SEV needs KVM on an AMD host (\"KVM not enabled\")",
  "query-sev-launch-measure": "SEV needs a guest launched with SEV (\"SEV launch measurement is not available\")",
  "query-sgx": "SGX needs EPC sections, which need KVM (\"No EPC regions defined\")",
  "query-sgx-capabilities": "SGX needs KVM (\"SGX is not enabled in KVM\")",
  "x-query-profile": "Debian's QEMU is built without the internal profiler (\"Internal profiler not compiled\")"
}

const pcArgs = [
  "-machine",
  "pc,usb=on",
  "-S",
  "-display",
  "none",
  "-nodefaults",
  "-device",
  "virtio-balloon",
  "-device",
  "vmgenid",
  "-device",
  "ide-cd,id=cd0"
]

/** Runs each query through typed `execute` and checks the decoded reply against the Schema, exactly. */
const runQueries = (qmp: QmpClient.Service, names: ReadonlyArray<keyof Qemu72.Commands & string>) =>
  Effect.gen(function*() {
    const { returns } = yield* schemas
    for (const name of names) {
      // Typed execute: the reply is decoded with the command's Schema (a mismatch fails with
      // QmpProtocolError "UnexpectedReturn").
      const reply = yield* (qmp.execute as (command: string) => Effect.Effect<unknown, unknown>)(name).pipe(
        Effect.mapError((error) => new Error(`${name}: ${String(error)}`))
      )
      expect(decodeExactly(returns[name], reply), name).toEqual(Either.right(reply))
    }
  })

describeQemu("the QEMU 7.2 module on real QEMU 7.2", () => {
  it("lists every no-argument query as run somewhere or unanswerable", () => {
    expect(queries.length).toBe(68)
    for (const name of [...Object.keys(needsPc), ...Object.keys(unanswerable)]) expect(queries).toContain(name)
  })

  it.scopedLive("every no-argument query that -machine none answers decodes through typed execute", () =>
    Effect.gen(function*() {
      const { qmp } = yield* session()
      const names = queries.filter((name) => !(name in needsPc) && !(name in unanswerable))
      expect(names.length).toBe(58)
      yield* runQueries(qmp, names)
      // The reply is typed: query-status is the StatusInfo of the module.
      const status: Qemu72.StatusInfo = yield* qmp.execute("query-status")
      expect(status).toEqual({ running: true, singlestep: false, status: "running" })
    }))

  it.scopedLive("the queries that need a PC machine's devices decode on one", () =>
    Effect.gen(function*() {
      const { qmp } = yield* session({ args: pcArgs })
      yield* runQueries(qmp, Object.keys(needsPc) as ReadonlyArray<keyof Qemu72.Commands & string>)
      const balloon = yield* qmp.execute("query-balloon")
      expect(balloon.actual).toBeGreaterThan(0)
    }))

  it.scopedLive("the unanswerable queries are refused by QEMU, not by a decode", () =>
    Effect.gen(function*() {
      const { qmp } = yield* session({ args: pcArgs })
      for (const name of Object.keys(unanswerable)) {
        const error = yield* Effect.flip(qmp.executeUnknown(name))
        expect(error, name).toMatchObject({ _tag: "QmpExecuteError", errorClass: "GenericError" })
      }
    }))

  it.scopedLive("STOP, RESUME and SHUTDOWN decode and reach typed listeners", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session()
      const all = yield* events.listenerUnknown()
      const typed = yield* events.listener(["STOP", "RESUME", "SHUTDOWN"])
      yield* qmp.execute("stop")
      yield* qmp.execute("cont")
      yield* qmp.execute("quit")
      const heard = yield* takeUntil(typed, (event) => event.event === "SHUTDOWN")
      expect(heard.map((event) => event.event)).toEqual(["STOP", "RESUME", "SHUTDOWN"])
      const shutdown = heard[2]
      if (shutdown.event === "SHUTDOWN") expect(shutdown.data.reason).toBe("host-qmp-quit")
      expect(yield* expectEventsDecode(yield* all.clear)).toEqual(new Set(["STOP", "RESUME", "SHUTDOWN"]))
    }))

  it.scopedLive("a backup's JOB_STATUS_CHANGE, BLOCK_JOB_PENDING and BLOCK_JOB_COMPLETED decode and reach typed listeners", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session()
      const all = yield* events.listenerUnknown()
      const jobs = yield* events.listener(["JOB_STATUS_CHANGE", "BLOCK_JOB_PENDING", "BLOCK_JOB_COMPLETED"])
      const nodes = yield* nullNodes(qmp)
      yield* backup(qmp, "j1", nodes, { "auto-finalize": false })
      yield* takeUntil(jobs, (event) => event.event === "BLOCK_JOB_PENDING")
      yield* qmp.execute("job-finalize", { id: "j1" })
      const rest = yield* takeUntil(
        jobs,
        (event) => event.event === "JOB_STATUS_CHANGE" && event.data.status === "null"
      )
      const completed = rest.find((event) => event.event === "BLOCK_JOB_COMPLETED")
      expect(completed).toMatchObject({ data: { device: "j1", type: "backup", len: 1048576, offset: 1048576 } })
      expect(yield* expectEventsDecode(yield* all.clear)).toEqual(
        new Set(["JOB_STATUS_CHANGE", "BLOCK_JOB_PENDING", "BLOCK_JOB_COMPLETED"])
      )
    }))

  it.scopedLive("a cancelled backup's BLOCK_JOB_CANCELLED decodes", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session()
      const all = yield* events.listenerUnknown()
      const cancelled = yield* events.listener("BLOCK_JOB_CANCELLED")
      // Throttled to 1 MiB/s over 1 GiB: still running when it is cancelled.
      const nodes = yield* nullNodes(qmp, { size: 1024 * 1024 * 1024 })
      yield* backup(qmp, "j2", nodes, { speed: 1024 * 1024 })
      yield* qmp.execute("block-job-cancel", { device: "j2" })
      const event = yield* cancelled.take
      expect(event.data).toMatchObject({ device: "j2", type: "backup", len: 1024 * 1024 * 1024 })
      expect(event.data.offset).toBeLessThan(event.data.len)
      expect(yield* expectEventsDecode(yield* all.clear)).toContain("BLOCK_JOB_CANCELLED")
    }))

  it.scopedLive("a mirror's BLOCK_JOB_READY and its completion decode", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session()
      const all = yield* events.listenerUnknown()
      const mirror = yield* events.listener(["BLOCK_JOB_READY", "BLOCK_JOB_COMPLETED"])
      const nodes = yield* nullNodes(qmp)
      yield* qmp.execute("blockdev-mirror", {
        "job-id": "m1",
        device: nodes.source,
        target: nodes.target,
        sync: "full"
      })
      const ready = yield* mirror.take
      expect(ready).toMatchObject({ event: "BLOCK_JOB_READY", data: { device: "m1", type: "mirror" } })
      yield* qmp.execute("block-job-complete", { device: "m1" })
      expect(yield* mirror.take).toMatchObject({ event: "BLOCK_JOB_COMPLETED", data: { device: "m1", type: "mirror" } })
      const heard = yield* expectEventsDecode(yield* all.clear)
      expect(heard).toContain("BLOCK_JOB_READY")
      expect(heard).toContain("BLOCK_JOB_COMPLETED")
    }))

  it.scopedLive("an I/O error's BLOCK_JOB_ERROR decodes", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session()
      const all = yield* events.listenerUnknown()
      const errors = yield* events.listener(["BLOCK_JOB_ERROR", "BLOCK_JOB_COMPLETED"])
      yield* qmp.execute("blockdev-add", {
        driver: "blkdebug",
        "node-name": "bad",
        image: { driver: "null-co", "node-name": "inner", size: 1024 * 1024 },
        "inject-error": [{ event: "none", iotype: "read", errno: 5, immediately: true }]
      })
      yield* qmp.execute("blockdev-add", { driver: "null-co", "node-name": "tgt", size: 1024 * 1024 })
      yield* backup(qmp, "e1", { source: "bad", target: "tgt" })
      expect(yield* errors.take).toMatchObject({
        event: "BLOCK_JOB_ERROR",
        data: { device: "e1", operation: "read", action: "report" }
      })
      expect(yield* errors.take).toMatchObject({ event: "BLOCK_JOB_COMPLETED", data: { error: "Input/output error" } })
      expect(yield* expectEventsDecode(yield* all.clear)).toContain("BLOCK_JOB_ERROR")
    }))

  it.scopedLive("on a PC machine: DEVICE_DELETED (usb-mouse), DEVICE_TRAY_MOVED, RESET and POWERDOWN decode", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session({ args: pcArgs })
      const all = yield* events.listenerUnknown()
      const deleted = yield* events.listener("DEVICE_DELETED")
      yield* qmp.execute("device_add", { driver: "usb-mouse", id: "m1" })
      yield* qmp.execute("device_del", { id: "m1" })
      const event: EventListener.EventOf<"DEVICE_DELETED"> = yield* deleted.take
      expect(event.data).toEqual({ device: "m1", path: "/machine/peripheral/m1" })
      yield* qmp.execute("blockdev-open-tray", { id: "cd0" })
      yield* qmp.execute("system_reset")
      yield* qmp.execute("system_powerdown")
      // POWERDOWN comes before system_powerdown's reply: every event is in by now.
      expect(yield* expectEventsDecode(yield* all.clear)).toEqual(
        new Set(["DEVICE_DELETED", "DEVICE_TRAY_MOVED", "RESET", "POWERDOWN"])
      )
    }))

  it.scopedLive("SchemaCheck finds the module exactly the running QEMU's", () =>
    Effect.gen(function*() {
      const { qmp } = yield* session()
      const report = yield* SchemaCheck.check(qmp, qemu72)
      expect(report).toEqual({
        missingCommands: [],
        newCommands: [],
        missingEvents: [],
        newEvents: [],
        differences: []
      })
      // Another QEMU's module is told apart.
      const small = yield* SchemaCheck.check(qmp, Small.module)
      expect(small.missingCommands).toEqual([
        "device-add",
        "device-del",
        "query-devices",
        "query-machine",
        "x-old-reset"
      ])
      expect(small.newCommands.length).toBe(216)
      expect(SchemaCheck.isCompatible(small)).toBe(false)
    }))

  it.scopedLive("checkSchema at connect: logged when it matches; a mismatch fails connecting when asked to", () => {
    const logs = captureLogs({ minimumLevel: LogLevel.Debug })
    return Effect.gen(function*() {
      yield* session({ client: { checkSchema: {} } })
      expect(logs.messages("DEBUG")).toContain("This QEMU's schema is QEMU 7.2.22's module's, exactly.")
      yield* session({ client: { checkSchema: { module: Small.module } } })
      const warning = logs.messages("WARN").find((message) => message.startsWith("Commands of QEMU 0.1.0's module"))
      expect(warning).toContain("Not compatible")
      const refused = yield* Effect.flip(
        session({ client: { checkSchema: { module: Small.module, onIncompatible: "fail" } } })
      )
      expect(refused).toMatchObject({ _tag: "QmpNegotiationError", reason: "IncompatibleSchema" })
      expect((refused as Error).message).toContain("x-old-reset")
    }).pipe(Effect.provide(logs.layer))
  })
})
