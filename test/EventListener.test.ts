/**
 * One listener: names, filter, queue, bounds and history. Events enter a listener only through the
 * registry it is registered with, so every test runs a fresh `QmpEvents.layer` and publishes.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Option, Stream, TestClock } from "effect"
import { EventFilter, EventListener, QmpError, QmpMessage } from "../src/index.js"
import { collect, serial, serials, takeNow, withEvents } from "./support/registry.js"

type QmpEvent = QmpMessage.QmpEvent

/** An event whose data carries a serial number, to tell events apart. */
const ev = (name: string, serial: number): QmpEvent => QmpMessage.makeEvent(name, { serial }, 1_732_523_456_000)
const range = (n: number, name = "E"): Array<QmpEvent> => Array.from({ length: n }, (_, i) => ev(name, i))
const upTo = (from: number, to: number): Array<number> => Array.from({ length: to - from }, (_, i) => from + i)

/** Asserts that `self` dies with an IllegalArgumentException whose message mentions `mention`. */
const diesWithIllegalArgument = <A, E, R>(self: Effect.Effect<A, E, R>, mention: string) =>
  Effect.map(Effect.exit(self), (exit) => {
    assert.isTrue(Exit.isFailure(exit), "expected a failure")
    if (Exit.isSuccess(exit)) return
    const defect = Cause.dieOption(exit.cause)
    assert.isTrue(Option.isSome(defect), `expected a defect, got ${Cause.pretty(exit.cause)}`)
    if (Option.isNone(defect)) return
    assert.isTrue(Cause.isIllegalArgumentException(defect.value), String(defect.value))
    expect((defect.value as Error).message).toContain(mention)
  })

describe("names", () => {
  it.effect("one name as a string", () =>
    Effect.gen(function*() {
      const listener = yield* EventListener.make({ names: "STOP" })
      expect([...listener.names]).toEqual(["STOP"])
      expect(listener.accept(ev("STOP", 0))).toBe(true)
      expect(listener.accept(ev("RESUME", 0))).toBe(false)
      expect(listener.accept(ev("stop", 0))).toBe(false)
      expect(listener.accept(ev("STOPPED", 0))).toBe(false)
    }))

  it.effect("several names from any iterable, copied", () =>
    Effect.gen(function*() {
      const array = ["STOP", "RESUME"]
      function* generate() {
        yield "STOP"
        yield "RESUME"
      }
      for (const names of [array, new Set(array), generate(), new Map(array.map((n) => [n, 1])).keys()]) {
        const listener = yield* EventListener.makeUnknown({ names })
        expect([...listener.names].sort()).toEqual(["RESUME", "STOP"])
        expect(listener.accept(ev("STOP", 0))).toBe(true)
        expect(listener.accept(ev("RESUME", 0))).toBe(true)
        expect(listener.accept(ev("SHUTDOWN", 0))).toBe(false)
      }
      const listener = yield* EventListener.makeUnknown({ names: array })
      array.push("SHUTDOWN")
      expect(listener.accept(ev("SHUTDOWN", 0))).toBe(false)
      // a string is one name, not an iterable of characters
      const one = yield* EventListener.makeUnknown({ names: "AB" })
      expect([...one.names]).toEqual(["AB"])
      expect(one.accept(ev("A", 0))).toBe(false)
    }))

  it.effect("no names, undefined or empty: every event", () =>
    Effect.gen(function*() {
      const listeners = [
        yield* EventListener.make(),
        yield* EventListener.make({}),
        yield* EventListener.make({ names: undefined }),
        yield* EventListener.make({ names: [] }),
        yield* EventListener.makeUnknown({ names: new Set<string>() })
      ]
      for (const listener of listeners) {
        expect(listener.names.size).toBe(0)
        for (const name of ["STOP", "RESUME", "", "ANYTHING_AT_ALL"]) expect(listener.accept(ev(name, 0))).toBe(true)
      }
    }))

  it.effect("through the registry: each listener hears its names only", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const stop = yield* qmp.listener("STOP")
        const both = yield* qmp.listener(["STOP", "RESUME"])
        const all = yield* qmp.listener()
        const empty = yield* qmp.listener([])
        const none = yield* qmp.listenerUnknown("NO_SUCH_EVENT")
        const events = [ev("STOP", 0), ev("RESUME", 1), ev("SHUTDOWN", 2), ev("STOP", 3), ev("RESUME", 4)]
        yield* qmp.publishAll(events)
        expect(serials(yield* stop.clear)).toEqual([0, 3])
        expect(serials(yield* both.clear)).toEqual([0, 1, 3, 4])
        expect(serials(yield* all.clear)).toEqual([0, 1, 2, 3, 4])
        expect(serials(yield* empty.clear)).toEqual([0, 1, 2, 3, 4])
        expect(yield* none.clear).toEqual([])
        expect(yield* none.history).toEqual([])
      })
    ))
})

