/**
 * The registry's promises as properties: for random listeners and random sequences of operations
 * (publish batches, take, stream pulls, clear), every listener receives exactly the events it
 * accepts, in order, each exactly once, whichever way they are consumed; its history keeps every
 * accepted event, witnessed or not, up to its limit; and a bounded listener drops exactly what its
 * strategy says, and counts it.
 *
 * Each published event carries a unique serial in its data; a model computed independently of the
 * library (names, then the data pattern) says which serials each listener must see.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc, Fiber } from "effect"
import { EventFilter, EventListener, QmpEvents, QmpMessage } from "../src/index.js"
import { collect, serial, serials, takeNow, withEvents } from "./support/registry.js"

type QmpEvent = QmpMessage.QmpEvent

const NAMES = ["A", "B", "C", "D"] as const
const TAGS = ["x", "y", "z"] as const

/** What a publish op sends: the serial is given when it runs. */
interface Draft {
  readonly name: string
  readonly tag: string
  readonly n: number
}

type Pattern = {
  readonly tag?: string
  readonly n?: number
}

interface Spec {
  readonly names: ReadonlyArray<string>
  readonly pattern: Pattern | undefined
}

interface BoundedSpec extends Spec {
  readonly capacity: number | undefined
  readonly strategy: "sliding" | "dropping" | undefined
  readonly historyLimit: number | undefined
}

type Op =
  | { readonly _tag: "publish"; readonly events: ReadonlyArray<Draft> }
  | { readonly _tag: "take"; readonly listener: number }
  | { readonly _tag: "stream"; readonly listener: number; readonly n: number }
  | { readonly _tag: "clear"; readonly listener: number }
  | { readonly _tag: "isEmpty"; readonly listener: number }

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------

const draft: fc.Arbitrary<Draft> = fc.record({
  name: fc.constantFrom(...NAMES),
  tag: fc.constantFrom(...TAGS),
  n: fc.integer({ min: 0, max: 2 })
})

const pattern: fc.Arbitrary<Pattern | undefined> = fc.option(
  fc.record({ tag: fc.constantFrom(...TAGS), n: fc.integer({ min: 0, max: 2 }) }, { requiredKeys: [] }),
  { nil: undefined }
)

const spec: fc.Arbitrary<Spec> = fc.record({ names: fc.subarray([...NAMES]), pattern })

const boundedSpec: fc.Arbitrary<BoundedSpec> = fc.record({
  names: fc.subarray([...NAMES]),
  pattern,
  capacity: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
  strategy: fc.option(fc.constantFrom("sliding" as const, "dropping" as const), { nil: undefined }),
  historyLimit: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined })
})

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({ _tag: fc.constant("publish" as const), events: fc.array(draft, { maxLength: 6 }) })
  },
  { weight: 3, arbitrary: fc.record({ _tag: fc.constant("take" as const), listener: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      _tag: fc.constant("stream" as const),
      listener: fc.nat(),
      n: fc.integer({ min: 1, max: 4 })
    })
  },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("clear" as const), listener: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("isEmpty" as const), listener: fc.nat() }) }
)

// ---------------------------------------------------------------------------------------------
// The model: which events a listener accepts, computed without the library
// ---------------------------------------------------------------------------------------------

const accepts = (s: Spec, event: QmpEvent): boolean => {
  if (s.names.length > 0 && !s.names.includes(event.event)) return false
  if (s.pattern === undefined) return true
  const data = event.data ?? {}
  return (s.pattern.tag === undefined || data.tag === s.pattern.tag) &&
    (s.pattern.n === undefined || data.n === s.pattern.n)
}

const toFilter = (p: Pattern | undefined): EventFilter.EventFilter | undefined =>
  p === undefined ? undefined : EventFilter.data(p)

/** Joins a consumer that must finish once everything is published: dies rather than hang. */
const joinSoon = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  Effect.raceFirst(
    Fiber.join(fiber),
    Effect.yieldNow().pipe(Effect.repeatN(1000), Effect.zipRight(Effect.dieMessage("a consumer is still waiting")))
  )

