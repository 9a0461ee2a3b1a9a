/**
 * Every example of the seed's EventListener tutorial (QEMU's `qemu.qmp.events`, in
 * ../shared/reference/events.py.txt), run against a real QEMU over its QMP socket.
 */
import { expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Queue, Stream } from "effect"
import type { EventFilter, QmpMessage } from "../../src/index.js"
import { EventListener } from "../../src/index.js"
import { backup, nullNodes } from "../support/blockdev.js"
import { describeQemu, session } from "../support/qemu.js"

const names = (events: Iterable<QmpMessage.QmpEvent>) => Array.from(events, (event) => event.event)

/** Collects a listener's events until one satisfies `last`, that one included. */
const until = (listener: EventListener.EventListener, last: (event: QmpMessage.QmpEvent) => boolean) =>
  listener.stream.pipe(Stream.takeUntil(last), Stream.runCollect, Effect.map(Chunk.toReadonlyArray))

/** The seed's JobListener names. */
const jobEventNames = [
  "BLOCK_JOB_COMPLETED",
  "BLOCK_JOB_CANCELLED",
  "BLOCK_JOB_ERROR",
  "BLOCK_JOB_READY",
  "BLOCK_JOB_PENDING",
  "JOB_STATUS_CHANGE"
]

/** The seed's parameterized `job_filter(job_id)`. */
const jobFilter = (jobId: string): EventFilter.EventFilter => (event) => event.data?.id === jobId

