/**
 * QmpClient against a real QEMU over a Unix socket: greeting, commands, errors, concurrency, a block
 * job.
 */
import { expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { EventFilter } from "../../src/index.js"
import { backup, nullNodes } from "../support/blockdev.js"
import { describeQemu, session } from "../support/qemu.js"

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
      const schema = (yield* qmp.execute("query-qmp-schema")) as ReadonlyArray<Record<string, unknown>>
      expect(JSON.stringify(schema).length).toBeGreaterThan(150_000)
      expect(schema).toContainEqual(expect.objectContaining({ name: "query-status", "meta-type": "command" }))
      expect(schema).toContainEqual(expect.objectContaining({ name: "STOP", "meta-type": "event" }))
    }))

  it.scopedLive("an unknown command gives QmpExecuteError CommandNotFound and the connection stays usable", () =>
    Effect.gen(function*() {
      const { qmp } = yield* session()
      const error = yield* Effect.flip(qmp.execute("no-such-command"))
      expect(error).toMatchObject({
        _tag: "QmpExecuteError",
        command: "no-such-command",
        errorClass: "CommandNotFound",
        desc: "The command no-such-command has not been found"
      })
      const bogus = yield* Effect.flip(qmp.execute("stop", { bogus: 1 }))
      expect(bogus).toMatchObject({ _tag: "QmpExecuteError", errorClass: "GenericError" })
      expect(yield* qmp.execute("query-status")).toMatchObject({ status: "running" })
    }))

  it.scopedLive("arguments that cannot be JSON fail with QmpProtocolError InvalidArguments; nothing is sent", () =>
    Effect.gen(function*() {
      const { qmp } = yield* session()
      const cyclic: Record<string, unknown> = {}
      cyclic.self = cyclic
      for (const args of [{ n: 1n }, cyclic]) {
        const error = yield* Effect.flip(qmp.execute("query-status", args))
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
      const started = Date.now()
      const error = yield* Effect.flip(qmp.execute("query-status", { x: deep }))
      expect(error).toMatchObject({ _tag: "QmpProtocolError", reason: "ServerParseError" })
      expect(error.message).toContain("GenericError")
      expect(Date.now() - started).toBeLessThan(10_000)
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
      const seen = yield* j1.stream.pipe(
        Stream.takeUntil((event) => event.data?.status === "concluded"),
        Stream.runCollect,
        Effect.map(Chunk.toReadonlyArray)
      )
      expect(seen.map((event) => event.data?.id)).toEqual(seen.map(() => "j1"))
      const statuses = seen.map((event) => event.data?.status)
      expect(statuses[0]).toBe("created")
      expect(statuses.at(-1)).toBe("concluded")
      expect(statuses).toEqual(expect.arrayContaining(["running", "waiting", "pending"]))
      // The job is dismissed right after: its last event, then nothing more.
      expect((yield* j1.take).data?.status).toBe("null")
      expect(yield* qmp.execute("query-jobs")).toEqual([])
    }))
})
