/**
 * The seed's EventListener tutorial (the docstring of QEMU's Python `qemu.qmp.events`, from which
 * this library grew): every example, one test per section, in the tutorial's order. The suite is
 * written once and runs twice, on `QmpTestServer` and on a real QEMU (see test/support/targets.ts).
 *
 * Where the tutorial's jobs say `arguments={'job-id': 'job1', ...}`, they are full backups between
 * two `null-co` nodes: without a `speed`, such a job runs its whole course before `blockdev-backup`
 * returns, on QEMU 7.2 as on the server.
 */
import { expect, it } from "@effect/vitest"
import { Effect, Fiber, Queue, Stream } from "effect"
import { EventFilter, EventListener, QmpMessage } from "../src/index.js"
import { backup, nullNodes } from "./support/blockdev.js"
import { collect, names, takeUntil } from "./support/registry.js"
import type { Target } from "./support/targets.js"
import { targets } from "./support/targets.js"

type QmpEvent = QmpMessage.QmpEvent

/** The names the seed's JobListener listens to. */
const jobEventNames = [
  "BLOCK_JOB_COMPLETED",
  "BLOCK_JOB_CANCELLED",
  "BLOCK_JOB_ERROR",
  "BLOCK_JOB_READY",
  "BLOCK_JOB_PENDING",
  "JOB_STATUS_CHANGE"
] as const

/** The seed's parameterized `job_filter(job_id)`. */
const jobFilter = (jobId: string): EventFilter.EventFilter => (event) => event.data?.id === jobId

const statusOf = (event: QmpEvent): unknown => event.data?.status
const concluded = (event: QmpEvent): boolean => statusOf(event) === "concluded"

/**
 * The JOB_STATUS_CHANGE statuses of an unthrottled backup up to `concluded`, as the scripted server
 * sends them (as QEMU 7.2 did when it was observed): the `paused`, `running` pair is the drain at
 * the start of the job.
 */
const backupStatuses = ["created", "running", "paused", "running", "waiting", "pending", "concluded"]

