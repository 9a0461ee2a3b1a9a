/**
 * Jobs on real QEMU 7.2: block jobs and create jobs followed to their end by `Jobs.run`, their
 * failures with QEMU's own error text, cancellation, a mirror at READY, and the seed's JobListener.
 *
 * Jobs copy between `null-co` nodes (no disk); a throttled job is 1 GiB at 64 KiB/s, which runs
 * for hours: the tests cancel it, and never wait for one to finish.
 */
import { expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Stream } from "effect"
import type { Scope } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import type { QmpClient, QmpEvents, QmpMessage } from "../../src/index.js"
import { Jobs } from "../../src/index.js"
import { nullNodes } from "../support/blockdev.js"
import type { Session } from "../support/qemu.js"
import { describeQemu, session } from "../support/qemu.js"
import { takeUntil } from "../support/registry.js"

const MiB = 1024 * 1024

/** A backup that runs for hours: 1 GiB at 64 KiB/s. */
const slow = { size: 1024 * MiB, speed: 64 * 1024 }

/** The JOB_STATUS_CHANGE statuses of job `id` that QEMU sent, as the default listener heard them. */
const wireStatuses = (events: QmpEvents.Service, id: string) =>
  Effect.map(events.events.history, (history) =>
    history
      .filter((event) => event.event === "JOB_STATUS_CHANGE" && event.data?.id === id)
      .map((event) => event.data?.status))

/** The events of job `id` that QEMU sent, by name, as the default listener heard them. */
const wireNames = (events: QmpEvents.Service, id: string) =>
  Effect.map(events.events.history, (history) =>
    history
      .filter((event: QmpMessage.QmpEvent) => event.data?.id === id || event.data?.device === id)
      .map((event) => event.event))

/** A `blkdebug` node whose every read fails with EIO, over a `null-co` image of 1 MiB. */
const failingNode = {
  driver: "blkdebug",
  "node-name": "bad",
  image: { driver: "null-co", size: MiB },
  "inject-error": [{ event: "none", iotype: "read", errno: 5, immediately: true }]
} as const

/** A test on a fresh QEMU, its client and registry provided as services (as `Jobs` takes them). */
const withQemu = (
  name: string,
  body: (vm: Session) => Effect.Effect<void, unknown, Scope.Scope | QmpClient.QmpClient | QmpEvents.QmpEvents>
) => it.scopedLive(name, () => Effect.flatMap(session(), (vm) => Effect.provide(body(vm), vm.context)))