describe("accept", () => {
  it.effect("names first, then the filter: a filter is not called for a wrong name", () =>
    Effect.gen(function*() {
      const seen: Array<QmpEvent> = []
      const filter = (event: QmpEvent) => {
        seen.push(event)
        return event.data?.serial === 1
      }
      const listener = yield* EventListener.make({ names: "STOP", filter })
      expect(listener.filter).toBe(filter)
      expect(listener.accept(ev("RESUME", 1))).toBe(false)
      expect(seen).toEqual([])
      expect(listener.accept(ev("STOP", 2))).toBe(false)
      expect(listener.accept(ev("STOP", 1))).toBe(true)
      expect(serials(seen)).toEqual([2, 1])
    }))

  it.effect("through the registry: the filter sees only the events its names accept", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const seen: Array<QmpEvent> = []
        const listener = yield* qmp.listener("JOB_STATUS_CHANGE", (event) => {
          seen.push(event)
          return event.data?.id === "job1"
        })
        const job = (id: string, status: string) => QmpMessage.makeEvent("JOB_STATUS_CHANGE", { id, status })
        const events = [ev("STOP", 0), job("job1", "created"), job("job2", "created"), ev("RESUME", 1)]
        yield* qmp.publishAll(events)
        expect(seen).toEqual([events[1], events[2]])
        expect(yield* listener.clear).toEqual([events[1]])
        expect(yield* listener.history).toEqual([events[1]])
      })
    ))

  it.effect("a filter without names sees every event", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const seen: Array<string> = []
        const listener = yield* qmp.listener(undefined, (event) => {
          seen.push(event.event)
          return event.event.startsWith("BLOCK_JOB_")
        })
        yield* qmp.publishAll([ev("STOP", 0), ev("BLOCK_JOB_READY", 1), ev("RESUME", 2), ev("BLOCK_JOB_COMPLETED", 3)])
        expect(seen).toEqual(["STOP", "BLOCK_JOB_READY", "RESUME", "BLOCK_JOB_COMPLETED"])
        expect(serials(yield* listener.clear)).toEqual([1, 3])
      })
    ))

  it.effect("Schema-validated filters work as listener filters", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listener(
          ["JOB_STATUS_CHANGE", "BLOCK_JOB_COMPLETED"],
          EventFilter.or(EventFilter.data({ id: "job1" }), EventFilter.data({ device: "job1" }))
        )
        const events = [
          QmpMessage.makeEvent("JOB_STATUS_CHANGE", { id: "job1", status: "created" }),
          QmpMessage.makeEvent("JOB_STATUS_CHANGE", { id: "job2", status: "created" }),
          QmpMessage.makeEvent("BLOCK_JOB_COMPLETED", { device: "job1", type: "backup", len: 1, offset: 1, speed: 0 }),
          QmpMessage.makeEvent("BLOCK_JOB_READY", { device: "job1", type: "mirror", len: 1, offset: 1, speed: 0 })
        ]
        yield* qmp.publishAll(events)
        expect(yield* listener.clear).toEqual([events[0], events[2]])
      })
    ))

  it.effect("every listener gets the published event object itself, not a copy", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const a = yield* qmp.listener("STOP")
        const b = yield* qmp.listener()
        let filtered: QmpEvent | undefined
        const c = yield* qmp.listener("STOP", (event) => {
          filtered = event
          return true
        })
        const stop = ev("STOP", 0)
        yield* qmp.publish(stop)
        expect(yield* takeNow(a)).toBe(stop)
        expect(yield* takeNow(b)).toBe(stop)
        expect(yield* takeNow(c)).toBe(stop)
        expect(filtered).toBe(stop)
        expect((yield* a.history)[0]).toBe(stop)
      })
    ))
})

