/**
 * The registry, driven by `QmpEvents.publish`: registration, dispatch and the end of a registry.
 * The seed's tutorial, which drives it through a client, is in tutorial.test.ts.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Exit, Fiber, Ref, Stream } from "effect"
import { EventListener, QmpError, QmpEvents, QmpMessage } from "../src/index.js"
import { captureLogs } from "./support/logs.js"
import { names, withEvents } from "./support/registry.js"

const { makeEvent } = QmpMessage
const disconnected = new QmpError.QmpDisconnected({ reason: "Closed" })

/** Publishes an event of each name, in order, with no data. */
const publish = (qmp: QmpEvents.Service, ...eventNames: ReadonlyArray<string>) =>
  qmp.publishAll(eventNames.map((name) => makeEvent(name)))

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
        yield* publish(qmp, "STOP")
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
        yield* publish(qmp, "STOP")
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
        yield* publish(qmp, "STOP")
        yield* qmp.remove(listener)
        expect(yield* listener.isEmpty).toBe(true)
        expect(names(yield* listener.history)).toEqual(["STOP"])
        yield* qmp.register(listener)
        yield* publish(qmp, "STOP")
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
        yield* publish(qmp, "STOP")
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
          yield* publish(qmp, "STOP")
          return listener
        }))
        expect(yield* listener.isEmpty).toBe(true)
        yield* publish(qmp, "STOP")
        expect(yield* listener.isEmpty).toBe(true)
        expect(names(yield* listener.history)).toEqual(["STOP"])
      })
    ))

  it.effect("subscribe registers when first pulled and removes when the stream ends", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        // Typed listeners load QEMU 7.2's module the first time; loaded, a listener registers at once.
        yield* Effect.scoped(qmp.listener("RESUME"))
        const stream = qmp.subscribe("RESUME")
        yield* publish(qmp, "RESUME") // before the first pull: not heard
        const fiber = yield* stream.pipe(Stream.take(2), Stream.runCollect, Effect.fork)
        yield* Effect.yieldNow().pipe(Effect.repeatN(5))
        yield* publish(qmp, "STOP")
        yield* publish(qmp, "RESUME")
        yield* publish(qmp, "RESUME")
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
        yield* publish(qmp, "STOP")
        yield* publish(qmp, "RESUME")
        yield* publish(qmp, "STOP")
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
        yield* publish(qmp, "STOP")
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
        yield* publish(qmp, "STOP")
        yield* publish(qmp, "RESUME")
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
        yield* publish(qmp, "STOP")
        yield* qmp.end(new QmpError.QmpDisconnected({ reason: "Lost" }))
        expect(yield* Effect.flip(qmp.events.take)).toBe(disconnected)
        expect(names(yield* qmp.events.history)).toEqual(["STOP", "RESUME"])
      }).pipe(Effect.scoped)
    ))

  it.effect("the stream of an ended listener yields the pending events, then fails", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listener = yield* qmp.listener()
        yield* publish(qmp, "STOP")
        yield* publish(qmp, "RESUME")
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
        const listener = yield* EventListener.makeUnknown({ names: "E" })
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
          qmp.listenerUnknown(
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

  it.effect("publish returns only once every listener has been offered the event", () =>
    withEvents((qmp) =>
      Effect.gen(function*() {
        const listeners = yield* Effect.forEach([1, 2, 3], () => qmp.listener("STOP"))
        yield* publish(qmp, "STOP")
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
        yield* publish(qmp, "STOP")
        yield* Deferred.succeed(held, listener)
      }).pipe(Effect.provide(QmpEvents.layer))
      const listener = yield* Deferred.await(held)
      expect((yield* listener.take).event).toBe("STOP")
      const error = yield* Effect.flip(listener.take)
      assert(error._tag === "QmpDisconnected")
      expect(error.reason).toBe("Ended")
    }))
})
