/**
 * Each event is taken precisely once per listener, even when the fiber that takes it is interrupted
 * at the moment dispatch hands it the event: the event is then back at the head of the queue.
 *
 * Each race forks a consumer (`take`, one pull of `stream`, `poll`, `Effect.timeout(take)`, a `take`
 * in an `Effect.race`), publishes one event from another fiber, lets the scheduler run a random
 * number of steps, and interrupts the consumer. Whatever the consumer returned, plus what is still
 * in the listener at the end, must be every event published, once, in order.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, FastCheck as fc, Fiber, Option, Stream } from "effect"
import type { EventListener } from "../src/index.js"
import { QmpEvents, QmpMessage } from "../src/index.js"

const races = 2_000

/**
 * How a race's consumer takes one event. It hands what it takes to `record` in the take's own
 * continuation: an event leaves the queue only into the hands of a take that returns it, and what
 * happens to the consumer after that (here, its interruption) is no longer the queue's business.
 */
type Consumer = (
  listener: EventListener.EventListener,
  record: (event: QmpMessage.QmpEvent) => Effect.Effect<void>
) => Effect.Effect<unknown, unknown>

const consumers: ReadonlyArray<readonly [string, Consumer]> = [
  ["take", (listener, record) => Effect.tap(listener.take, record)],
  ["one pull of stream", (listener, record) => Stream.runHead(Stream.tap(listener.stream, record))],
  [
    "poll until there is one",
    (listener, record) =>
      Effect.repeat(Effect.tap(listener.poll, Option.match({ onNone: () => Effect.void, onSome: record })), {
        until: Option.isSome
      })
  ],
  ["Effect.timeout(take)", (listener, record) => Effect.timeout(Effect.tap(listener.take, record), "1 millis")],
  [
    "Effect.race(take, a sleep)",
    (listener, record) => Effect.race(Effect.tap(listener.take, record), Effect.sleep("1 millis"))
  ]
]

/** Every event the listener still holds, oldest first. */
const remaining = (listener: EventListener.EventListener) =>
  Effect.map(listener.clear, (events) => events.map((event) => event.data?.n as number))

/**
 * `races` races: in each, `width` consumers wait, `width` events are published, and the consumers are
 * interrupted after a random number of scheduler steps.
 */
const runRaces = (consumer: Consumer, seed: number, width = 1) =>
  Effect.gen(function*() {
    const registry = yield* QmpEvents.QmpEvents
    const listener = yield* registry.listenerUnknown("N")
    const steps = fc.sample(fc.tuple(fc.nat(4), fc.nat(4)), { numRuns: races, seed })
    const received: Array<number> = []
    // Recorded in the continuation's own body, the moment the take hands the event on.
    const record = (event: QmpMessage.QmpEvent) => {
      received.push(event.data?.n as number)
      return Effect.void
    }
    let interrupted = 0
    for (let race = 0; race < races; race++) {
      const [beforePublish, beforeInterrupt] = steps[race]
      const takers = yield* Effect.forEach(Array.from({ length: width }), () => Effect.fork(consumer(listener, record)))
      for (let i = 0; i < beforePublish; i++) yield* Effect.yieldNow()
      const batch = Array.from({ length: width }, (_, k) => QmpMessage.makeEvent("N", { n: race * width + k }))
      yield* Effect.fork(registry.publishAll(batch))
      for (let i = 0; i < beforeInterrupt; i++) yield* Effect.yieldNow()
      for (const taker of takers) {
        if (Exit.isInterrupted(yield* Fiber.interrupt(taker))) interrupted++
      }
    }
    // Let the last publishes through dispatch.
    yield* Effect.sleep("20 millis")
    const left = yield* remaining(listener)
    return { received, left, interrupted }
  }).pipe(Effect.scoped, Effect.provide(QmpEvents.layer))

describe("exactly once under interruption", () => {
  for (const [name, consumer] of consumers) {
    it.live(
      `${races} races of ${name} against an interruption: no event lost, none twice, order kept`,
      () =>
        Effect.gen(function*() {
          const { interrupted, left, received } = yield* runRaces(consumer, 42)
          expect([...received, ...left]).toEqual(Array.from({ length: races }, (_, n) => n))
          // The races reached both outcomes: a consumer that got its event, and one interrupted.
          expect(received.length).toBeGreaterThan(0)
          expect(interrupted).toBeGreaterThan(0)
        }),
      { timeout: 60_000 }
    )
  }

  it.live(`${races} races of three fibers taking from one listener: each event once`, () =>
    Effect.gen(function*() {
      const { interrupted, left, received } = yield* runRaces(
        (listener, record) => Effect.tap(listener.take, record),
        7,
        3
      )
      // Three consumers at once take in any order: each event once, whatever the order.
      expect([...received, ...left].sort((a, b) => a - b)).toEqual(Array.from({ length: 3 * races }, (_, n) => n))
      expect(received.length).toBeGreaterThan(0)
      expect(interrupted).toBeGreaterThan(0)
    }), { timeout: 60_000 })
})