describeQemu("The seed tutorial on real QEMU", () => {
  it.scopedLive("listener() with one name", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session()
      yield* Effect.scoped(Effect.gen(function*() {
        const listener = yield* events.listener("STOP")
        yield* qmp.execute("stop")
        expect((yield* listener.take).event).toBe("STOP")
      }))
    }))

  it.scopedLive("listener() with two or more names", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session()
      yield* Effect.scoped(Effect.gen(function*() {
        const listener = yield* events.listener(["STOP", "RESUME"])
        yield* qmp.execute("stop")
        expect((yield* listener.take).event).toBe("STOP")
        yield* qmp.execute("cont")
        expect((yield* listener.take).event).toBe("RESUME")
      }))
    }))

  it.scopedLive("listener() with no names hears all events", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session()
      yield* Effect.scoped(Effect.gen(function*() {
        const listener = yield* events.listener()
        yield* qmp.execute("stop")
        expect((yield* listener.take).event).toBe("STOP")
        yield* qmp.execute("system_reset")
        expect(yield* listener.take).toMatchObject({
          event: "RESET",
          data: { guest: false, reason: "host-qmp-system-reset" }
        })
      }))
    }))

  it.scopedLive("async iteration: the listener as a Stream", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session()
      yield* Effect.scoped(Effect.gen(function*() {
        const listener = yield* events.listener()
        yield* qmp.execute("stop")
        yield* qmp.execute("cont")
        const arrived = yield* listener.stream.pipe(Stream.take(2), Stream.runCollect)
        expect(names(arrived)).toEqual(["STOP", "RESUME"])
        // The stream stopped after two: nothing else was taken from the queue.
        expect(yield* listener.isEmpty).toBe(true)
      }))
    }))

  it.scopedLive("a concurrent consumer fiber (asyncio.Task) prints events as they arrive", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session()
      const printed = yield* Queue.unbounded<string>()
      yield* Effect.scoped(Effect.gen(function*() {
        const listener = yield* events.listener()
        const task = yield* listener.stream.pipe(
          Stream.runForEach((event) => Queue.offer(printed, `Event arrived: ${event.event}`)),
          Effect.fork
        )
        yield* qmp.execute("stop")
        yield* qmp.execute("cont")
        // Both events were in the listener when `cont` returned; wait for the task to print them.
        const lines = [yield* Queue.take(printed), yield* Queue.take(printed)]
        yield* Fiber.interrupt(task)
        expect(lines).toEqual(["Event arrived: STOP", "Event arrived: RESUME"])
      }))
    }))

  it.scopedLive("register and remove a long-lived listener", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session()
      const printed = yield* Queue.unbounded<string>()
      const listener = yield* EventListener.make()
      // run()
      const task = yield* listener.stream.pipe(
        Stream.runForEach((event) => Queue.offer(printed, event.event)),
        Effect.fork
      )
      yield* events.register(listener)
      yield* qmp.execute("stop")
      yield* qmp.execute("cont")
      expect([yield* Queue.take(printed), yield* Queue.take(printed)]).toEqual(["STOP", "RESUME"])
      // stop()
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

  it.scopedLive("the built-in all-events listener (events)", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session()
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

  it.scopedLive("take and the stream pull from one queue: each event is emitted precisely once", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session()
      const listener = yield* events.listener(["STOP", "RESUME"])
      for (const command of ["stop", "cont", "stop", "cont"]) yield* qmp.execute(command)
      const first = yield* listener.take
      const middle = yield* listener.stream.pipe(Stream.take(2), Stream.runCollect)
      const last = yield* listener.take
      expect([first.event, ...names(middle), last.event]).toEqual(["STOP", "RESUME", "STOP", "RESUME"])
      expect(yield* listener.isEmpty).toBe(true)
      // Two consumers at once still see each event once between them.
      yield* qmp.execute("stop")
      yield* qmp.execute("cont")
      const [a, b] = yield* Effect.all([listener.take, listener.take], { concurrency: "unbounded" })
      expect(names([a, b]).sort()).toEqual(["RESUME", "STOP"])
      expect(a).not.toBe(b)
    }))

  it.scopedLive("multiple listeners each receive their own copy", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session()
      const myListener = yield* EventListener.make()
      yield* events.register(myListener)
      yield* qmp.execute("stop")
      const copy1 = yield* myListener.take
      const copy2 = yield* events.events.take
      expect(copy1).toEqual(copy2)
      // The very same event object, shared (read-only), never a copy.
      expect(copy1).toBe(copy2)
      yield* events.remove(myListener)
    }))

  it.scopedLive("clear drops the pending events", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session()
      yield* qmp.execute("stop")
      expect(names(yield* events.events.clear)).toEqual(["STOP"])
      yield* qmp.execute("cont")
      expect((yield* events.events.take).event).toBe("RESUME")
    }))

  it.scopedLive("clear-then-cont, 50 times in a row, without a stray event", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session()
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

  it.scopedLive("history records every event, witnessed or not, and survives clear", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session()
      yield* qmp.execute("stop")
      yield* qmp.execute("cont")
      yield* events.events.clear
      const history = yield* events.events.history
      expect(history.length).toBe(2)
      expect(history[0].event).toBe("STOP")
      expect(history[1].event).toBe("RESUME")
    }))

  it.scopedLive("an event filter (job1_filter) follows one backup job to concluded", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session()
      const a = yield* nullNodes(qmp, { tag: "a" })
      const b = yield* nullNodes(qmp, { tag: "b" })
      const job1Filter: EventFilter.EventFilter = (event) => (event.data ?? {}).id === "job1"
      yield* Effect.scoped(Effect.gen(function*() {
        const listener = yield* events.listener("JOB_STATUS_CHANGE", job1Filter)
        yield* backup(qmp, "decoy", b)
        yield* backup(qmp, "job1", a)
        const seen = yield* until(listener, (event) => event.data?.status === "concluded")
        expect(seen.map((event) => event.data?.id)).toEqual(seen.map(() => "job1"))
        expect(seen[0].data?.status).toBe("created")
      }))
    }))

  it.scopedLive("a parameterized filter (job_filter('job2'))", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session()
      const a = yield* nullNodes(qmp, { tag: "a" })
      const b = yield* nullNodes(qmp, { tag: "b" })
      yield* Effect.scoped(Effect.gen(function*() {
        const listener = yield* events.listener("JOB_STATUS_CHANGE", jobFilter("job2"))
        yield* backup(qmp, "decoy", b)
        yield* backup(qmp, "job2", a)
        const seen = yield* until(listener, (event) => event.data?.status === "concluded")
        expect(seen.map((event) => event.data?.id)).toEqual(seen.map(() => "job2"))
        expect(seen.at(-1)?.data?.status).toBe("concluded")
      }))
    }))

  it.scopedLive("listen() activates an existing listener for a scope, and clears it on leaving", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session()
      const a = yield* nullNodes(qmp, { tag: "a" })
      const listener = yield* EventListener.make({ names: jobEventNames })
      const seen = yield* Effect.scoped(Effect.gen(function*() {
        yield* events.listen(listener)
        yield* backup(qmp, "job3", a)
        return yield* until(listener, (event) => event.event === "BLOCK_JOB_COMPLETED")
      }))
      expect(seen.at(-1)).toMatchObject({ event: "BLOCK_JOB_COMPLETED", data: { device: "job3", type: "backup" } })
      // The job's last events (concluded, null) came before the scope ended: they were cleared with it.
      expect(names(yield* listener.history)).toContain("JOB_STATUS_CHANGE")
      expect(yield* listener.isEmpty).toBe(true)
      expect(yield* Effect.flip(events.remove(listener))).toMatchObject({ reason: "NotRegistered" })
    }))

  it.scopedLive("listen() with two listeners follows two blockdev-create jobs", () =>
    Effect.gen(function*() {
      const { events, qemu, qmp } = yield* session()
      const jobA = yield* EventListener.make({ names: "JOB_STATUS_CHANGE", filter: jobFilter("jobA") })
      const jobB = yield* EventListener.make({ names: "JOB_STATUS_CHANGE", filter: jobFilter("jobB") })
      yield* Effect.scoped(Effect.gen(function*() {
        yield* events.listen(jobA, jobB)
        for (const id of ["jobA", "jobB"]) {
          yield* qmp.execute("blockdev-create", {
            "job-id": id,
            options: { driver: "file", filename: `${qemu.dir}/${id}.img`, size: 0 }
          })
        }
        const a = yield* until(jobA, (event) => event.data?.status === "concluded")
        const b = yield* until(jobB, (event) => event.data?.status === "concluded")
        expect(a.map((event) => event.data?.id)).toEqual(a.map(() => "jobA"))
        expect(b.map((event) => event.data?.id)).toEqual(b.map(() => "jobB"))
        expect(a[0].data?.status).toBe("created")
        expect(b[0].data?.status).toBe("created")
      }))
      // Create jobs stay concluded until dismissed.
      expect(yield* qmp.execute("query-jobs")).toEqual(expect.arrayContaining([
        expect.objectContaining({ id: "jobA", status: "concluded", type: "create" }),
        expect.objectContaining({ id: "jobB", status: "concluded", type: "create" })
      ]))
      yield* qmp.execute("job-dismiss", { id: "jobA" })
      yield* qmp.execute("job-dismiss", { id: "jobB" })
    }))

  it.scopedLive("a JobListener (names and a filter baked in) hears one job only", () =>
    Effect.gen(function*() {
      const { events, qmp } = yield* session()
      const a = yield* nullNodes(qmp, { tag: "a" })
      const b = yield* nullNodes(qmp, { tag: "b" })
      // The seed's JobListener.accept: BLOCK_JOB_PENDING and JOB_STATUS_CHANGE carry the job's id,
      // the other BLOCK_JOB_* events carry it as `device`.
      const jobListener = (jobId: string) =>
        EventListener.make({
          names: jobEventNames,
          filter: (event) =>
            event.event === "BLOCK_JOB_PENDING" || event.event === "JOB_STATUS_CHANGE" ?
              event.data?.id === jobId :
              event.data?.device === jobId
        })
      const listener = yield* jobListener("job4")
      const seen = yield* Effect.scoped(Effect.gen(function*() {
        yield* events.listen(listener)
        yield* backup(qmp, "job5", b)
        yield* backup(qmp, "job4", a)
        return yield* until(listener, (event) => event.event === "BLOCK_JOB_COMPLETED")
      }))
      expect(seen.map((event) => event.data?.id ?? event.data?.device)).toEqual(seen.map(() => "job4"))
      expect(seen.at(-1)).toMatchObject({ event: "BLOCK_JOB_COMPLETED", data: { device: "job4" } })
      expect(names(seen)).toContain("JOB_STATUS_CHANGE")
    }))
})