describe("take, isEmpty, clear, history", () => {
  it.effect("a fresh listener is empty", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listener()
        expect(yield* listener.isEmpty).toBe(true)
        expect(yield* listener.clear).toEqual([])
        expect(yield* listener.history).toEqual([])
        expect(yield* listener.dropped).toBe(0)
      })
    ))

  it.effect("take gives events in order; clear drops the pending ones and returns them; history keeps all", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listenerUnknown("E")
        yield* qmp.publishAll([ev("E", 0), ev("OTHER", 99), ev("E", 1), ev("E", 2)])
        expect(yield* listener.isEmpty).toBe(false)
        expect(serial(yield* takeNow(listener))).toBe(0)
        expect(yield* listener.isEmpty).toBe(false)
        expect(serials(yield* listener.clear)).toEqual([1, 2])
        expect(yield* listener.isEmpty).toBe(true)
        expect(yield* listener.clear).toEqual([])
        expect(serials(yield* listener.history)).toEqual([0, 1, 2])
        yield* qmp.publish(ev("E", 3))
        expect(yield* listener.isEmpty).toBe(false)
        expect(serial(yield* takeNow(listener))).toBe(3)
        expect(yield* listener.isEmpty).toBe(true)
        expect(serials(yield* listener.history)).toEqual([0, 1, 2, 3])
      })
    ))

  it.effect("poll gives the next event without waiting, then the end once the events are out", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listenerUnknown("E")
        expect(yield* listener.poll).toEqual(Option.none())
        yield* qmp.publishAll([ev("E", 0), ev("E", 1)])
        expect(Option.map(yield* listener.poll, serial)).toEqual(Option.some(0))
        yield* qmp.end(new QmpError.QmpDisconnected({ reason: "Closed" }))
        expect(Option.map(yield* listener.poll, serial)).toEqual(Option.some(1))
        expect((yield* Effect.flip(listener.poll))._tag).toBe("QmpDisconnected")
        expect((yield* Effect.flip(listener.take))._tag).toBe("QmpDisconnected")
      })
    ))

  it.effect("a thousand events, one publish each or one batch, come out in order", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const one = yield* qmp.listenerUnknown("E")
        const batch = yield* qmp.listenerUnknown("F")
        yield* Effect.forEach(range(1000, "E"), qmp.publish, { discard: true })
        yield* qmp.publishAll(range(1000, "F"))
        for (const listener of [one, batch]) {
          const taken: Array<unknown> = []
          for (let i = 0; i < 1000; i++) taken.push(serial(yield* takeNow(listener)))
          expect(taken).toEqual(upTo(0, 1000))
          expect(yield* listener.isEmpty).toBe(true)
        }
      })
    ))

  it.effect("each listener has its own copy: taking from one deprives no other", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const a = yield* qmp.listenerUnknown("E")
        const b = yield* qmp.listenerUnknown("E")
        yield* qmp.publishAll(range(3))
        expect(serial(yield* takeNow(a))).toBe(0)
        expect(serials(yield* a.clear)).toEqual([1, 2])
        expect(serials(yield* b.clear)).toEqual([0, 1, 2])
        expect(serials(yield* qmp.events.clear)).toEqual([0, 1, 2])
      })
    ))

  it.effect("take waits for the next event", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listenerUnknown("E")
        const taker = yield* Effect.fork(listener.take)
        yield* Effect.yieldNow()
        expect(yield* Fiber.poll(taker)).toEqual(Option.none())
        yield* qmp.publish(ev("OTHER", 0))
        yield* Effect.yieldNow()
        expect(yield* Fiber.poll(taker)).toEqual(Option.none())
        yield* qmp.publish(ev("E", 1))
        expect(serial(yield* Fiber.join(taker))).toBe(1)
        expect(yield* listener.isEmpty).toBe(true)
      })
    ))

  it.effect("a listener that is not registered hears nothing", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* EventListener.makeUnknown({ names: "E" })
        yield* qmp.publish(ev("E", 0))
        expect(yield* listener.isEmpty).toBe(true)
        expect(yield* listener.history).toEqual([])
        yield* qmp.listen(listener)
        yield* qmp.publish(ev("E", 1))
        expect(serials(yield* listener.history)).toEqual([1])
        expect(serial(yield* takeNow(listener))).toBe(1)
      })
    ))

  it.effect("history is a snapshot, and it keeps events taken, cleared and never witnessed", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listenerUnknown("E")
        yield* qmp.publishAll(range(2))
        const before = yield* listener.history
        yield* takeNow(listener)
        yield* qmp.publishAll([ev("E", 2), ev("E", 3)])
        yield* listener.clear
        yield* qmp.publish(ev("E", 4))
        expect(serials(before)).toEqual([0, 1])
        expect(serials(yield* listener.history)).toEqual([0, 1, 2, 3, 4])
        expect(yield* listener.history).not.toBe(yield* listener.history)
      })
    ))
})

