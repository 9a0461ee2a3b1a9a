/**
 * Jobs on `QmpTestServer`, in this process: the job listener's matching, `run`'s whole sequence of
 * statuses (the server's is fixed), and the clean-up's edge cases, scripted on the server and timed
 * on `TestClock`. What only a real QEMU shows (its errors, mirrors, create jobs) is in
 * qemu/jobs.test.ts.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Option, Stream, TestClock } from "effect"
import type { Scope } from "effect"
import { Jobs, QmpClient, QmpEvents, QmpMessage } from "../src/index.js"
import type * as QmpTestServer from "../src/testing/QmpTestServer.js"
import { nullNodes } from "./support/blockdev.js"
import type { Connected } from "./support/connect.js"
import { connect } from "./support/connect.js"
import { captureLogs } from "./support/logs.js"
import { takeUntil } from "./support/registry.js"

const MiB = 1024 * 1024

/** A client on a fresh server, its client and registry provided as services (as `Jobs` takes them). */
const withServer = <A, E>(
  body: (vm: Connected) => Effect.Effect<A, E, Scope.Scope | QmpClient.QmpClient | QmpEvents.QmpEvents>,
  clientOptions: QmpClient.Options = {}
): Effect.Effect<A, unknown, Scope.Scope> =>
  Effect.flatMap(connect({}, clientOptions), (vm) =>
    body(vm).pipe(
      Effect.provideService(QmpEvents.QmpEvents, vm.events),
      Effect.provideService(QmpClient.QmpClient, vm.client)
    ))

/** The names of the commands the server received, `qmp_capabilities` left out. */
const commandNames = (server: QmpTestServer.Service) =>
  Effect.map(
    server.commands,
    (commands) => commands.map((command) => command.command).filter((name) => name !== "qmp_capabilities")
  )

/** Waits until the server has received `name`. */
const received = (server: QmpTestServer.Service, name: string): Effect.Effect<void> =>
  Effect.flatMap(server.nextCommand, (command) => command.command === name ? Effect.void : received(server, name))

