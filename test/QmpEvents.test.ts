/**
 * The registry, driven by `QmpEvents.publish` (the real socket is tested in test/qemu/).
 * The first block is the seed's tutorial, one test per section, in the seed's order.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Exit, Fiber, Option, Ref, Stream, TestClock } from "effect"
import type { Scope } from "effect"
import { EventFilter, EventListener, QmpError, QmpEvents, QmpMessage } from "../src/index.js"
import { execute } from "./support/FakeVm.js"
import { captureLogs } from "./support/logs.js"

const { makeEvent } = QmpMessage
const names = (events: ReadonlyArray<QmpMessage.QmpEvent>) => events.map((e) => e.event)
const statusOf = (event: QmpMessage.QmpEvent) => event.data?.status
const disconnected = new QmpError.QmpDisconnected({ reason: "Closed" })

/** Runs a test with a fresh registry in its own scope. */
const withEvents = <A, E>(
  body: (qmp: QmpEvents.Service) => Effect.Effect<A, E, Scope.Scope | QmpEvents.QmpEvents>
) => Effect.flatMap(QmpEvents.QmpEvents, body).pipe(Effect.scoped, Effect.provide(QmpEvents.layer))

/** Takes events until one satisfies `last`, as the seed's `async for ... break`. */
const takeUntil = (listener: EventListener.EventListener, last: (e: QmpMessage.QmpEvent) => boolean) =>
  listener.stream.pipe(Stream.takeUntil(last), Stream.runCollect, Effect.map(Chunk.toReadonlyArray))

