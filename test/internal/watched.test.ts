/**
 * A watched value: plain until its changes are first run, then a `SubscriptionRef`'s changes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Fiber, Stream } from "effect"
import { Watched } from "../../src/internal/watched.js"

describe("Watched", () => {
  it.effect("changes start with the value of their start, then give each change, to every watcher", () =>
    Effect.gen(function*() {
      const watched = new Watched(0)
      yield* watched.set(1)
      expect(watched.current).toBe(1)
      expect(yield* watched.modify((n) => ["old", n + 1] as const)).toBe("old")
      // A watcher has subscribed once it has its first value.
      const watch = (count: number) =>
        Effect.gen(function*() {
          const started = yield* Deferred.make<void>()
          const fiber = yield* watched.changes.pipe(
            Stream.tap(() => Deferred.succeed(started, undefined)),
            Stream.take(count),
            Stream.runCollect,
            Effect.fork
          )
          yield* Deferred.await(started)
          return fiber
        })
      const first = yield* watch(3)
      const second = yield* watch(2)
      yield* watched.set(3)
      yield* watched.modify((n) => [undefined, n + 1] as const)
      expect(Chunk.toReadonlyArray(yield* Fiber.join(first))).toEqual([2, 3, 4])
      expect(Chunk.toReadonlyArray(yield* Fiber.join(second))).toEqual([2, 3])
      expect(yield* watched.get).toBe(4)
      expect(watched.current).toBe(4)
    }))
})