describe("Jobs", () => {
  describe("the job listener (the seed's JobListener)", () => {
    const data = { type: "backup", len: 1, offset: 1, speed: 0 }
    const of = (jobId: string) => [
      QmpMessage.makeEvent("JOB_STATUS_CHANGE", { id: jobId, status: "running" }),
      QmpMessage.makeEvent("BLOCK_JOB_PENDING", { id: jobId, type: "backup" }),
      QmpMessage.makeEvent("BLOCK_JOB_COMPLETED", { ...data, device: jobId }),
      QmpMessage.makeEvent("BLOCK_JOB_CANCELLED", { ...data, device: jobId }),
      QmpMessage.makeEvent("BLOCK_JOB_READY", { ...data, device: jobId }),
      QmpMessage.makeEvent("BLOCK_JOB_ERROR", { device: jobId, operation: "read", action: "report" })
    ]

    it.effect("accepts every event of its job, matched on id or device as QEMU names it, and nothing else", () =>
      Effect.gen(function*() {
        const listener = yield* Jobs.make("job4")
        expect([...listener.names].sort()).toEqual([...Jobs.eventNames].sort())
        for (const event of of("job4")) expect(listener.accept(event), event.event).toBe(true)
        for (const event of of("job5")) expect(listener.accept(event), event.event).toBe(false)
        // A job's id in the other member does not make it that job's event.
        expect(listener.accept(QmpMessage.makeEvent("BLOCK_JOB_COMPLETED", { ...data, device: "x", id: "job4" })))
          .toBe(false)
        // Typed: an event whose data does not match its Schema is no such event.
        expect(listener.accept(QmpMessage.makeEvent("BLOCK_JOB_COMPLETED", { device: "job4" }))).toBe(false)
        expect(listener.accept(QmpMessage.makeEvent("STOP"))).toBe(false)
      }))

    it.effect("jobIdOf reads the id where each event has it", () =>
      Effect.sync(() => {
        expect(of("j").map((event) => Jobs.jobIdOf(event as Jobs.JobEvent))).toEqual(of("j").map(() => "j"))
      }))

    it.scoped("listener registers for the scope, as QmpEvents.listener does", () =>
      Effect.gen(function*() {
        const events = yield* QmpEvents.QmpEvents
        const listener = yield* Effect.scoped(Effect.gen(function*() {
          const listener = yield* Jobs.listener("job1")
          yield* events.publishAll([...of("job2"), ...of("job1")])
          expect((yield* listener.clear).map(Jobs.jobIdOf)).toEqual(of("job1").map(() => "job1"))
          return listener
        }))
        yield* events.publishAll(of("job1"))
        expect(yield* listener.isEmpty).toBe(true)
      }).pipe(Effect.provide(QmpEvents.layer)))
  })

  it.scoped("run: every status of a backup, in the server's order, the listener registered first and the job-id filled in", () =>
    withServer(({ client, server }) =>
      Effect.gen(function*() {
        const nodes = yield* nullNodes(client)
        const done = yield* Jobs.run("blockdev-backup", { device: nodes.source, target: nodes.target, sync: "full" })
        expect(done).toEqual({
          _tag: "Concluded",
          id: expect.stringMatching(/^job-[0-9a-z]{6}$/),
          type: "backup",
          statuses: ["created", "running", "paused", "running", "waiting", "pending", "concluded", "null"]
        })
        const backup = (yield* server.commands).find((command) => command.command === "blockdev-backup")
        expect(backup?.arguments).toMatchObject({ "job-id": done.id })
        // One query-jobs at `concluded` (the job was gone: dismissed at once), nothing else.
        expect(yield* commandNames(server)).toEqual(["blockdev-add", "blockdev-add", "blockdev-backup", "query-jobs"])
      })
    ))

  it.scoped("run with auto-dismiss and auto-finalize false: job-finalize at pending, job-dismiss at concluded", () =>
    withServer(({ client, server }) =>
      Effect.gen(function*() {
        const nodes = yield* nullNodes(client)
        const done = yield* Jobs.run("blockdev-backup", {
          "job-id": "j1",
          device: nodes.source,
          target: nodes.target,
          sync: "full",
          "auto-finalize": false,
          "auto-dismiss": false
        })
        expect(done.statuses.slice(-4)).toEqual(["waiting", "pending", "concluded", "null"])
        expect((yield* commandNames(server)).slice(2)).toEqual([
          "blockdev-backup",
          "job-finalize",
          "query-jobs",
          "job-dismiss"
        ])
        expect(yield* client.execute("query-jobs")).toEqual([])
      })
    ))

  it.scoped("a refused command fails with QmpExecuteError, and leaves the job of that id alone", () =>
    withServer(({ client, server }) =>
      Effect.gen(function*() {
        const nodes = yield* nullNodes(client, { size: 1024 * MiB })
        const backup = { "job-id": "j1", device: nodes.source, target: nodes.target, sync: "full" } as const
        yield* client.execute("blockdev-backup", { ...backup, speed: 1 })
        // Other nodes, so that the id is all the second job has in common with the first.
        const others = yield* nullNodes(client, { size: MiB, tag: "b" })
        const refused = yield* Effect.flip(
          Jobs.run("blockdev-backup", { ...backup, device: others.source, target: others.target })
        )
        expect(refused).toMatchObject({ _tag: "QmpExecuteError", desc: "Job ID 'j1' already in use" })
        expect(yield* client.execute("query-jobs")).toMatchObject([{ id: "j1", status: "running" }])
        expect((yield* commandNames(server)).slice(-1)).toEqual(["query-jobs"])
      })
    ))

  it.scoped("interrupted, run cancels the job, waits for its end up to cancelTimeout, and logs a job that did not end", () => {
    const logs = captureLogs()
    return withServer(({ client, server }) =>
      Effect.gen(function*() {
        // The server accepts job-cancel, and then nothing happens: the job goes on.
        yield* server.handle("job-cancel", () => Effect.succeed({}))
        const nodes = yield* nullNodes(client, { size: 1024 * MiB })
        const listener = yield* Jobs.listener("slow")
        const run = yield* Effect.fork(
          Jobs.run(
            "blockdev-backup",
            { "job-id": "slow", device: nodes.source, target: nodes.target, sync: "full", speed: 1024 },
            { cancelTimeout: "2 seconds" }
          )
        )
        yield* takeUntil(listener, (event) => event.event === "JOB_STATUS_CHANGE" && event.data.status === "running")
        const interrupter = yield* Effect.fork(Fiber.interrupt(run))
        yield* received(server, "job-cancel")
        yield* TestClock.adjust("1999 millis")
        expect(yield* Fiber.poll(interrupter)).toEqual(Option.none())
        yield* TestClock.adjust("1 millis")
        expect(Exit.isInterrupted(yield* Fiber.join(interrupter))).toBe(true)
        expect(logs.messages("WARN")).toEqual([
          "Job 'slow' was left running, and ending it failed: it did not end within 2s of job-cancel: it may still " +
          "run in QEMU"
        ])
      })
    ).pipe(Effect.provide(logs.layer))
  })

  it.scoped("a start command that timed out may still start the job: the clean-up finds it and cancels it", () =>
    withServer(({ server }) =>
      Effect.gen(function*() {
        // A QEMU that starts the job, but answers blockdev-backup too late.
        let cancelled = false
        const job = { id: "late", type: "backup", "current-progress": 0, "total-progress": MiB }
        yield* server.handle("blockdev-backup", (_, ctx) =>
          Effect.zipRight(ctx.emit("JOB_STATUS_CHANGE", { id: "late", status: "created" }), ctx.noReply))
        yield* server.handle("query-jobs", () =>
          Effect.sync(() => cancelled ? [] : [{ ...job, status: "running" }]))
        yield* server.handle("job-cancel", (_, ctx) =>
          Effect.gen(function*() {
            cancelled = true
            yield* ctx.emit("JOB_STATUS_CHANGE", { id: "late", status: "aborting" })
            yield* ctx.emit("JOB_STATUS_CHANGE", { id: "late", status: "concluded" })
            yield* ctx.emit("JOB_STATUS_CHANGE", { id: "late", status: "null" })
          }))
        const run = yield* Effect.fork(
          Jobs.run("blockdev-backup", { "job-id": "late", device: "src", target: "tgt", sync: "full" })
        )
        yield* received(server, "blockdev-backup")
        yield* TestClock.adjust("1 second")
        expect(yield* Effect.flip(Fiber.join(run))).toMatchObject({
          _tag: "QmpTimeoutError",
          command: "blockdev-backup"
        })
        // At `concluded`, a query-jobs tells whether it stays (to be dismissed): it does not.
        expect(yield* commandNames(server)).toEqual(["blockdev-backup", "query-jobs", "job-cancel", "query-jobs"])
      }), { commandTimeout: "1 second" }))

  it.scoped("watch: a job QEMU does not know is JobNotFound; one concluded and kept is reported at once, untouched", () =>
    withServer(({ client, server }) =>
      Effect.gen(function*() {
        expect(yield* Effect.flip(Jobs.watch("nope"))).toMatchObject({ _tag: "JobNotFound", id: "nope" })
        const nodes = yield* nullNodes(client)
        yield* client.execute("blockdev-backup", {
          "job-id": "kept",
          device: nodes.source,
          target: nodes.target,
          sync: "full",
          "auto-dismiss": false
        })
        expect(yield* Jobs.watch("kept")).toEqual({
          _tag: "Concluded",
          id: "kept",
          type: "backup",
          statuses: ["concluded"]
        })
        expect(yield* client.execute("query-jobs")).toMatchObject([{ id: "kept", status: "concluded" }])
        expect((yield* commandNames(server)).filter((name) => name.startsWith("job-"))).toEqual([])
      })
    ))

  it.scoped("progress: nothing for a job QEMU does not know; a job concluded and kept, once", () =>
    withServer(({ client }) =>
      Effect.gen(function*() {
        expect(Chunk.toReadonlyArray(yield* Stream.runCollect(Jobs.progress("nope")))).toEqual([])
        const nodes = yield* nullNodes(client)
        yield* client.execute("blockdev-backup", {
          "job-id": "kept",
          device: nodes.source,
          target: nodes.target,
          sync: "full",
          "auto-dismiss": false
        })
        expect(Chunk.toReadonlyArray(yield* Stream.runCollect(Jobs.progress("kept")))).toEqual([
          { id: "kept", type: "backup", status: "concluded", "current-progress": MiB, "total-progress": MiB }
        ])
      })
    ))
})