describe("the seed's tutorial", () => {
  it.effect("listener() context blocks with one name", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const event = yield* Effect.scoped(Effect.gen(function*() {
          const listener = yield* qmp.listener("STOP")
          yield* execute("cont")
          yield* execute("stop")
          return yield* listener.take
        }))
        expect(event.event).toBe("STOP")
      })
    ))

  it.effect("listener() context blocks with two or more names", () =>
    withEvents((qmp) =>
      Effect.scoped(Effect.gen(function*() {
        const listener = yield* qmp.listener(["STOP", "RESUME"])
        yield* execute("stop")
        expect((yield* listener.take).event).toBe("STOP")
        yield* execute("cont")
        expect((yield* listener.take).event).toBe("RESUME")
      }))
    ))

  it.effect("listener() context blocks with no names", () =>
    withEvents((qmp) =>
      Effect.scoped(Effect.gen(function*() {
        const listener = yield* qmp.listener()
        yield* execute("stop")
        expect((yield* listener.take).event).toBe("STOP")
        yield* qmp.publish(makeEvent("ANYTHING_AT_ALL"))
        expect((yield* listener.take).event).toBe("ANYTHING_AT_ALL")
      }))
    ))

  it.effect("using async iterators (streams) to retrieve events", () =>
    withEvents((qmp) =>
      Effect.scoped(Effect.gen(function*() {
        const listener = yield* qmp.listener()
        yield* execute("stop")
        yield* execute("cont")
        const seen = yield* listener.stream.pipe(Stream.take(2), Stream.runCollect)
        expect(names(Chunk.toReadonlyArray(seen))).toEqual(["STOP", "RESUME"])
      }))
    ))

  it.effect("using a fiber to concurrently retrieve events", () =>
    withEvents((qmp) =>
      Effect.scoped(Effect.gen(function*() {
        const listener = yield* qmp.listener()
        const printed = yield* Ref.make<ReadonlyArray<string>>([])
        const printer = yield* listener.stream.pipe(
          Stream.runForEach((event) => Ref.update(printed, (seen) => [...seen, `Event arrived: ${event.event}`])),
          Effect.fork
        )
        yield* execute("stop")
        yield* execute("cont")
        // Unlike the seed's "probably", both events are in the listener once the commands return:
        // give the printer the chance to run, then cancel it.
        yield* Effect.yieldNow().pipe(Effect.repeatN(10))
        yield* Fiber.interrupt(printer)
        expect(yield* Ref.get(printed)).toEqual(["Event arrived: STOP", "Event arrived: RESUME"])
      }))
    ))

  it.effect("using register() and remove() (the seed's MyClient)", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* EventListener.make()
        const printed = yield* Ref.make<ReadonlyArray<string>>([])
        // run(): start the printer, register, run commands
        const task = yield* listener.stream.pipe(
          Stream.runForEach((event) => Ref.update(printed, (seen) => [...seen, event.event])),
          Effect.fork
        )
        yield* qmp.register(listener)
        yield* execute("stop")
        yield* execute("cont")
        yield* Effect.yieldNow().pipe(Effect.repeatN(10))
        // stop(): cancel the printer, remove the listener
        yield* Fiber.interrupt(task)
        yield* qmp.remove(listener)
        expect(yield* Ref.get(printed)).toEqual(["STOP", "RESUME"])
        // Removed: it hears nothing more, and it can be registered again later.
        yield* execute("stop")
        expect(yield* listener.isEmpty).toBe(true)
        yield* qmp.register(listener)
        yield* execute("cont")
        expect((yield* listener.take).event).toBe("RESUME")
      })
    ))

  it.effect("using the built-in all events listener", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const task = yield* qmp.events.stream.pipe(Stream.take(2), Stream.runCollect, Effect.fork)
        yield* execute("stop")
        yield* execute("cont")
        const seen = yield* Fiber.join(task)
        expect(names(Chunk.toReadonlyArray(seen))).toEqual(["STOP", "RESUME"])
      })
    ))

  it.effect("using both take and streams: each event is emitted precisely once", () =>
    withEvents((qmp) =>
      Effect.scoped(Effect.gen(function*() {
        const listener = yield* qmp.listener()
        for (let i = 0; i < 6; i++) yield* qmp.publish(makeEvent("E", { n: i }))
        const first = yield* listener.take
        const twoMore = yield* listener.stream.pipe(Stream.take(2), Stream.runCollect)
        const fourth = yield* listener.take
        // Two consumers racing for the rest still see each event once between them.
        const [a, b] = yield* Effect.all([listener.take, listener.take], { concurrency: 2 })
        const seen = [first, ...twoMore, fourth, a, b].map((e) => e.data?.n as number)
        expect(seen.slice(0, 4)).toEqual([0, 1, 2, 3])
        expect([...seen].sort()).toEqual([0, 1, 2, 3, 4, 5])
        expect(yield* listener.isEmpty).toBe(true)
      }))
    ))

  it.effect("creating multiple listeners: each gets its own copy", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const myListener = yield* EventListener.make()
        yield* qmp.register(myListener)
        yield* execute("stop")
        const copy1 = yield* myListener.take
        const copy2 = yield* qmp.events.take
        expect(copy1).toEqual(copy2)
        // One object parsed from the wire is shared by every listener (semantics 2).
        expect(copy1).toBe(copy2)
      })
    ))

  it.effect("clearing listeners", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        yield* execute("stop")
        const cleared = yield* qmp.events.clear
        expect(names(cleared)).toEqual(["STOP"])
        yield* execute("cont")
        expect((yield* qmp.events.take).event).toBe("RESUME")
        expect(yield* qmp.events.isEmpty).toBe(true)
      })
    ))

  it.effect("accessing listener history", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        yield* execute("stop")
        yield* execute("cont")
        yield* qmp.events.clear
        const history = yield* qmp.events.history
        expect(history.length).toBe(2)
        expect(history[0].event).toBe("STOP")
        expect(history[1].event).toBe("RESUME")
      })
    ))

  it.effect("using event filters: a plain predicate, then a parameterized one", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const job1Filter: EventFilter.EventFilter = (event) => event.data?.id === "job1"
        const job1 = yield* Effect.scoped(Effect.gen(function*() {
          const listener = yield* qmp.listener("JOB_STATUS_CHANGE", job1Filter)
          yield* execute("blockdev-backup", { "job-id": "job0" })
          yield* execute("blockdev-backup", { "job-id": "job1" })
          return yield* takeUntil(listener, (e) => statusOf(e) === "concluded")
        }))
        expect(job1.every((e) => e.data?.id === "job1")).toBe(true)
        expect(job1.map(statusOf)).toEqual([
          "created",
          "running",
          "paused",
          "running",
          "waiting",
          "pending",
          "concluded"
        ])

        const jobFilter = (jobId: string): EventFilter.EventFilter => (event) => event.data?.id === jobId
        const job2 = yield* Effect.scoped(Effect.gen(function*() {
          const listener = yield* qmp.listener("JOB_STATUS_CHANGE", jobFilter("job2"))
          yield* execute("blockdev-backup", { "job-id": "job2" })
          return yield* takeUntil(listener, (e) => statusOf(e) === "concluded")
        }))
        expect(job2.at(-1)?.data).toEqual({ id: "job2", status: "concluded" })
      })
    ))

  it.effect("activating an existing listener with listen()", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* EventListener.make({
          names: [
            "BLOCK_JOB_COMPLETED",
            "BLOCK_JOB_CANCELLED",
            "BLOCK_JOB_ERROR",
            "BLOCK_JOB_READY",
            "BLOCK_JOB_PENDING",
            "JOB_STATUS_CHANGE"
          ]
        })
        const seen = yield* Effect.scoped(Effect.gen(function*() {
          yield* qmp.listen(listener)
          yield* execute("blockdev-backup", { "job-id": "job3" })
          return yield* takeUntil(listener, (e) => e.event === "BLOCK_JOB_COMPLETED")
        }))
        expect(seen.at(-1)?.event).toBe("BLOCK_JOB_COMPLETED")
        expect(seen).toHaveLength(7)
        // Leaving the block removed the listener and cleared what it had not witnessed.
        expect(yield* listener.isEmpty).toBe(true)
        expect(Exit.isFailure(yield* Effect.exit(qmp.remove(listener)))).toBe(true)
      })
    ))

  it.effect("activating multiple existing listeners with listen()", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const jobFilter = (jobId: string) => EventFilter.data({ id: jobId })
        const jobA = yield* EventListener.make({ names: "JOB_STATUS_CHANGE", filter: jobFilter("jobA") })
        const jobB = yield* EventListener.make({ names: "JOB_STATUS_CHANGE", filter: jobFilter("jobB") })
        yield* Effect.scoped(Effect.gen(function*() {
          yield* qmp.listen(jobA, jobB)
          yield* execute("blockdev-create", { "job-id": "jobA" })
          yield* execute("blockdev-create", { "job-id": "jobB" })
          const a = yield* takeUntil(jobA, (e) => statusOf(e) === "concluded")
          const b = yield* takeUntil(jobB, (e) => statusOf(e) === "concluded")
          expect(a.map((e) => e.data?.id)).toEqual(Array(5).fill("jobA"))
          expect(b.map((e) => e.data?.id)).toEqual(Array(5).fill("jobB"))
        }))
      })
    ))

  it.effect("extending EventListener: a JobListener from names and a filter", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const jobEvents = [
          "BLOCK_JOB_COMPLETED",
          "BLOCK_JOB_CANCELLED",
          "BLOCK_JOB_ERROR",
          "BLOCK_JOB_READY",
          "BLOCK_JOB_PENDING",
          "JOB_STATUS_CHANGE"
        ]
        // QEMU names a job by `id` in these two events, and by `device` in the BLOCK_JOB_* others.
        const JobListener = (jobId: string) =>
          EventListener.make({
            names: jobEvents,
            filter: (event) =>
              event.event === "BLOCK_JOB_PENDING" || event.event === "JOB_STATUS_CHANGE"
                ? event.data?.id === jobId
                : event.data?.device === jobId
          })
        const listener = yield* JobListener("job4")
        const seen = yield* Effect.scoped(Effect.gen(function*() {
          yield* qmp.listen(listener)
          yield* execute("blockdev-backup", { "job-id": "job5" })
          yield* execute("blockdev-backup", { "job-id": "job4" })
          return yield* takeUntil(listener, (e) => e.event === "BLOCK_JOB_COMPLETED")
        }))
        expect(seen.at(-1)?.data?.device).toBe("job4")
        expect(seen.filter((e) => e.event === "JOB_STATUS_CHANGE").every((e) => e.data?.id === "job4")).toBe(true)
        expect(listener.accept(makeEvent("BLOCK_JOB_COMPLETED", { device: "job5" }))).toBe(false)
        expect(listener.accept(makeEvent("BLOCK_JOB_COMPLETED", { device: "job4" }))).toBe(true)
      })
    ))
})