/** Turns drafts into events, numbered in order across calls: every event's serial is unique. */
const numbering = () => {
  let next = 0
  return (drafts: ReadonlyArray<Draft>): Array<QmpEvent> =>
    drafts.map((d) => QmpMessage.makeEvent(d.name, { serial: next++, tag: d.tag, n: d.n }))
}

/** Registers a listener for each spec, with its bounds if it has any. */
const listenersOf = (qmp: QmpEvents.Service, specs: ReadonlyArray<Spec | BoundedSpec>) =>
  Effect.forEach(specs, (s) =>
    qmp.listenerUnknown(
      s.names,
      toFilter(s.pattern),
      "capacity" in s ? { capacity: s.capacity, strategy: s.strategy, historyLimit: s.historyLimit } : undefined
    ))

const pull = (listener: EventListener.EventListener, n: number) => Effect.map(collect(listener, n), serials)

/** What the model says of one listener. */
interface Model {
  /** In its queue now, oldest first. */
  pending: Array<number>
  /** Taken, streamed or cleared so far, in that order. */
  readonly consumed: Array<number>
  /** Every event it accepted, whether it kept it or dropped it (before any history limit). */
  readonly accepted: Array<number>
  dropped: number
}

/**
 * Runs `ops` one at a time, checking each step against the model (a bounded listener drops as its
 * strategy says: "sliding" the oldest pending, "dropping" the newcomer); gives the model at the end.
 */
const runOps = (specs: ReadonlyArray<Spec | BoundedSpec>, ops: ReadonlyArray<Op>) =>
  Effect.gen(function*() {
    const qmp = yield* QmpEvents.QmpEvents
    const listeners = yield* listenersOf(qmp, specs)
    const models: Array<Model> = specs.map(() => ({ pending: [], consumed: [], accepted: [], dropped: 0 }))
    const published: Array<number> = []
    const numbered = numbering()
    for (const o of ops) {
      if (o._tag === "publish") {
        const events = numbered(o.events)
        yield* qmp.publishAll(events)
        for (const e of events) {
          published.push(serial(e))
          specs.forEach((s, i) => {
            if (!accepts(s, e)) return
            const model = models[i]
            model.accepted.push(serial(e))
            if ("capacity" in s && model.pending.length >= (s.capacity ?? Infinity)) {
              model.dropped++
              if (s.strategy === "dropping") return
              model.pending.shift()
            }
            model.pending.push(serial(e))
          })
        }
        continue
      }
      const model = models[o.listener % specs.length]
      const listener = listeners[o.listener % specs.length]
      switch (o._tag) {
        case "take": {
          if (model.pending.length === 0) break
          const got = serial(yield* takeNow(listener))
          expect(got).toBe(model.pending.shift())
          model.consumed.push(got)
          break
        }
        case "stream": {
          const k = Math.min(o.n, model.pending.length)
          if (k === 0) break
          const got = yield* pull(listener, k)
          expect(got).toEqual(model.pending.splice(0, k))
          model.consumed.push(...got)
          break
        }
        case "clear": {
          const got = serials(yield* listener.clear)
          expect(got).toEqual(model.pending)
          model.pending = []
          model.consumed.push(...got)
          break
        }
        case "isEmpty": {
          expect(yield* listener.isEmpty).toBe(model.pending.length === 0)
          break
        }
      }
      expect(yield* listener.dropped).toBe(model.dropped)
    }
    return { qmp, listeners, models, published }
  })