const tutorial = (target: Target) => {
  it.scopedLive("listener() context blocks with one name", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* target.connect
      const listener = yield* Effect.scoped(Effect.gen(function*() {
        const listener = yield* events.listener("STOP")
        yield* qmp.execute("stop")
        expect((yield* listener.take).event).toBe("STOP")
        // It listens for STOP only: RESUME does not reach it.
        yield* qmp.execute("cont")
        expect(yield* listener.isEmpty).toBe(true)
        return listener
      }))
      // Active only for the duration of the block.
      yield* qmp.execute("stop")
      expect(yield* listener.isEmpty).toBe(true)
    }))

  it.scopedLive("listener() context blocks with two or more names", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* target.connect
      yield* Effect.scoped(Effect.gen(function*() {
        const listener = yield* events.listener(["STOP", "RESUME"])
        yield* qmp.execute("stop")
        expect((yield* listener.take).event).toBe("STOP")
        yield* qmp.execute("cont")
        expect((yield* listener.take).event).toBe("RESUME")
      }))
    }))

  it.scopedLive("listener() context blocks with no names: every event", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* target.connect
      yield* Effect.scoped(Effect.gen(function*() {
        const listener = yield* events.listener()
        yield* qmp.execute("stop")
        expect((yield* listener.take).event).toBe("STOP")
        yield* qmp.execute("system_reset")
        expect(yield* listener.take).toMatchObject({
          event: "RESET",
          data: { guest: false, reason: "host-qmp-system-reset" }
        })
        // Any name at all, QEMU's or not.
        yield* events.publish(QmpMessage.makeEvent("ANYTHING_AT_ALL"))
        expect((yield* listener.take).event).toBe("ANYTHING_AT_ALL")
      }))
    }))

  it.scopedLive("using async iterators (the listener's stream) to retrieve events", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* target.connect
      yield* Effect.scoped(Effect.gen(function*() {
        const listener = yield* events.listener()
        yield* qmp.execute("stop")
        yield* qmp.execute("cont")
        expect(names(yield* collect(listener, 2))).toEqual(["STOP", "RESUME"])
        // The stream stopped after two: nothing else was taken from the queue.
        expect(yield* listener.isEmpty).toBe(true)
      }))
    }))

  it.scopedLive("using a fiber (the seed's asyncio.Task) to concurrently retrieve events", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* target.connect
      const printed = yield* Queue.unbounded<string>()
      yield* Effect.scoped(Effect.gen(function*() {
        const listener = yield* events.listener()
        const task = yield* listener.stream.pipe(
          Stream.runForEach((event) => Queue.offer(printed, `Event arrived: ${event.event}`)),
          Effect.fork
        )
        yield* qmp.execute("stop")
        yield* qmp.execute("cont")
        // Unlike the seed's "probably", both events are in the listener once `cont` returns: wait for the
        // task to print them, then cancel it.
        const lines = [yield* Queue.take(printed), yield* Queue.take(printed)]
        yield* Fiber.interrupt(task)
        expect(lines).toEqual(["Event arrived: STOP", "Event arrived: RESUME"])
      }))
    }))

  it.scopedLive("using register() and remove() (the seed's MyClient)", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* target.connect
      const printed = yield* Queue.unbounded<string>()
      const listener = yield* EventListener.make()
      // run(): start the printer, register, run commands
      const task = yield* listener.stream.pipe(
        Stream.runForEach((event) => Queue.offer(printed, event.event)),
        Effect.fork
      )
      yield* events.register(listener)
      yield* qmp.execute("stop")
      yield* qmp.execute("cont")
      expect([yield* Queue.take(printed), yield* Queue.take(printed)]).toEqual(["STOP", "RESUME"])
      // stop(): cancel the printer, remove the listener
      yield* Fiber.interrupt(task)
      yield* events.remove(listener)
      // Removed: it hears nothing more...
      yield* qmp.execute("stop")
      expect(yield* listener.isEmpty).toBe(true)
      expect(names(yield* listener.history)).toEqual(["STOP", "RESUME"])
      // ...and it can be registered again later.
      yield* events.register(listener)
      yield* qmp.execute("cont")
      expect((yield* listener.take).event).toBe("RESUME")
      yield* events.remove(listener)
    }))

  it.scopedLive("using the built-in all events listener", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* target.connect
      const printed = yield* Queue.unbounded<string>()
      const task = yield* events.events.stream.pipe(
        Stream.runForEach((event) => Queue.offer(printed, event.event)),
        Effect.fork
      )
      yield* qmp.execute("stop")
      yield* qmp.execute("cont")
      expect([yield* Queue.take(printed), yield* Queue.take(printed)]).toEqual(["STOP", "RESUME"])
      yield* Fiber.interrupt(task)
    }))

  it.scopedLive("using both take and streams: each event is emitted precisely once", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* target.connect
      const listener = yield* events.listener(["STOP", "RESUME"])
      for (const command of ["stop", "cont", "stop", "cont", "stop", "cont"]) yield* qmp.executeUnknown(command)
      const first = yield* listener.take
      const twoMore = yield* collect(listener, 2)
      const fourth = yield* listener.take
      expect(names([first, ...twoMore, fourth])).toEqual(["STOP", "RESUME", "STOP", "RESUME"])
      // Two consumers racing for the rest still see each event once between them.
      const [a, b] = yield* Effect.all([listener.take, listener.take], { concurrency: "unbounded" })
      expect(names([a, b]).sort()).toEqual(["RESUME", "STOP"])
      expect(yield* listener.isEmpty).toBe(true)
      // The six taken are the six heard, each once, the first four in the order heard.
      const heard = yield* listener.history
      const taken = [first, ...twoMore, fourth, a, b]
      expect(heard).toHaveLength(6)
      for (let i = 0; i < 4; i++) expect(taken[i]).toBe(heard[i])
      expect(new Set(taken).size).toBe(6)
      for (const event of taken) expect(heard).toContain(event)
    }))

  it.scopedLive("creating multiple listeners: each gets its own copy", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* target.connect
      const myListener = yield* EventListener.make()
      yield* events.register(myListener)
      yield* qmp.execute("stop")
      const copy1 = yield* myListener.take
      const copy2 = yield* events.events.take
      expect(copy1).toEqual(copy2)
      // The very same object, parsed once from the wire and shared (read-only) by every listener.
      expect(copy1).toBe(copy2)
      yield* events.remove(myListener)
    }))

  it.scopedLive("clearing listeners", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* target.connect
      yield* qmp.execute("stop")
      expect(names(yield* events.events.clear)).toEqual(["STOP"])
      yield* qmp.execute("cont")
      expect((yield* events.events.take).event).toBe("RESUME")
      expect(yield* events.events.isEmpty).toBe(true)
    }))

  it.scopedLive("clearing listeners: clear-then-cont, 50 times in a row, without a stray event", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* target.connect
      for (let i = 0; i < 50; i++) {
        yield* qmp.execute("stop")
        yield* events.events.clear
        yield* qmp.execute("cont")
        expect((yield* events.events.take).event).toBe("RESUME")
        expect(yield* events.events.isEmpty).toBe(true)
      }
      const history = names(yield* events.events.history)
      expect(history).toEqual(Array.from({ length: 100 }, (_, i) => i % 2 === 0 ? "STOP" : "RESUME"))
    }))

  it.scopedLive("accessing listener history: every event, witnessed or not, and after clear", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* target.connect
      yield* qmp.execute("stop")
      yield* qmp.execute("cont")
      yield* events.events.clear
      const history = yield* events.events.history
      expect(history.length).toBe(2)
      expect(history[0].event).toBe("STOP")
      expect(history[1].event).toBe("RESUME")
    }))

  it.scopedLive("using event filters: a plain predicate (job1_filter), then a parameterized one (job_filter)", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* target.connect
      const a = yield* nullNodes(qmp, { tag: "a" })
      const b = yield* nullNodes(qmp, { tag: "b" })
      const job1Filter: EventFilter.EventFilter = (event) => (event.data ?? {}).id === "job1"
      const job1 = yield* Effect.scoped(Effect.gen(function*() {
        const listener = yield* events.listener("JOB_STATUS_CHANGE", job1Filter)
        yield* backup(qmp, "job0", b)
        yield* backup(qmp, "job1", a)
        return yield* takeUntil(listener, concluded)
      }))
      expect(job1.map((event) => event.data?.id)).toEqual(job1.map(() => "job1"))
      expect(statusOf(job1[0])).toBe("created")
      if (target.deterministic) expect(job1.map(statusOf)).toEqual(backupStatuses)

      const job2 = yield* Effect.scoped(Effect.gen(function*() {
        const listener = yield* events.listener("JOB_STATUS_CHANGE", jobFilter("job2"))
        yield* backup(qmp, "job9", b)
        yield* backup(qmp, "job2", a)
        return yield* takeUntil(listener, concluded)
      }))
      expect(job2.map((event) => event.data?.id)).toEqual(job2.map(() => "job2"))
      expect(job2.at(-1)?.data).toEqual({ id: "job2", status: "concluded" })
    }))

  it.scopedLive("activating an existing listener with listen(); leaving the block clears it", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* target.connect
      const nodes = yield* nullNodes(qmp)
      const listener = yield* EventListener.makeUnknown({ names: jobEventNames })
      const seen = yield* Effect.scoped(Effect.gen(function*() {
        yield* events.listen(listener)
        yield* backup(qmp, "job3", nodes)
        return yield* takeUntil(listener, (event) => event.event === "BLOCK_JOB_COMPLETED")
      }))
      expect(seen.at(-1)).toMatchObject({ event: "BLOCK_JOB_COMPLETED", data: { device: "job3", type: "backup" } })
      if (target.deterministic) {
        // created, running, paused, running, waiting, pending, then the completion.
        expect(names(seen)).toEqual([...Array(6).fill("JOB_STATUS_CHANGE"), "BLOCK_JOB_COMPLETED"])
      }
      // The job's last events (concluded, null) came before the block was left: they were cleared with it.
      const history = yield* listener.history
      expect(history.slice(-2).map(statusOf)).toEqual(["concluded", "null"])
      expect(yield* listener.isEmpty).toBe(true)
      expect(yield* Effect.flip(events.remove(listener))).toMatchObject({ reason: "NotRegistered" })
    }))

  it.scopedLive("activating multiple existing listeners with listen()", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* target.connect
      const nodesA = yield* nullNodes(qmp, { tag: "a" })
      const nodesB = yield* nullNodes(qmp, { tag: "b" })
      // The seed's job_filter, as an EventFilter.data pattern this time.
      const byId = (jobId: string) => EventFilter.data({ id: jobId })
      const jobA = yield* EventListener.make({ names: "JOB_STATUS_CHANGE", filter: byId("jobA") })
      const jobB = yield* EventListener.make({ names: "JOB_STATUS_CHANGE", filter: byId("jobB") })
      yield* Effect.scoped(Effect.gen(function*() {
        yield* events.listen(jobA, jobB)
        yield* backup(qmp, "jobA", nodesA)
        yield* backup(qmp, "jobB", nodesB)
        const a = yield* takeUntil(jobA, concluded)
        const b = yield* takeUntil(jobB, concluded)
        expect(a.map((event) => event.data?.id)).toEqual(a.map(() => "jobA"))
        expect(b.map((event) => event.data?.id)).toEqual(b.map(() => "jobB"))
        expect(statusOf(a[0])).toBe("created")
        expect(statusOf(b[0])).toBe("created")
        if (target.deterministic) {
          expect(a.map(statusOf)).toEqual(backupStatuses)
          expect(b.map(statusOf)).toEqual(backupStatuses)
        }
      }))
    }))

  it.scopedLive("extending EventListener: a JobListener from names and a filter hears one job only", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* target.connect
      const a = yield* nullNodes(qmp, { tag: "a" })
      const b = yield* nullNodes(qmp, { tag: "b" })
      // The seed's JobListener.accept: BLOCK_JOB_PENDING and JOB_STATUS_CHANGE carry the job's id,
      // the other BLOCK_JOB_* events carry it as `device`.
      const jobListener = (jobId: string) =>
        EventListener.make({
          names: jobEventNames,
          filter: (event) =>
            event.event === "BLOCK_JOB_PENDING" || event.event === "JOB_STATUS_CHANGE" ?
              event.data.id === jobId :
              event.data.device === jobId
        })
      const listener = yield* jobListener("job4")
      const seen = yield* Effect.scoped(Effect.gen(function*() {
        yield* events.listen(listener)
        yield* backup(qmp, "job5", b)
        yield* backup(qmp, "job4", a)
        return yield* takeUntil(listener, (event) => event.event === "BLOCK_JOB_COMPLETED")
      }))
      const jobOf = (event: (typeof seen)[number]) => "id" in event.data ? event.data.id : event.data.device
      expect(seen.map(jobOf)).toEqual(seen.map(() => "job4"))
      expect(seen.at(-1)).toMatchObject({ event: "BLOCK_JOB_COMPLETED", data: { device: "job4" } })
      expect(names(seen)).toContain("JOB_STATUS_CHANGE")
      const completed = { type: "backup", len: 1048576, offset: 1048576, speed: 0 }
      expect(listener.accept(QmpMessage.makeEvent("BLOCK_JOB_COMPLETED", { ...completed, device: "job5" }))).toBe(false)
      expect(listener.accept(QmpMessage.makeEvent("BLOCK_JOB_COMPLETED", { ...completed, device: "job4" }))).toBe(true)
      // A typed listener's data must match its Schema: a BLOCK_JOB_COMPLETED without len is no such event.
      expect(listener.accept(QmpMessage.makeEvent("BLOCK_JOB_COMPLETED", { device: "job4" }))).toBe(false)
    }))
}

for (const target of targets) {
  target.describe(`the seed's tutorial on ${target.name}`, () => tutorial(target))
}