describe("registration", () => {
  it.effect("registering twice fails with AlreadyRegistered", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* EventListener.make()
        yield* qmp.register(listener)
        const error = yield* Effect.flip(qmp.register(listener))
        expect(error).toBeInstanceOf(QmpError.ListenerError)
        expect(error.reason).toBe("AlreadyRegistered")
        // The listener still hears events once, not twice.
        yield* execute("stop")
        expect(names(yield* listener.clear)).toEqual(["STOP"])
        const defaultAgain = yield* Effect.flip(qmp.register(qmp.events))
        expect(defaultAgain.reason).toBe("AlreadyRegistered")
      })
    ))

  it.effect("the default listener cannot be removed", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(qmp.remove(qmp.events))
        expect(error.reason).toBe("DefaultListener")
        expect(error.message).toMatch(/default listener/)
        yield* execute("stop")
        expect((yield* qmp.events.take).event).toBe("STOP")
      })
    ))

  it.effect("removing an unknown listener fails with NotRegistered", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* EventListener.make()
        expect((yield* Effect.flip(qmp.remove(listener))).reason).toBe("NotRegistered")
        yield* qmp.register(listener)
        yield* qmp.remove(listener)
        expect((yield* Effect.flip(qmp.remove(listener))).reason).toBe("NotRegistered")
      })
    ))

  it.effect("remove clears pending events but keeps history; re-registering works", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* EventListener.make({ names: "STOP" })
        yield* qmp.register(listener)
        yield* execute("stop")
        yield* qmp.remove(listener)
        expect(yield* listener.isEmpty).toBe(true)
        expect(names(yield* listener.history)).toEqual(["STOP"])
        yield* qmp.register(listener)
        yield* execute("stop")
        expect((yield* listener.take).event).toBe("STOP")
      })
    ))

  it.effect("listen registers all or none: it rolls back when its second listener fails", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const first = yield* EventListener.make()
        const second = yield* EventListener.make()
        yield* qmp.register(second)
        const error = yield* Effect.flip(Effect.scoped(qmp.listen(first, second)))
        expect(error.reason).toBe("AlreadyRegistered")
        // `first` was not left registered: it hears nothing and can be registered now.
        yield* execute("stop")
        expect(yield* first.isEmpty).toBe(true)
        yield* qmp.register(first)
        // `second` is untouched by the failed listen.
        expect(names(yield* second.clear)).toEqual(["STOP"])
      })
    ))

  it.effect("listen with the same listener twice fails and registers nothing", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* EventListener.make()
        const error = yield* Effect.flip(Effect.scoped(qmp.listen(listener, listener)))
        expect(error.reason).toBe("AlreadyRegistered")
        yield* qmp.register(listener)
      })
    ))

  it.effect("leaving a listener() scope removes the listener and clears it", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* Effect.scoped(Effect.gen(function*() {
          const listener = yield* qmp.listener("STOP")
          yield* execute("stop")
          return listener
        }))
        expect(yield* listener.isEmpty).toBe(true)
        yield* execute("stop")
        expect(yield* listener.isEmpty).toBe(true)
        expect(names(yield* listener.history)).toEqual(["STOP"])
      })
    ))

  it.effect("subscribe registers when first pulled and removes when the stream ends", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const stream = qmp.subscribe("RESUME")
        yield* execute("cont") // before the first pull: not heard
        const fiber = yield* stream.pipe(Stream.take(2), Stream.runCollect, Effect.fork)
        yield* Effect.yieldNow().pipe(Effect.repeatN(5))
        yield* execute("stop")
        yield* execute("cont")
        yield* execute("cont")
        const seen = yield* Fiber.join(fiber)
        expect(Chunk.size(seen)).toBe(2)
        expect(names(Chunk.toReadonlyArray(seen))).toEqual(["RESUME", "RESUME"])
        expect(names(yield* qmp.events.history)).toEqual(["RESUME", "STOP", "RESUME", "RESUME"])
      })
    ))
})