describe("bounded queues", () => {
  it.effect("capacity 3, 10 events: sliding keeps the last 3, dropping the first 3; 7 dropped each", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const sliding = yield* qmp.listenerUnknown("E", undefined, { capacity: 3, strategy: "sliding" })
        const dropping = yield* qmp.listenerUnknown("E", undefined, { capacity: 3, strategy: "dropping" })
        const byDefault = yield* qmp.listenerUnknown("E", undefined, { capacity: 3 })
        yield* qmp.publishAll(range(10))
        expect(yield* sliding.dropped).toBe(7)
        expect(yield* dropping.dropped).toBe(7)
        expect(yield* byDefault.dropped).toBe(7)
        expect(serials(yield* sliding.clear)).toEqual([7, 8, 9])
        expect(serials(yield* dropping.clear)).toEqual([0, 1, 2])
        expect(serials(yield* byDefault.clear)).toEqual([7, 8, 9])
        for (const listener of [sliding, dropping, byDefault]) {
          expect(serials(yield* listener.history)).toEqual(upTo(0, 10))
          expect(yield* listener.dropped).toBe(7)
        }
      })
    ))

  it.effect("the same, one publish at a time, read by take and by stream", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const sliding = yield* qmp.listenerUnknown("E", undefined, { capacity: 3, strategy: "sliding" })
        const dropping = yield* qmp.listenerUnknown("E", undefined, { capacity: 3, strategy: "dropping" })
        yield* Effect.forEach(range(10), qmp.publish, { discard: true })
        expect(serials(yield* collect(sliding, 3))).toEqual([7, 8, 9])
        expect(serial(yield* takeNow(dropping))).toBe(0)
        expect(serials(yield* collect(dropping, 2))).toEqual([1, 2])
        expect(yield* sliding.isEmpty).toBe(true)
        expect(yield* dropping.isEmpty).toBe(true)
        expect(yield* sliding.dropped).toBe(7)
        expect(yield* dropping.dropped).toBe(7)
      })
    ))

  it.effect("the bound applies to pending events: taking makes room, and drops keep counting", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const dropping = yield* qmp.listenerUnknown("E", undefined, { capacity: 2, strategy: "dropping" })
        const sliding = yield* qmp.listenerUnknown("E", undefined, { capacity: 2, strategy: "sliding" })
        yield* qmp.publishAll(range(3))
        expect(yield* dropping.dropped).toBe(1)
        expect(yield* sliding.dropped).toBe(1)
        expect(serial(yield* takeNow(dropping))).toBe(0)
        expect(serial(yield* takeNow(sliding))).toBe(1)
        yield* qmp.publishAll([ev("E", 3), ev("E", 4)])
        expect(serials(yield* dropping.clear)).toEqual([1, 3])
        expect(serials(yield* sliding.clear)).toEqual([3, 4])
        expect(yield* dropping.dropped).toBe(2)
        expect(yield* sliding.dropped).toBe(2)
        yield* qmp.publishAll([ev("E", 5), ev("E", 6)])
        expect(yield* dropping.dropped).toBe(2)
        expect(serials(yield* dropping.clear)).toEqual([5, 6])
        expect(serials(yield* sliding.history)).toEqual(upTo(0, 7))
      })
    ))

  it.effect("capacity 1 keeps one event", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const sliding = yield* qmp.listenerUnknown("E", undefined, { capacity: 1 })
        const dropping = yield* qmp.listenerUnknown("E", undefined, { capacity: 1, strategy: "dropping" })
        yield* qmp.publishAll(range(5))
        expect(serials(yield* sliding.clear)).toEqual([4])
        expect(serials(yield* dropping.clear)).toEqual([0])
        expect(yield* sliding.dropped).toBe(4)
        expect(yield* dropping.dropped).toBe(4)
      })
    ))

  it.effect("unbounded by default: nothing dropped", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listenerUnknown("E")
        yield* qmp.publishAll(range(20_000))
        expect(yield* listener.dropped).toBe(0)
        const pending = yield* listener.clear
        expect(pending.length).toBe(20_000)
        expect(serial(pending[0])).toBe(0)
        expect(serial(pending[19_999])).toBe(19_999)
      })
    ))

  it.effect("a waiting take gets the event even when the capacity is 1", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listenerUnknown("E", undefined, { capacity: 1, strategy: "dropping" })
        const taker = yield* Effect.fork(listener.take)
        yield* Effect.yieldNow()
        yield* qmp.publishAll(range(3))
        expect(serial(yield* Fiber.join(taker))).toBe(0)
        // The woken take removes event 0 itself when it runs (so that an interruption cannot lose it):
        // until then event 0 fills the one place, and 1 and 2 are dropped, as an asyncio.Queue of
        // maxsize 1 refuses them in QEMU's Python client.
        expect(serials(yield* listener.clear)).toEqual([])
        expect(yield* listener.dropped).toBe(2)
        expect(serials(yield* listener.history)).toEqual([0, 1, 2])
      })
    ))

  it.effect("a sliding listener of capacity 1 with a waiting take: the take gets the newest", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listenerUnknown("E", undefined, { capacity: 1, strategy: "sliding" })
        const taker = yield* Effect.fork(listener.take)
        yield* Effect.yieldNow()
        yield* qmp.publishAll(range(3))
        expect(serial(yield* Fiber.join(taker))).toBe(2)
        expect(yield* listener.dropped).toBe(2)
        expect(serials(yield* listener.history)).toEqual([0, 1, 2])
      })
    ))
})

