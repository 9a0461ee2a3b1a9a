/**
 * The deadlines of a connection's commands: a heap, and one keeper fiber on the fiber's Clock.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, FastCheck as fc, TestClock } from "effect"
import { Deadlines } from "../../src/internal/deadlines.js"
import * as InternalDeadlines from "../../src/internal/deadlines.js"

describe("Deadlines", () => {
  it("the heap expires exactly the deadlines not removed, earliest first", () => {
    fc.assert(fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 1000 }), fc.boolean()), { maxLength: 200 }),
      fc.integer({ min: 0, max: 1100 }),
      (specs, until) => {
        let now = 0
        const expired: Array<number> = []
        const deadlines = new Deadlines<number>(() => now, (deadline) => expired.push(deadline.item))
        const added = specs.map(([ms, keep], i) => ({ ms, keep, deadline: deadlines.add(Duration.millis(ms), i) }))
        for (const { deadline, keep } of added) if (!keep) deadlines.remove(deadline)
        now = until // What the keeper does when it wakes: `expireDue` is private; the keeper's first step runs it.
        ;(deadlines as unknown as { expireDue: () => number }).expireDue()
        const expected = added
          .map((spec, i) => ({ ...spec, i }))
          .filter(({ keep, ms }) => keep && ms <= until)
          .sort((a, b) => a.ms - b.ms)
        expect(expired.map((i) => specs[i][0])).toEqual(expected.map(({ ms }) => ms))
        expect(new Set(expired)).toEqual(new Set(expected.map(({ i }) => i)))
        expect(deadlines.size).toBe(added.filter(({ keep, ms }) => keep && ms > until).length)
      }
    ))
  })

  it.scoped("the keeper expires a deadline when TestClock passes it, and is woken early by an earlier one", () =>
    Effect.gen(function*() {
      const expired: Array<string> = []
      const deadlines = yield* InternalDeadlines.make<string>((deadline) => expired.push(deadline.item))
      deadlines.add(Duration.seconds(60), "60 s")
      yield* TestClock.adjust("1 second")
      // Earlier than the one the keeper sleeps for: the keeper must wake and sleep for this one.
      deadlines.add(Duration.seconds(5), "5 s after 1 s")
      const removed = deadlines.add(Duration.seconds(3), "removed")
      deadlines.remove(removed)
      yield* TestClock.adjust("5 seconds")
      expect(expired).toEqual(["5 s after 1 s"])
      yield* TestClock.adjust("54 seconds")
      expect(expired).toEqual(["5 s after 1 s", "60 s"])
      expect(deadlines.size).toBe(0)
    }))
})
