/**
 * QmpClient against a real QEMU over a Unix socket: greeting, commands, errors, concurrency, block
 * jobs. (The seed's tutorial runs on real QEMU too: tutorial.test.ts.)
 */
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { QmpMessage } from "../../src/index.js"
import { EventFilter, EventListener } from "../../src/index.js"
import { backup, nullNodes } from "../support/blockdev.js"
import { describeQemu, session } from "../support/qemu.js"
import { takeUntil } from "../support/registry.js"

describeQemu("QmpClient on real QEMU (Unix socket)", () => {
  it.scopedLive("reads the greeting: QEMU's version, oob offered and enabled", () =>
    Effect.gen(function*() {
      const { qmp } = yield* session()
      const version = (yield* qmp.execute("query-version")) as {
        readonly qemu: { readonly major: number; readonly minor: number; readonly micro: number }
        readonly package: string
      }
      expect(qmp.greeting.QMP.version.qemu).toEqual(version.qemu)
      expect(qmp.greeting.QMP.version.package).toBe(version.package)
      expect(version.qemu.major).toBeGreaterThanOrEqual(7)
      expect(qmp.greeting.QMP.capabilities).toContain("oob")
      expect(qmp.oob).toBe(true)
    }))

  it.scopedLive("query-status: a -machine none VM is running", () =>
    Effect.gen(function*() {
      const { qmp } = yield* session()
      expect(yield* qmp.execute("query-status")).toMatchObject({ status: "running", running: true })
    }))

  it.scopedLive("stop and cont: listeners hear STOP and RESUME by the time each command returns", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session()
      const listener = yield* events.listener(["STOP", "RESUME"])
      yield* qmp.execute("stop")
      expect(yield* listener.isEmpty).toBe(false)
      expect((yield* listener.take).event).toBe("STOP")
      expect(yield* qmp.execute("query-status")).toMatchObject({ status: "paused", running: false })
      yield* qmp.execute("cont")
      expect((yield* listener.take).event).toBe("RESUME")
      expect(yield* qmp.execute("query-status")).toMatchObject({ status: "running", running: true })
      // Idempotent state changes emit nothing.
      yield* qmp.execute("cont")
      expect(yield* listener.isEmpty).toBe(true)
    }))

  it.scopedLive("200 concurrent execute calls are each answered correctly", () =>
    Effect.gen(function*() {
      const { qmp } = yield* session()
      const results = yield* Effect.forEach(
        Array.from({ length: 200 }, (_, i) => i),
        (i) => qmp.execute("human-monitor-command", { "command-line": `print ${i}` }),
        { concurrency: "unbounded" }
      )
      // HMP's `print` answers in hexadecimal.
      expect(results).toEqual(Array.from({ length: 200 }, (_, i) => i === 0 ? "0\r\n" : `0x${i.toString(16)}\r\n`))
    }))

  it.scopedLive("executeOob(\"query-yank\") succeeds", () =>
    Effect.gen(function*() {
      const { qmp } = yield* session()
      const instances = yield* qmp.executeOob("query-yank")
      expect(Array.isArray(instances)).toBe(true)
      expect(instances).toContainEqual(expect.objectContaining({ type: "chardev" }))
    }))

  it.scopedLive("query-qmp-schema, one line of about 200 KB, is decoded", () =>
    Effect.gen(function*() {
      const { qmp } = yield* session()
      const schema = yield* qmp.execute("query-qmp-schema")
      expect(JSON.stringify(schema).length).toBeGreaterThan(150_000)
      expect(schema).toContainEqual(expect.objectContaining({ name: "query-status", "meta-type": "command" }))
      expect(schema).toContainEqual(expect.objectContaining({ name: "STOP", "meta-type": "event" }))
    }))

  it.scopedLive("an unknown command gives QmpExecuteError CommandNotFound and the connection stays usable", () =>
    Effect.gen(function*() {
      const { qmp } = yield* session()
      const error = yield* Effect.flip(qmp.executeUnknown("no-such-command"))
      expect(error).toMatchObject({
        _tag: "QmpExecuteError",
        command: "no-such-command",
        errorClass: "CommandNotFound",
        desc: "The command no-such-command has not been found"
      })
      const bogus = yield* Effect.flip(qmp.executeUnknown("stop", { bogus: 1 }))
      expect(bogus).toMatchObject({ _tag: "QmpExecuteError", errorClass: "GenericError" })
      expect(yield* qmp.execute("query-status")).toMatchObject({ status: "running" })
    }))

  it.scopedLive("arguments that cannot be JSON fail with QmpProtocolError InvalidArguments; nothing is sent", () =>
    Effect.gen(function*() {
      const { qmp } = yield* session()
      const cyclic: Record<string, unknown> = {}
      cyclic.self = cyclic
      for (const args of [{ n: 1n }, cyclic]) {
        const error = yield* Effect.flip(qmp.executeUnknown("query-status", args))
        expect(error).toMatchObject({ _tag: "QmpProtocolError", reason: "InvalidArguments" })
        expect(error.message).toContain("query-status")
      }
      expect(yield* qmp.execute("query-status")).toMatchObject({ status: "running" })
    }))

  it.scopedLive("a command QEMU cannot parse (an id-less error) ends the connection at once, not at the timeout", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session({ client: { commandTimeout: "20 seconds" } })
      const listener = yield* events.listener()
      // QEMU's JSON parser gives up past 1024 levels of nesting, and answers without the command's id.
      let deep: unknown = 1
      for (let i = 0; i < 1100; i++) deep = [deep]
      // Had the call waited for its 20 s timeout, it would fail with QmpTimeoutError instead.
      const error = yield* Effect.flip(qmp.executeUnknown("query-status", { x: deep }))
      expect(error).toMatchObject({ _tag: "QmpProtocolError", reason: "ServerParseError" })
      expect(error.message).toContain("GenericError")
      expect(yield* Effect.flip(listener.take)).toMatchObject({ _tag: "QmpDisconnected", reason: "ProtocolError" })
      expect(yield* Effect.flip(qmp.execute("query-status"))).toMatchObject({ _tag: "QmpDisconnected" })
    }))

  it.scopedLive("a block job's JOB_STATUS_CHANGE events, followed with EventFilter.data({ id }), reach concluded", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session()
      const a = yield* nullNodes(qmp, { tag: "a" })
      const b = yield* nullNodes(qmp, { tag: "b" })
      const j1 = yield* events.listener("JOB_STATUS_CHANGE", EventFilter.data({ id: "j1" }))
      // Another job first: the filter must leave its events out.
      yield* backup(qmp, "other", b)
      yield* backup(qmp, "j1", a)
      const seen = yield* takeUntil(j1, (event) => event.data?.status === "concluded")
      expect(seen.map((event) => event.data?.id)).toEqual(seen.map(() => "j1"))
      const statuses = seen.map((event) => event.data?.status)
      expect(statuses[0]).toBe("created")
      expect(statuses.at(-1)).toBe("concluded")
      expect(statuses).toEqual(expect.arrayContaining(["running", "waiting", "pending"]))
      // The job is dismissed right after: its last event, then nothing more.
      expect((yield* j1.take).data?.status).toBe("null")
      expect(yield* qmp.execute("query-jobs")).toEqual([])
    }))

  it.scopedLive("blockdev-create jobs, followed by two listeners, stay concluded until job-dismiss", () =>
    Effect.gen(function*() {
      const { events, qemu, qmp } = yield* session()
      const jobA = yield* EventListener.make({ names: "JOB_STATUS_CHANGE", filter: EventFilter.data({ id: "jobA" }) })
      const jobB = yield* EventListener.make({ names: "JOB_STATUS_CHANGE", filter: EventFilter.data({ id: "jobB" }) })
      yield* events.listen(jobA, jobB)
      for (const id of ["jobA", "jobB"]) {
        yield* qmp.execute("blockdev-create", {
          "job-id": id,
          options: { driver: "file", filename: `${qemu.dir}/${id}.img`, size: 0 }
        })
      }
      const concluded = (event: QmpMessage.QmpEvent) => event.data?.status === "concluded"
      const a = yield* takeUntil(jobA, concluded)
      const b = yield* takeUntil(jobB, concluded)
      expect(a.map((event) => event.data?.id)).toEqual(a.map(() => "jobA"))
      expect(b.map((event) => event.data?.id)).toEqual(b.map(() => "jobB"))
      expect(a[0].data?.status).toBe("created")
      expect(b[0].data?.status).toBe("created")
      // Unlike a backup, a create job is not dismissed by itself: it waits in `concluded`.
      expect(yield* qmp.execute("query-jobs")).toEqual(expect.arrayContaining([
        expect.objectContaining({ id: "jobA", status: "concluded", type: "create" }),
        expect.objectContaining({ id: "jobB", status: "concluded", type: "create" })
      ]))
      yield* qmp.execute("job-dismiss", { id: "jobA" })
      yield* qmp.execute("job-dismiss", { id: "jobB" })
      expect((yield* jobA.take).data?.status).toBe("null")
      expect((yield* jobB.take).data?.status).toBe("null")
      expect(yield* qmp.execute("query-jobs")).toEqual([])
    }))
})