describe("history limits", () => {
  it.effect("limit 5 keeps the newest 5, oldest first", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listenerUnknown("E", undefined, { historyLimit: 5 })
        yield* qmp.publishAll(range(3))
        expect(serials(yield* listener.history)).toEqual([0, 1, 2])
        yield* qmp.publishAll(range(12).slice(3))
        expect(serials(yield* listener.history)).toEqual([7, 8, 9, 10, 11])
        yield* Effect.forEach([ev("E", 12), ev("E", 13)], qmp.publish, { discard: true })
        expect(serials(yield* listener.history)).toEqual([9, 10, 11, 12, 13])
        // the limit is on the history, not on the queue
        expect((yield* listener.clear).length).toBe(14)
      })
    ))

  it.effect("limit 5 around the ring's wrap, one event at a time", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listenerUnknown("E", undefined, { historyLimit: 5 })
        for (let i = 0; i < 17; i++) {
          yield* qmp.publish(ev("E", i))
          expect(serials(yield* listener.history)).toEqual(upTo(Math.max(0, i - 4), i + 1))
        }
      })
    ))

  it.effect("limit 1 keeps the last", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listenerUnknown("E", undefined, { historyLimit: 1 })
        yield* qmp.publishAll(range(4))
        expect(serials(yield* listener.history)).toEqual([3])
      })
    ))

  it.effect("limit 0 keeps none, and the queue still works", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listenerUnknown("E", undefined, { historyLimit: 0 })
        yield* qmp.publishAll(range(3))
        expect(yield* listener.history).toEqual([])
        expect(serials(yield* listener.clear)).toEqual([0, 1, 2])
      })
    ))

  it.effect("Infinity keeps all of 20 000", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listenerUnknown("E", undefined, { historyLimit: Infinity })
        yield* qmp.publishAll(range(20_000))
        const history = yield* listener.history
        expect(history.length).toBe(20_000)
        expect(serials(history)).toEqual(upTo(0, 20_000))
      })
    ))

  it.effect("the default keeps the newest 10 000", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        expect(EventListener.defaultHistoryLimit).toBe(10_000)
        const listener = yield* qmp.listenerUnknown("E")
        yield* qmp.publishAll(range(10_005))
        const history = yield* listener.history
        expect(history.length).toBe(10_000)
        expect(serials(history)).toEqual(upTo(5, 10_005))
      })
    ))

  it.effect("history includes the events a bounded queue dropped", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listenerUnknown("E", undefined, {
          capacity: 2,
          strategy: "dropping",
          historyLimit: 4
        })
        yield* qmp.publishAll(range(6))
        expect(serials(yield* listener.history)).toEqual([2, 3, 4, 5])
        expect(serials(yield* listener.clear)).toEqual([0, 1])
      })
    ))
})