describeQemu("Jobs on real QEMU", () => {
  withQemu(
    "run follows a blockdev-backup to its end, with every status in QEMU's order; query-jobs is empty after",
    ({ events, qmp }) =>
      Effect.gen(function*() {
        const nodes = yield* nullNodes(qmp)
        const done = yield* Jobs.run("blockdev-backup", { device: nodes.source, target: nodes.target, sync: "full" })
        expect(done).toMatchObject({ _tag: "Concluded", type: "backup" })
        // The id filled in, as QEMU heard it.
        expect(done.id).toMatch(/^job-[0-9a-z]{6}$/)
        expect(done.statuses).toEqual(yield* wireStatuses(events, done.id))
        expect(done.statuses[0]).toBe("created")
        expect(done.statuses.slice(-4)).toEqual(["waiting", "pending", "concluded", "null"])
        expect(yield* qmp.execute("query-jobs")).toEqual([])
      })
  )

  withQemu("run with auto-dismiss: false dismisses the job at the end", ({ events, qmp }) =>
    Effect.gen(function*() {
      const nodes = yield* nullNodes(qmp)
      const done = yield* Jobs.run("blockdev-backup", {
        "job-id": "kept",
        device: nodes.source,
        target: nodes.target,
        sync: "full",
        "auto-dismiss": false
      })
      expect(done.id).toBe("kept")
      // Left to itself, the job would stay concluded: the null is the dismissal's.
      expect(done.statuses.slice(-2)).toEqual(["concluded", "null"])
      expect(yield* wireStatuses(events, "kept")).toEqual(done.statuses)
      expect(yield* qmp.execute("query-jobs")).toEqual([])
    }))

  withQemu(
    "a job failing on injected I/O errors ends in JobFailed with QEMU's message, whether it is dismissed at once or stays",
    ({ events, qmp }) =>
      Effect.gen(function*() {
        yield* qmp.execute("blockdev-add", failingNode)
        yield* qmp.execute("blockdev-add", { driver: "null-co", "node-name": "tgt", size: MiB })
        const backup = { device: "bad", target: "tgt", sync: "full" } as const
        // Dismissed at once: the error is only in BLOCK_JOB_COMPLETED.
        const dismissed = yield* Effect.flip(Jobs.run("blockdev-backup", { ...backup, "job-id": "e1" }))
        expect(dismissed).toMatchObject({
          _tag: "JobFailed",
          id: "e1",
          type: "backup",
          reason: "Error",
          error: "Input/output error"
        })
        expect(dismissed.message).toBe("Job 'e1' (backup) failed: Input/output error")
        expect(yield* wireNames(events, "e1")).toContain("BLOCK_JOB_ERROR")
        // Kept (auto-dismiss: false): the error is in query-jobs, read before the job is dismissed.
        const kept = yield* Effect.flip(
          Jobs.run("blockdev-backup", { ...backup, "job-id": "e2", "auto-dismiss": false })
        )
        expect(kept).toMatchObject({ _tag: "JobFailed", id: "e2", reason: "Error", error: "Input/output error" })
        expect((yield* wireStatuses(events, "e2")).slice(-3)).toEqual(["aborting", "concluded", "null"])
        expect(yield* qmp.execute("query-jobs")).toEqual([])
      })
  )

  withQemu(
    "a blockdev-create on a node that cannot hold it ends in JobFailed naming the job and QEMU's reason",
    ({ qmp }) =>
      Effect.gen(function*() {
        yield* qmp.execute("blockdev-add", { driver: "null-co", "node-name": "void", size: MiB })
        const failed = yield* Effect.flip(
          Jobs.run("blockdev-create", { "job-id": "c1", options: { driver: "qcow2", file: "void", size: MiB } })
        )
        // A create job sends no BLOCK_JOB_* event: its error comes from query-jobs.
        expect(failed).toMatchObject({ _tag: "JobFailed", id: "c1", type: "create", reason: "Error" })
        expect(failed.message).toBe("Job 'c1' (create) failed: Image is not in qcow2 format")
        // And a node that does not exist, named in QEMU's reason.
        const missing = yield* Effect.flip(
          Jobs.run("blockdev-create", { options: { driver: "qcow2", file: "nowhere", size: MiB } })
        )
        expect(missing).toMatchObject({
          _tag: "JobFailed",
          type: "create",
          error: "Cannot find device='nowhere' nor node-name='nowhere'"
        })
        // Create jobs stay concluded until dismissed: run dismissed them.
        expect(yield* qmp.execute("query-jobs")).toEqual([])
      })
  )

  withQemu(
    "a qcow2 image made with blockdev-create on a file node, followed to concluded",
    ({ events, qemu, qmp }) =>
      Effect.gen(function*() {
        const image = Path.join(qemu.dir, "disk.qcow2")
        yield* Jobs.run("blockdev-create", { options: { driver: "file", filename: image, size: 0 } })
        yield* qmp.execute("blockdev-add", { driver: "file", filename: image, "node-name": "proto" })
        const done = yield* Jobs.run("blockdev-create", {
          "job-id": "mkqcow2",
          options: { driver: "qcow2", file: "proto", size: 16 * MiB }
        })
        expect(done).toMatchObject({ _tag: "Concluded", id: "mkqcow2", type: "create" })
        expect(done.statuses).toEqual(yield* wireStatuses(events, "mkqcow2"))
        expect(done.statuses.slice(-2)).toEqual(["concluded", "null"])
        expect(yield* qmp.execute("query-jobs")).toEqual([])
        // A qcow2 image (its magic), that QEMU opens as one of 16 MiB.
        expect(Fs.readFileSync(image).subarray(0, 4)).toEqual(Buffer.from([0x51, 0x46, 0x49, 0xfb]))
        yield* qmp.execute("blockdev-add", { driver: "qcow2", "node-name": "disk", file: "proto" })
        const nodes = yield* qmp.execute("query-named-block-nodes", { flat: true })
        expect(nodes.find((node) => node["node-name"] === "disk")).toMatchObject({
          drv: "qcow2",
          image: { "virtual-size": 16 * MiB, format: "qcow2" }
        })
      })
  )

  withQemu(
    "job-cancel ends the job in BLOCK_JOB_CANCELLED, and its follower in JobFailed (Cancelled)",
    ({ qmp }) =>
      Effect.gen(function*() {
        const nodes = yield* nullNodes(qmp, { size: slow.size })
        const listener = yield* Jobs.listener("slow")
        const job = yield* Jobs.start("blockdev-backup", {
          "job-id": "slow",
          device: nodes.source,
          target: nodes.target,
          sync: "full",
          speed: slow.speed
        })
        const result = yield* Effect.fork(job.result)
        yield* qmp.execute("job-cancel", { id: "slow" })
        expect(yield* Effect.flip(Fiber.join(result))).toMatchObject({
          _tag: "JobFailed",
          id: "slow",
          type: "backup",
          reason: "Cancelled"
        })
        const heard = yield* listener.history
        expect(heard.map((event) => event.event)).toContain("BLOCK_JOB_CANCELLED")
        expect(heard.map((event) => event.event)).not.toContain("BLOCK_JOB_COMPLETED")
        expect(yield* qmp.execute("query-jobs")).toEqual([])
      })
  )

  withQemu(
    "interrupting run of a throttled job cancels it in QEMU: no job is left in query-jobs",
    ({ qmp }) =>
      Effect.gen(function*() {
        const nodes = yield* nullNodes(qmp, { size: slow.size })
        const listener = yield* Jobs.listener("slow")
        const run = yield* Effect.fork(Jobs.run("blockdev-backup", {
          "job-id": "slow",
          device: nodes.source,
          target: nodes.target,
          sync: "full",
          speed: slow.speed
        }))
        yield* takeUntil(listener, (event) => event.event === "JOB_STATUS_CHANGE" && event.data.status === "running")
        expect(yield* qmp.execute("query-jobs")).toMatchObject([{ id: "slow", status: "running" }])
        // Fiber.interrupt returns once the fiber is done: its clean-up included.
        const exit = yield* Fiber.interrupt(run)
        expect(Exit.isInterrupted(exit)).toBe(true)
        expect(yield* qmp.execute("query-jobs")).toEqual([])
        const rest = (yield* listener.clear).map((event) =>
          event.event === "JOB_STATUS_CHANGE" ? event.data.status : event.event
        )
        expect(rest.slice(-4)).toEqual(["aborting", "BLOCK_JOB_CANCELLED", "concluded", "null"])
      })
  )

  withQemu(
    "a blockdev-mirror reaches READY and is completed; with onReady: \"return\" it is handed back, and closing its scope cancels it",
    ({ events, qmp }) =>
      Effect.gen(function*() {
        const a = yield* nullNodes(qmp, { tag: "a" })
        const mirror = (id: string) => ({ "job-id": id, device: a.source, target: a.target, sync: "full" }) as const
        const done = yield* Jobs.run("blockdev-mirror", mirror("m1"))
        expect(done).toMatchObject({ _tag: "Concluded", type: "mirror" })
        expect(done.statuses).toEqual(yield* wireStatuses(events, "m1"))
        expect(done.statuses.slice(done.statuses.indexOf("ready"))).toEqual([
          "ready",
          "waiting",
          "pending",
          "concluded",
          "null"
        ])
        expect(yield* wireNames(events, "m1")).toEqual(
          expect.arrayContaining(["BLOCK_JOB_READY", "BLOCK_JOB_COMPLETED"])
        )

        // Handed back at READY: QEMU keeps it there until it is completed.
        const completed = yield* Effect.scoped(Effect.gen(function*() {
          const ready = yield* Jobs.run("blockdev-mirror", mirror("m2"), { onReady: "return" })
          if (ready._tag !== "Ready") return yield* Effect.dieMessage("the mirror did not stop at READY")
          expect(ready).toMatchObject({ id: "m2", type: "mirror" })
          expect(ready.statuses.at(-1)).toBe("ready")
          expect(yield* qmp.execute("query-jobs")).toMatchObject([{ id: "m2", status: "ready" }])
          return yield* ready.complete
        }))
        expect(completed.statuses.slice(-4)).toEqual(["waiting", "pending", "concluded", "null"])
        expect(yield* qmp.execute("query-jobs")).toEqual([])

        // Handed back, then its scope closed: cancelled.
        yield* Effect.scoped(Effect.gen(function*() {
          const ready = yield* Jobs.run("blockdev-mirror", mirror("m3"), { onReady: "return" })
          expect(ready._tag).toBe("Ready")
          expect(yield* qmp.execute("query-jobs")).toMatchObject([{ id: "m3", status: "ready" }])
        }))
        expect(yield* wireNames(events, "m3")).toContain("BLOCK_JOB_CANCELLED")
        expect(yield* qmp.execute("query-jobs")).toEqual([])
      })
  )

  withQemu(
    "two jobs at once, each followed by its own job listener (the seed's jobA and jobB), neither hearing the other",
    ({ events, qmp }) =>
      Effect.gen(function*() {
        const a = yield* nullNodes(qmp, { tag: "a" })
        const b = yield* nullNodes(qmp, { tag: "b" })
        const jobA = yield* Jobs.make("jobA")
        const jobB = yield* Jobs.make("jobB")
        yield* events.listen(jobA, jobB)
        const backup = (id: string, nodes: typeof a) =>
          Jobs.run("blockdev-backup", { "job-id": id, device: nodes.source, target: nodes.target, sync: "full" })
        const [doneA, doneB] = yield* Effect.all([backup("jobA", a), backup("jobB", b)], { concurrency: 2 })
        const heardA = yield* jobA.clear
        const heardB = yield* jobB.clear
        expect(heardA.map(Jobs.jobIdOf)).toEqual(heardA.map(() => "jobA"))
        expect(heardB.map(Jobs.jobIdOf)).toEqual(heardB.map(() => "jobB"))
        // Each heard its whole job: every status, and the completion.
        for (const [heard, done] of [[heardA, doneA], [heardB, doneB]] as const) {
          expect(heard.flatMap((event) => event.event === "JOB_STATUS_CHANGE" ? [event.data.status] : [])).toEqual(
            done.statuses
          )
          expect(heard.map((event) => event.event)).toContain("BLOCK_JOB_COMPLETED")
        }
      })
  )

  withQemu(
    "a job QEMU refuses to start (a negative speed: created, null, then the error) fails with QmpExecuteError",
    ({ events, qmp }) =>
      Effect.gen(function*() {
        const nodes = yield* nullNodes(qmp)
        const refused = yield* Effect.flip(Jobs.run("blockdev-backup", {
          "job-id": "neg",
          device: nodes.source,
          target: nodes.target,
          sync: "full",
          speed: -1
        }))
        expect(refused).toMatchObject({
          _tag: "QmpExecuteError",
          command: "blockdev-backup",
          desc: "Parameter 'speed' expects a non-negative value"
        })
        expect(yield* wireStatuses(events, "neg")).toEqual(["created", "null"])
        expect(yield* qmp.execute("query-jobs")).toEqual([])
      })
  )

  withQemu("a job started with auto-finalize: false is finalized by run", ({ events, qmp }) =>
    Effect.gen(function*() {
      const nodes = yield* nullNodes(qmp)
      const done = yield* Jobs.run("blockdev-backup", {
        "job-id": "fin",
        device: nodes.source,
        target: nodes.target,
        sync: "full",
        "auto-finalize": false
      })
      expect(done.statuses.slice(-4)).toEqual(["waiting", "pending", "concluded", "null"])
      // Left to itself, it would wait at pending (BLOCK_JOB_PENDING) for job-finalize.
      const heard = yield* wireNames(events, "fin")
      expect(heard.indexOf("BLOCK_JOB_PENDING")).toBeGreaterThan(-1)
      expect(heard.indexOf("BLOCK_JOB_COMPLETED")).toBeGreaterThan(heard.indexOf("BLOCK_JOB_PENDING"))
      expect(yield* qmp.execute("query-jobs")).toEqual([])
    }))

  withQemu(
    "progress reads query-jobs while the job runs, and ends when the job does",
    ({ qmp }) =>
      Effect.gen(function*() {
        // About half a second: 2 MiB at 4 MiB/s.
        const nodes = yield* nullNodes(qmp, { size: 2 * MiB })
        const job = yield* Jobs.start("blockdev-backup", {
          device: nodes.source,
          target: nodes.target,
          sync: "full",
          speed: 4 * MiB
        })
        const [done, seen] = yield* Effect.all(
          [job.result, Stream.runCollect(Jobs.progress(job.id, { interval: "20 millis" }))],
          { concurrency: 2 }
        )
        expect(done._tag).toBe("Concluded")
        const infos = Chunk.toReadonlyArray(seen)
        expect(infos.length).toBeGreaterThan(0)
        for (const info of infos) expect(info).toMatchObject({ id: job.id, type: "backup", "total-progress": 2 * MiB })
        const progress = infos.map((info) => info["current-progress"])
        expect(progress).toEqual([...progress].sort((a, b) => a - b))
        // Given when it changed only.
        expect(new Set(infos.map((info) => `${info.status} ${info["current-progress"]}`)).size).toBe(infos.length)
        expect(yield* qmp.execute("query-jobs")).toEqual([])
      })
  )

  withQemu(
    "watch follows a job another client started, without touching it; an unknown job is JobNotFound",
    ({ qmp }) =>
      Effect.gen(function*() {
        const nodes = yield* nullNodes(qmp, { size: slow.size })
        yield* qmp.execute("blockdev-backup", {
          "job-id": "theirs",
          device: nodes.source,
          target: nodes.target,
          sync: "full",
          speed: slow.speed
        })
        const watching = yield* Effect.fork(Jobs.watch("theirs"))
        // Interrupting a watch leaves the job alone.
        yield* Fiber.interrupt(yield* Effect.fork(Jobs.watch("theirs")))
        expect(yield* qmp.execute("query-jobs")).toMatchObject([{ id: "theirs", status: "running" }])
        yield* qmp.execute("job-cancel", { id: "theirs" })
        expect(yield* Effect.flip(Fiber.join(watching))).toMatchObject({ _tag: "JobFailed", reason: "Cancelled" })
        expect(yield* Effect.flip(Jobs.watch("nope"))).toMatchObject({ _tag: "JobNotFound", id: "nope" })
      })
  )
})