describe("every listener receives exactly the events it accepts, in order, each exactly once", () => {
  it.effect.prop(
    "random listeners, random publishes, takes, stream pulls and clears",
    [fc.array(spec, { minLength: 1, maxLength: 4 }), fc.array(op, { maxLength: 30 })],
    ([specs, ops]) =>
      withEvents(() =>
        Effect.gen(function*() {
          const { listeners, models, published, qmp } = yield* runOps(specs, ops)
          for (let i = 0; i < specs.length; i++) {
            const listener = listeners[i]
            const { accepted, consumed } = models[i]
            const rest = serials(yield* listener.clear)
            // taken + streamed + cleared + still pending == accepted, in order, no duplicates
            const all = [...consumed, ...rest]
            expect(all).toEqual(accepted)
            expect(new Set(all).size).toBe(all.length)
            expect(serials(yield* listener.history)).toEqual(accepted)
            expect(yield* listener.dropped).toBe(0)
            expect(yield* listener.isEmpty).toBe(true)
          }
          // the default listener hears everything
          expect(serials(yield* qmp.events.history)).toEqual(published)
          expect(serials(yield* qmp.events.clear)).toEqual(published)
        })
      ),
    { fastCheck: { numRuns: 100 } }
  )

  it.effect.prop(
    "bounded listeners drop exactly what their strategy says, and history keeps the newest",
    [fc.array(boundedSpec, { minLength: 1, maxLength: 4 }), fc.array(op, { maxLength: 30 })],
    ([specs, ops]) =>
      withEvents(() =>
        Effect.gen(function*() {
          const { listeners, models } = yield* runOps(specs, ops)
          for (let i = 0; i < specs.length; i++) {
            const limit = specs[i].historyLimit ?? 10_000
            const newest = limit === 0 ? [] : models[i].accepted.slice(-limit)
            expect(serials(yield* listeners[i].history)).toEqual(newest)
            expect(yield* listeners[i].dropped).toBe(models[i].dropped)
            expect(serials(yield* listeners[i].clear)).toEqual(models[i].pending)
          }
        })
      ),
    { fastCheck: { numRuns: 100 } }
  )

  it.effect.prop(
    "consumers waiting in other fibers, by take and by stream, while batches are published",
    [
      fc.array(spec, { minLength: 1, maxLength: 4 }),
      fc.array(fc.array(draft, { maxLength: 6 }), { maxLength: 8 }),
      fc.array(fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 10 }), {
        minLength: 4,
        maxLength: 4
      }),
      fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 8 })
    ],
    ([specs, batches, plans, pauses]) =>
      withEvents(() =>
        Effect.gen(function*() {
          const qmp = yield* QmpEvents.QmpEvents
          const events = batches.map(numbering())
          const expected = specs.map((s) => serials(events.flat().filter((e) => accepts(s, e))))
          const listeners = yield* listenersOf(qmp, specs)
          // Each consumer reads exactly what its listener will accept: 0 in its plan is a `take`,
          // n > 0 a stream pull of up to n events; the plan repeats until everything is read.
          const consumers = yield* Effect.forEach(listeners, (listener, i) =>
            Effect.fork(Effect.gen(function*() {
              const got: Array<number> = []
              const plan = plans[i]
              for (let step = 0; got.length < expected[i].length; step++) {
                const size = plan[step % plan.length]
                if (size === 0) got.push(serial(yield* listener.take))
                else got.push(...(yield* pull(listener, Math.min(size, expected[i].length - got.length))))
              }
              return got
            })))
          for (let b = 0; b < events.length; b++) {
            yield* qmp.publishAll(events[b])
            const pause = pauses[b] ?? 0
            for (let y = 0; y < pause; y++) yield* Effect.yieldNow()
          }
          for (let i = 0; i < listeners.length; i++) {
            const got = yield* joinSoon(consumers[i])
            expect(got).toEqual(expected[i])
            expect(yield* listeners[i].isEmpty).toBe(true)
            expect(serials(yield* listeners[i].history)).toEqual(expected[i])
          }
        })
      ),
    { fastCheck: { numRuns: 100 } }
  )
})

describe("the model itself", () => {
  it("agrees with the listener's own accept", () => {
    fc.assert(
      fc.property(spec, draft, (s, d) => {
        const e = QmpMessage.makeEvent(d.name, { serial: 0, tag: d.tag, n: d.n })
        const listener = Effect.runSync(EventListener.makeUnknown({ names: s.names, filter: toFilter(s.pattern) }))
        assert.strictEqual(listener.accept(e), accepts(s, e))
      }),
      { numRuns: 200 }
    )
  })
})