describe("invalid options die with IllegalArgumentException", () => {
  it.effect("capacity must be a positive integer or Infinity", () =>
    Effect.gen(function*() {
      for (const capacity of [0, -1, 1.5, Number.NaN, -Infinity]) {
        yield* diesWithIllegalArgument(EventListener.make({ capacity }), "capacity")
      }
      yield* EventListener.make({ capacity: 1 })
      yield* EventListener.make({ capacity: Infinity })
    }))

  it.effect("historyLimit must be a non-negative integer or Infinity", () =>
    Effect.gen(function*() {
      for (const historyLimit of [-1, 0.5, Number.NaN, -Infinity]) {
        yield* diesWithIllegalArgument(EventListener.make({ historyLimit }), "historyLimit")
      }
      yield* EventListener.make({ historyLimit: 0 })
      yield* EventListener.make({ historyLimit: Infinity })
    }))

  it.effect("through QmpEvents.listener too", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        yield* diesWithIllegalArgument(qmp.listenerUnknown("E", undefined, { capacity: 0 }), "capacity")
        yield* diesWithIllegalArgument(qmp.listenerUnknown("E", undefined, { historyLimit: -5 }), "historyLimit")
      })
    ))
})

describe("stream", () => {
  it.effect("a stream stopped after two events leaves the third for take", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listenerUnknown("E")
        yield* qmp.publishAll(range(3))
        expect(serials(yield* collect(listener, 2))).toEqual([0, 1])
        expect(yield* listener.isEmpty).toBe(false)
        expect(serial(yield* takeNow(listener))).toBe(2)
        expect(yield* listener.isEmpty).toBe(true)
      })
    ))

  it.effect("take and stream mixed: each event exactly once, in order", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listenerUnknown("E")
        yield* qmp.publishAll(range(7))
        expect(serial(yield* takeNow(listener))).toBe(0)
        expect(serials(yield* collect(listener, 2))).toEqual([1, 2])
        expect(serial(yield* takeNow(listener))).toBe(3)
        const untilFive = yield* listener.stream.pipe(Stream.takeUntil((e) => serial(e) === 5), Stream.runCollect)
        expect(serials(untilFive)).toEqual([4, 5])
        expect(serials(yield* listener.clear)).toEqual([6])
      })
    ))

  it.effect("a stream waits for future events", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listenerUnknown("E")
        const reader = yield* Effect.fork(collect(listener, 3))
        yield* Effect.yieldNow()
        yield* qmp.publish(ev("E", 0))
        yield* qmp.publish(ev("OTHER", 1))
        yield* Effect.yieldNow()
        expect(yield* Fiber.poll(reader)).toEqual(Option.none())
        yield* qmp.publishAll([ev("E", 2), ev("E", 3), ev("E", 4)])
        expect(serials(yield* Fiber.join(reader))).toEqual([0, 2, 3])
        expect(serial(yield* takeNow(listener))).toBe(4)
      })
    ))
})