describe("dispatch", () => {
  it.effect("a throwing filter closes its listener only; dispatch to the others goes on", () =>
    Effect.gen(function*() {
      // The dispatch fiber logs with the logger of the layer it was built in.
      const logs = captureLogs()
      yield* Effect.gen(function*() {
        const qmp = yield* QmpEvents.QmpEvents
        const boom = new Error("boom")
        const faulty = yield* qmp.listener(undefined, (event) => {
          if (event.event === "RESUME") throw boom
          return true
        })
        const healthy = yield* qmp.listener()
        yield* execute("stop")
        yield* execute("cont")
        yield* execute("stop")
        // The faulty listener yields what it accepted before the throw, then fails, and keeps failing.
        expect((yield* faulty.take).event).toBe("STOP")
        const error = yield* Effect.flip(faulty.take)
        assert(error._tag === "ListenerError")
        expect(error.reason).toBe("FilterFailed")
        expect(error.cause).toBe(boom)
        expect((yield* Effect.flip(faulty.take))._tag).toBe("ListenerError")
        const streamError = yield* Effect.flip(Stream.runDrain(faulty.stream))
        expect(streamError._tag).toBe("ListenerError")
        expect(yield* faulty.isEmpty).toBe(true)
        // Every other listener heard all three events.
        expect(names(yield* healthy.clear)).toEqual(["STOP", "RESUME", "STOP"])
        expect(names(yield* qmp.events.history)).toEqual(["STOP", "RESUME", "STOP"])
        expect(logs.messages().some((message) => message.includes("filter threw"))).toBe(true)
        // Removed and registered again, it works.
        yield* qmp.remove(faulty)
        yield* qmp.register(faulty)
        yield* execute("stop")
        expect((yield* faulty.take).event).toBe("STOP")
      }).pipe(
        Effect.scoped,
        Effect.provide(QmpEvents.layer),
        Effect.provide(logs.layer)
      )
    }))

  it.effect("end: every listener yields what it holds, then fails with the reason", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listener(["STOP", "RESUME"])
        const waiting = yield* qmp.listener("SHUTDOWN")
        const waiter = yield* Effect.fork(Effect.either(waiting.take))
        yield* execute("stop")
        yield* execute("cont")
        yield* qmp.end(disconnected)
        expect((yield* listener.take).event).toBe("STOP")
        const streamed = yield* Effect.either(Stream.runCollect(listener.stream))
        // The stream yields RESUME, then fails: collect it as an Either and look at the failure.
        assert(streamed._tag === "Left")
        expect(streamed.left).toBe(disconnected)
        expect(yield* Effect.flip(listener.take)).toBe(disconnected)
        expect(yield* Effect.flip(listener.take)).toBe(disconnected)
        // A waiting take is woken by the end rather than hanging.
        const woken = yield* Fiber.join(waiter)
        assert(woken._tag === "Left")
        expect(woken.left).toBe(disconnected)
        // The default listener too, after its events.
        expect(names(yield* qmp.events.clear)).toEqual(["STOP", "RESUME"])
        expect(yield* Effect.flip(qmp.events.take)).toBe(disconnected)
        // Nothing is delivered after the end; ending again keeps the first reason.
        yield* execute("stop")
        yield* qmp.end(new QmpError.QmpDisconnected({ reason: "Lost" }))
        expect(yield* Effect.flip(qmp.events.take)).toBe(disconnected)
        expect(names(yield* qmp.events.history)).toEqual(["STOP", "RESUME"])
      }).pipe(Effect.scoped)
    ))

  it.effect("the stream of an ended listener yields the pending events, then fails", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listener()
        yield* execute("stop")
        yield* execute("cont")
        yield* qmp.end(disconnected)
        const seen = yield* Ref.make<ReadonlyArray<string>>([])
        const exit = yield* listener.stream.pipe(
          Stream.runForEach((e) => Ref.update(seen, (s) => [...s, e.event])),
          Effect.exit
        )
        expect(yield* Ref.get(seen)).toEqual(["STOP", "RESUME"])
        expect(exit).toStrictEqual(Exit.fail(disconnected))
      }).pipe(Effect.scoped)
    ))

  it.effect("a listener registered after end fails at its first take", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        yield* qmp.end(disconnected)
        const listener = yield* qmp.listener("STOP")
        expect(yield* Effect.flip(listener.take)).toBe(disconnected)
        const other = yield* EventListener.make()
        yield* qmp.register(other)
        expect(yield* Effect.flip(other.take)).toBe(disconnected)
        expect(yield* other.isEmpty).toBe(true)
      }).pipe(Effect.scoped)
    ))

  it.effect("nothing reaches a listener after its remove returned, even racing a large publishAll", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* EventListener.make({ names: "E" })
        yield* qmp.register(listener)
        const batch = Array.from({ length: 1000 }, (_, n) => makeEvent("E", { n }))
        const publisher = yield* Effect.fork(Effect.forEach(Array.from({ length: 50 }), () => qmp.publishAll(batch)))
        yield* Effect.yieldNow()
        yield* qmp.remove(listener)
        const historyAtRemove = (yield* listener.history).length
        expect(yield* listener.isEmpty).toBe(true)
        yield* Fiber.join(publisher)
        // All 50 000 events were published, but none reached the listener after remove returned.
        expect(yield* listener.isEmpty).toBe(true)
        expect((yield* listener.history).length).toBe(historyAtRemove)
        expect(historyAtRemove % 1000).toBe(0)
        expect(historyAtRemove).toBeLessThan(50_000)
      })
    ))

  it.effect("ordering across 10 000 events and 20 listeners", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const eventNames = ["A", "B", "C", "D"]
        const listeners = yield* Effect.forEach(Array.from({ length: 20 }, (_, i) => i), (i) =>
          qmp.listener(
            i % 5 === 0 ? undefined : eventNames[i % 4],
            i % 3 === 0 ? (e) => (e.data?.n as number) % 2 === 0 : undefined
          ))
        const events = Array.from({ length: 10_000 }, (_, n) => makeEvent(eventNames[n % 4], { n }))
        for (let i = 0; i < events.length; i += 1000) yield* qmp.publishAll(events.slice(i, i + 1000))
        for (const listener of listeners) {
          const expected = events.filter(listener.accept)
          const taken = yield* Effect.forEach(expected.slice(0, 100), () => listener.take)
          const rest = yield* listener.clear
          expect([...taken, ...rest]).toEqual(expected)
        }
      }).pipe(Effect.scoped)
    ))

  it.effect("the default listener is bounded: the newest 10 000 are kept, the rest counted as dropped", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const events = Array.from({ length: 12_345 }, (_, n) => makeEvent("E", { n }))
        yield* qmp.publishAll(events)
        expect(yield* qmp.events.dropped).toBe(2345)
        const pending = yield* qmp.events.clear
        expect(pending).toHaveLength(10_000)
        expect(pending[0].data?.n).toBe(2345)
        expect((yield* qmp.events.history).at(-1)?.data?.n).toBe(12_344)
      })
    ))

  it.effect("take with a timeout, driven by TestClock", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listener("STOP")
        const timedOut = yield* Effect.fork(Effect.timeoutOption(listener.take, "5 seconds"))
        yield* TestClock.adjust("5 seconds")
        expect(yield* Fiber.join(timedOut)).toEqual(Option.none())
        const inTime = yield* Effect.fork(Effect.timeoutOption(listener.take, "5 seconds"))
        yield* TestClock.adjust("4 seconds")
        yield* execute("stop")
        const got = yield* Fiber.join(inTime)
        expect(Option.map(got, (e) => e.event)).toEqual(Option.some("STOP"))
      }).pipe(Effect.scoped)
    ))

  it.effect("publish returns only once every listener has been offered the event", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listeners = yield* Effect.forEach([1, 2, 3], () => qmp.listener("STOP"))
        yield* execute("stop")
        for (const listener of listeners) expect(yield* listener.isEmpty).toBe(false)
      }).pipe(Effect.scoped)
    ))

  it.effect("closing the registry ends the listeners still held, instead of leaving them waiting", () =>
    Effect.gen(function*() {
      const held = yield* Deferred.make<EventListener.EventListener>()
      yield* Effect.gen(function*() {
        const qmp = yield* QmpEvents.QmpEvents
        const listener = yield* EventListener.make()
        yield* qmp.register(listener)
        yield* execute("stop")
        yield* Deferred.succeed(held, listener)
      }).pipe(Effect.provide(QmpEvents.layer))
      const listener = yield* Deferred.await(held)
      expect((yield* listener.take).event).toBe("STOP")
      const error = yield* Effect.flip(listener.take)
      assert(error._tag === "QmpDisconnected")
      expect(error.reason).toBe("Ended")
    }))
})
