/**
 * A listener's history against a model, after every step: the newest `historyLimit` accepted
 * events, oldest first, whatever was taken, polled, cleared, dropped or removed meanwhile.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc, Option } from "effect"
import { EventListener, QmpEvents, QmpMessage } from "../src/index.js"

type Step =
  | { readonly _tag: "publish"; readonly count: number }
  | { readonly _tag: "take" }
  | { readonly _tag: "poll" }
  | { readonly _tag: "clear" }
  | { readonly _tag: "remove" }

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ _tag: fc.constant("publish" as const), count: fc.integer({ min: 1, max: 6 }) }),
  fc.constant({ _tag: "take" as const }),
  fc.constant({ _tag: "poll" as const }),
  fc.constant({ _tag: "clear" as const }),
  fc.constant({ _tag: "remove" as const })
)

const options = fc.record({
  capacity: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
  strategy: fc.constantFrom("sliding" as const, "dropping" as const),
  historyLimit: fc.integer({ min: 0, max: 7 })
})

const serial = (event: QmpMessage.QmpEvent) => event.data?.n as number

describe("history", () => {
  it.effect.prop(
    "is the newest historyLimit accepted events after every step",
    [options, fc.array(step, { maxLength: 40 })],
    ([listenerOptions, steps]) =>
      Effect.gen(function*() {
        const registry = yield* QmpEvents.QmpEvents
        const listener = yield* EventListener.makeUnknown({ names: "E", ...listenerOptions })
        yield* registry.register(listener)
        let registered = true
        const accepted: Array<number> = []
        const pending: Array<number> = []
        let next = 0
        for (const s of steps) {
          switch (s._tag) {
            case "publish": {
              const events = Array.from({ length: s.count }, () => QmpMessage.makeEvent("E", { n: next++ }))
              yield* registry.publishAll(events)
              if (!registered) break
              for (const event of events) {
                accepted.push(serial(event))
                if (pending.length >= (listenerOptions.capacity ?? Infinity)) {
                  if (listenerOptions.strategy === "dropping") continue
                  pending.shift()
                }
                pending.push(serial(event))
              }
              break
            }
            case "take":
              if (pending.length > 0) expect(serial(yield* listener.take)).toBe(pending.shift())
              break
            case "poll":
              expect(Option.map(yield* listener.poll, serial)).toEqual(Option.fromNullable(pending.shift()))
              break
            case "clear":
              expect((yield* listener.clear).map(serial)).toEqual(pending.splice(0))
              break
            case "remove":
              if (registered) {
                yield* registry.remove(listener)
                pending.splice(0)
              } else {
                yield* registry.register(listener)
              }
              registered = !registered
          }
          const limit = listenerOptions.historyLimit
          expect((yield* listener.history).map(serial)).toEqual(limit === 0 ? [] : accepted.slice(-limit))
        }
      }).pipe(Effect.scoped, Effect.provide(QmpEvents.layer)),
    { fastCheck: { numRuns: 300 } }
  )
})