describe("take with a timeout, on TestClock", () => {
  it.effect("no event: the timeout fires when the clock reaches it", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listenerUnknown("E")
        const failing = yield* Effect.fork(listener.take.pipe(Effect.timeout("1 second")))
        const optional = yield* Effect.fork(listener.take.pipe(Effect.timeoutOption("1 second")))
        yield* TestClock.adjust("999 millis")
        expect(yield* Fiber.poll(failing)).toEqual(Option.none())
        expect(yield* Fiber.poll(optional)).toEqual(Option.none())
        yield* TestClock.adjust("1 millis")
        const exit = yield* Fiber.await(failing)
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) {
          const error = Cause.failureOption(exit.cause)
          assert.isTrue(Option.isSome(error) && Cause.isTimeoutException(error.value), Cause.pretty(exit.cause))
        }
        expect(yield* Fiber.join(optional)).toEqual(Option.none())
      })
    ))

  it.effect("an event published before the clock reaches the timeout is received", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listenerUnknown("E")
        const taker = yield* Effect.fork(listener.take.pipe(Effect.timeoutOption("1 second")))
        yield* TestClock.adjust("500 millis")
        yield* qmp.publish(ev("E", 0))
        yield* TestClock.adjust("1 second")
        const received = yield* Fiber.join(taker)
        expect(Option.map(received, serial)).toEqual(Option.some(0))
        expect(yield* listener.isEmpty).toBe(true)
        expect(serials(yield* listener.history)).toEqual([0])
      })
    ))

  it.effect("an event published right after the fork, before any adjust, is received", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listenerUnknown("E")
        const failing = yield* Effect.fork(listener.take.pipe(Effect.timeout("1 second")))
        yield* qmp.publish(ev("E", 0))
        yield* TestClock.adjust("1 second")
        expect(serial(yield* Fiber.join(failing))).toBe(0)
        // and a second waiting take, with a second event
        const optional = yield* Effect.fork(listener.take.pipe(Effect.timeoutOption("1 second")))
        yield* qmp.publish(ev("E", 1))
        yield* TestClock.adjust("1 second")
        expect(Option.map(yield* Fiber.join(optional), serial)).toEqual(Option.some(1))
        expect(yield* listener.isEmpty).toBe(true)
      })
    ))

  it.effect("an event published after the timeout fired waits for the next take", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listenerUnknown("E")
        const taker = yield* Effect.fork(listener.take.pipe(Effect.timeoutOption("1 second")))
        yield* TestClock.adjust("1 second")
        expect(yield* Fiber.join(taker)).toEqual(Option.none())
        yield* qmp.publish(ev("E", 0))
        expect(serial(yield* takeNow(listener))).toBe(0)
      })
    ))
})
