/**
 * Event filters: Schema-validated predicates (`fromSchema`, `data`) and their combinators.
 * Filters are plain functions, so these tests call them directly on events.
 */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc, Schema } from "effect"
import { EventFilter, QmpMessage } from "../src/index.js"

const timestamp = { seconds: 1732523456, microseconds: 123456 }
const event = (name: string, data?: Readonly<Record<string, unknown>>): QmpMessage.QmpEvent =>
  data === undefined ? { event: name, timestamp } : { event: name, data, timestamp }
/** An event as it comes off the wire: `JSON.parse` of its line. */
const wire = (line: string): QmpMessage.QmpEvent => {
  const u: unknown = JSON.parse(line)
  if (!QmpMessage.isEvent(u)) throw new Error(`not an event: ${line}`)
  return u
}

const stop = event("STOP")
const quit = event("SHUTDOWN", { guest: false, reason: "host-qmp-quit" })
const guestQuit = event("SHUTDOWN", { guest: true, reason: "guest-shutdown" })
const created = event("JOB_STATUS_CHANGE", { id: "job1", status: "created" })
const concluded = event("JOB_STATUS_CHANGE", { id: "job1", status: "concluded" })
const other = event("JOB_STATUS_CHANGE", { id: "job2", status: "concluded" })
const completed = event("BLOCK_JOB_COMPLETED", {
  device: "job1",
  len: 1048576,
  offset: 1048576,
  speed: 0,
  type: "backup"
})

describe("fromSchema", () => {
  const ShutdownByGuest = Schema.Struct({
    event: Schema.Literal("SHUTDOWN"),
    data: Schema.Struct({ guest: Schema.Literal(true) })
  })

  it("accepts iff the event decodes with the schema", () => {
    const filter = EventFilter.fromSchema(ShutdownByGuest)
    expect(filter(guestQuit)).toBe(true)
    expect(filter(quit)).toBe(false)
    expect(filter(stop)).toBe(false)
    expect(filter(event("SHUTDOWN"))).toBe(false)
    expect(filter(event("SHUTDOWN", { guest: "true" }))).toBe(false)
  })

  it("decodes the wire side: the schema's encoded type is the event's shape", () => {
    // `speed` is a number on the wire: a schema that expects its encoded side to be a string rejects it
    const asString = EventFilter.fromSchema(Schema.Struct({ data: Schema.Struct({ speed: Schema.NumberFromString }) }))
    expect(asString(completed)).toBe(false)
    expect(asString(event("BLOCK_JOB_COMPLETED", { speed: "0" }))).toBe(true)
    // a transformation that fails rejects: a timestamp that is not a valid date
    const Dated = Schema.Struct({
      timestamp: Schema.Struct({ seconds: Schema.Number.pipe(Schema.greaterThan(1_600_000_000)) })
    })
    const recent = EventFilter.fromSchema(Dated)
    expect(recent(stop)).toBe(true)
    expect(recent({ event: "STOP", timestamp: { seconds: 5, microseconds: 0 } })).toBe(false)
  })

  it("refinements take part", () => {
    const progressed = EventFilter.fromSchema(Schema.Struct({
      event: Schema.Literal("BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED"),
      data: Schema.Struct({ offset: Schema.Number.pipe(Schema.positive()), error: Schema.optional(Schema.Never) })
    }))
    expect(progressed(completed)).toBe(true)
    expect(progressed(event("BLOCK_JOB_COMPLETED", { offset: 0 }))).toBe(false)
    expect(progressed(event("BLOCK_JOB_COMPLETED", { offset: 10, error: "Input/output error" }))).toBe(false)
    expect(progressed(event("BLOCK_JOB_CANCELLED", { offset: 10 }))).toBe(true)
  })

  it("never throws: an event of another shape is simply rejected", () => {
    const filter = EventFilter.fromSchema(ShutdownByGuest)
    expect(() => filter(event("SHUTDOWN", { guest: { deep: [1, 2, 3] } }))).not.toThrow()
    expect(filter(event("SHUTDOWN", { guest: { deep: [1, 2, 3] } }))).toBe(false)
  })
})

describe("data", () => {
  it("matches fields and their values", () => {
    const job1 = EventFilter.data({ id: "job1" })
    expect(job1(created)).toBe(true)
    expect(job1(concluded)).toBe(true)
    expect(job1(other)).toBe(false)
    expect(job1(stop)).toBe(false)
    expect(job1(completed)).toBe(false)
  })

  it("is partial: other fields may be present", () => {
    expect(EventFilter.data({ status: "concluded" })(concluded)).toBe(true)
    expect(EventFilter.data({ id: "job1", status: "concluded" })(concluded)).toBe(true)
    expect(EventFilter.data({ id: "job1", status: "concluded" })(created)).toBe(false)
    expect(EventFilter.data({ id: "job1", missing: "x" })(created)).toBe(false)
  })

  it("compares values strictly by type", () => {
    expect(EventFilter.data({ speed: 0 })(completed)).toBe(true)
    expect(EventFilter.data({ speed: "0" })(completed)).toBe(false)
    expect(EventFilter.data({ speed: false })(completed)).toBe(false)
    expect(EventFilter.data({ guest: false })(quit)).toBe(true)
    expect(EventFilter.data({ guest: 0 })(quit)).toBe(false)
    expect(EventFilter.data({ len: 1048576 })(completed)).toBe(true)
    expect(EventFilter.data({ len: 1048577 })(completed)).toBe(false)
  })

  it("is deep and partial at every level", () => {
    const e = event("X", { a: { b: { c: "deep", d: 1 }, e: true }, f: 2 })
    expect(EventFilter.data({ a: { b: { c: "deep" } } })(e)).toBe(true)
    expect(EventFilter.data({ a: { b: { c: "deep", d: 1 }, e: true }, f: 2 })(e)).toBe(true)
    expect(EventFilter.data({ a: { b: { c: "shallow" } } })(e)).toBe(false)
    expect(EventFilter.data({ a: { b: { x: "deep" } } })(e)).toBe(false)
    expect(EventFilter.data({ a: { b: "deep" } })(e)).toBe(false)
    expect(EventFilter.data({ a: {} })(e)).toBe(true)
  })

  it("a nested pattern matches an object only, even an empty one", () => {
    const e = event("X", { n: 2, s: "x", t: true, list: [], o: {}, z: null })
    expect(EventFilter.data({ o: {} })(e)).toBe(true)
    expect(EventFilter.data({ z: {} })(e)).toBe(false)
    expect(EventFilter.data({ n: {} })(e)).toBe(false)
    expect(EventFilter.data({ s: {} })(e)).toBe(false)
    expect(EventFilter.data({ t: {} })(e)).toBe(false)
    expect(EventFilter.data({ list: {} })(e)).toBe(false)
  })

  it("matches arrays element by element, with the same length", () => {
    const e = event("X", { list: [1, "two", { three: 3, extra: true }, null] })
    expect(EventFilter.data({ list: [1, "two", { three: 3 }, null] })(e)).toBe(true)
    expect(EventFilter.data({ list: [1, "two", { three: 3, extra: true }, null] })(e)).toBe(true)
    expect(EventFilter.data({ list: [1, "two", { three: 4 }, null] })(e)).toBe(false)
    expect(EventFilter.data({ list: [1, "two", { three: 3 }] })(e)).toBe(false)
    expect(EventFilter.data({ list: [1, "two", { three: 3 }, null, 5] })(e)).toBe(false)
    expect(EventFilter.data({ list: ["two", 1, { three: 3 }, null] })(e)).toBe(false)
    expect(EventFilter.data({ list: [] })(e)).toBe(false)
    expect(EventFilter.data({ list: [] })(event("X", { list: [] }))).toBe(true)
    expect(EventFilter.data({ list: [] })(event("X", { list: {} }))).toBe(false)
    expect(EventFilter.data({ list: [1] })(event("X", { list: { 0: 1, length: 1 } }))).toBe(false)
    expect(EventFilter.data({ list: [[1, 2], [3]] })(event("X", { list: [[1, 2], [3]] }))).toBe(true)
    expect(EventFilter.data({ list: [[1, 2], [3]] })(event("X", { list: [[1, 2], [3, 4]] }))).toBe(false)
  })

  it("null matches null only: not a missing field, not undefined, not a falsy value", () => {
    const isNull = EventFilter.data({ error: null })
    expect(isNull(event("X", { error: null }))).toBe(true)
    expect(isNull(event("X", {}))).toBe(false)
    expect(isNull(event("X", { error: undefined }))).toBe(false)
    expect(isNull(event("X", { error: 0 }))).toBe(false)
    expect(isNull(event("X", { error: "" }))).toBe(false)
    expect(isNull(event("X", { error: {} }))).toBe(false)
    expect(EventFilter.data({ a: { b: null } })(event("X", { a: null }))).toBe(false)
  })

  it("needs data: an event without data matches no pattern with fields", () => {
    expect(EventFilter.data({ id: "job1" })(stop)).toBe(false)
    expect(EventFilter.data({ a: null })(stop)).toBe(false)
  })

  it("matches own properties only: an inherited field never matches", () => {
    const inherited = Object.create({ id: "job1", status: "concluded" }) as Record<string, unknown>
    expect(inherited.id).toBe("job1")
    expect(EventFilter.data({ id: "job1" })(event("JOB_STATUS_CHANGE", inherited))).toBe(false)
    const nested = { job: Object.create({ id: "job1" }) as Record<string, unknown> }
    expect(EventFilter.data({ job: { id: "job1" } })(event("X", nested))).toBe(false)
    const mixed = Object.assign(Object.create({ status: "concluded" }) as Record<string, unknown>, { id: "job1" })
    expect(EventFilter.data({ id: "job1" })(event("X", mixed))).toBe(true)
    expect(EventFilter.data({ id: "job1", status: "concluded" })(event("X", mixed))).toBe(false)
    // Object.prototype's members are inherited too
    expect(EventFilter.data({ toString: "x" } as EventFilter.DataPattern)(event("X", {}))).toBe(false)
    expect(EventFilter.data({ constructor: {} })(event("X", {}))).toBe(false)
  })

  it("a '__proto__' wire key is a field like any other, in data and in a pattern from JSON", () => {
    const pattern = JSON.parse(`{"__proto__": {"polluted": true}}`) as EventFilter.DataPattern
    expect(Object.keys(pattern)).toEqual(["__proto__"])
    const filter = EventFilter.data(pattern)
    const line = (proto: string) =>
      `{"event":"X","data":{"__proto__":${proto}},"timestamp":{"seconds":1,"microseconds":2}}`
    expect(filter(wire(line(`{"polluted": true}`)))).toBe(true)
    expect(filter(wire(line(`{"polluted": true, "more": 1}`)))).toBe(true)
    expect(filter(wire(line(`{"polluted": false}`)))).toBe(false)
    expect(filter(wire(line(`1`)))).toBe(false)
    expect(filter(event("X", {}))).toBe(false)
    expect(filter(event("X", { polluted: true }))).toBe(false)
    // a wire `__proto__` never lends its fields to the data object
    const polluted = wire(line(`{"id": "job1"}`))
    expect(EventFilter.data({ id: "job1" })(polluted)).toBe(false)
    expect(EventFilter.data(JSON.parse(`{"__proto__": {"id": "job1"}}`))(polluted)).toBe(true)
  })

  it("an empty pattern accepts every event with data", () => {
    const any = EventFilter.data({})
    expect(any(created)).toBe(true)
    expect(any(event("X", {}))).toBe(true)
  })

  it("works on the events QEMU sends", () => {
    const line = `{"timestamp": {"seconds": 1732523459, "microseconds": 7}, "event": "DEVICE_TRAY_MOVED", ` +
      `"data": {"device": "", "tray-open": true, "id": "cd0"}}`
    expect(EventFilter.data({ "tray-open": true, id: "cd0" })(wire(line))).toBe(true)
    expect(EventFilter.data({ "tray-open": false })(wire(line))).toBe(false)
    expect(EventFilter.data({ device: "" })(wire(line))).toBe(true)
  })
})

// A pattern and a value that matches it exactly.
const patternKey = fc.oneof(
  fc.constantFrom("id", "status", "__proto__", "constructor", "a-b"),
  fc.string({ maxLength: 4 })
)
const patternValue: fc.Arbitrary<EventFilter.PatternValue> = fc.letrec<{ value: EventFilter.PatternValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.string({ maxLength: 4 }),
    fc.integer({ min: -5, max: 5 }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 3 }),
    fc.dictionary(patternKey, tie("value"), { maxKeys: 3 })
  )
})).value
/** Patterns as JSON text parses them: a "__proto__" key stays an own key. */
const pattern = fc.dictionary(patternKey, patternValue, { maxKeys: 4 }).map((p) =>
  JSON.parse(JSON.stringify(p)) as EventFilter.DataPattern
)
const copy = <A>(a: A): A => JSON.parse(JSON.stringify(a))

/** The data with extra fields in every object, arrays left as they are. */
const widen = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(widen)
  if (value === null || typeof value !== "object") return value
  const out: Record<string, unknown> = JSON.parse(`{"~extra": 1}`)
  for (const [k, v] of Object.entries(value)) Object.defineProperty(out, k, { value: widen(v), enumerable: true })
  return out
}

/** Changes one leaf (a primitive) somewhere inside; `undefined` if there is none. */
const changeLeaf = (value: unknown, pick: number): { readonly changed: unknown } | undefined => {
  if (value === null || typeof value !== "object") {
    return { changed: typeof value === "string" ? value + "!" : typeof value === "number" ? value + 1 : !value }
  }
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value)
  for (let i = 0; i < entries.length; i++) {
    const [k, v] = entries[(pick + i) % entries.length]
    const inner = changeLeaf(v, pick)
    if (inner === undefined) continue
    if (Array.isArray(value)) return { changed: value.map((x, j) => (String(j) === k ? inner.changed : x)) }
    const out: Record<string, unknown> = {}
    for (const [k2, v2] of Object.entries(value)) {
      Object.defineProperty(out, k2, { value: k2 === k ? inner.changed : v2, enumerable: true })
    }
    return { changed: out }
  }
  return undefined
}

describe("data, as properties", () => {
  it.prop("a pattern matches data equal to it", [pattern], ([p]) => {
    expect(EventFilter.data(p)(event("X", copy(p)))).toBe(true)
  }, { fastCheck: { numRuns: 300 } })

  it.prop("a pattern matches data with more fields at any depth", [pattern], ([p]) => {
    expect(EventFilter.data(p)(event("X", widen(p) as Record<string, unknown>))).toBe(true)
  }, { fastCheck: { numRuns: 300 } })

  it.prop("a pattern does not match data with one value changed", [pattern, fc.nat()], ([p, pick]) => {
    const changed = changeLeaf(p, pick)
    fc.pre(changed !== undefined)
    expect(EventFilter.data(p)(event("X", changed!.changed as Record<string, unknown>))).toBe(false)
  }, { fastCheck: { numRuns: 300 } })

  it.prop("a pattern with a field more than the data does not match", [pattern], ([p]) => {
    const more = copy(p) as Record<string, EventFilter.PatternValue>
    Object.defineProperty(more, "~missing", { value: 1, enumerable: true })
    expect(EventFilter.data(more)(event("X", copy(p)))).toBe(false)
  }, { fastCheck: { numRuns: 100 } })
})

describe("combinators", () => {
  const isStop = EventFilter.names("STOP")
  const job1 = EventFilter.data({ id: "job1" })
  const done = EventFilter.data({ status: "concluded" })
  const all = [stop, quit, guestQuit, created, concluded, other, completed]
  const accepted = (filter: EventFilter.EventFilter) => all.filter(filter)

  it("and accepts what every filter accepts", () => {
    expect(accepted(EventFilter.and(job1, done))).toEqual([concluded])
    expect(accepted(EventFilter.and(job1))).toEqual([created, concluded])
    expect(accepted(EventFilter.and(job1, isStop))).toEqual([])
  })

  it("or accepts what any filter accepts", () => {
    expect(accepted(EventFilter.or(job1, done))).toEqual([created, concluded, other])
    expect(accepted(EventFilter.or(isStop, job1))).toEqual([stop, created, concluded])
    expect(accepted(EventFilter.or(done))).toEqual([concluded, other])
  })

  it("not accepts what its filter rejects", () => {
    expect(accepted(EventFilter.not(job1))).toEqual([stop, quit, guestQuit, other, completed])
    expect(accepted(EventFilter.not(EventFilter.not(job1)))).toEqual([created, concluded])
  })

  it("the empty cases: and() accepts everything, or() nothing", () => {
    expect(accepted(EventFilter.and())).toEqual(all)
    expect(accepted(EventFilter.or())).toEqual([])
    expect(accepted(EventFilter.not(EventFilter.and()))).toEqual([])
    expect(accepted(EventFilter.not(EventFilter.or()))).toEqual(all)
    expect(accepted(EventFilter.and(EventFilter.or(), job1))).toEqual([])
    expect(accepted(EventFilter.or(EventFilter.and(), job1))).toEqual(all)
  })

  it("nest", () => {
    const shutdownOrJob1Done = EventFilter.or(
      EventFilter.and(EventFilter.names("SHUTDOWN"), EventFilter.not(EventFilter.data({ guest: true }))),
      EventFilter.and(job1, done, EventFilter.names("JOB_STATUS_CHANGE"))
    )
    expect(accepted(shutdownOrJob1Done)).toEqual([quit, concluded])
  })

  it("names accepts events with one of the names", () => {
    expect(accepted(EventFilter.names("STOP"))).toEqual([stop])
    expect(accepted(EventFilter.names("SHUTDOWN", "BLOCK_JOB_COMPLETED"))).toEqual([quit, guestQuit, completed])
    expect(accepted(EventFilter.names("NO_SUCH_EVENT"))).toEqual([])
    // as a filter, no names is the identity of `or`: it accepts nothing (a listener's empty names mean all)
    expect(accepted(EventFilter.names())).toEqual([])
    expect(accepted(EventFilter.names("stop"))).toEqual([])
  })

  it.prop(
    "and, or and not obey boolean algebra",
    [fc.array(fc.func(fc.boolean()), { maxLength: 4 }), fc.constantFrom(...all)],
    ([fns, e]) => {
      const filters = fns.map((f) => (x: QmpMessage.QmpEvent) => f(x.event, JSON.stringify(x.data)))
      const values = filters.map((f) => f(e))
      expect(EventFilter.and(...filters)(e)).toBe(values.every((v) => v))
      expect(EventFilter.or(...filters)(e)).toBe(values.some((v) => v))
      expect(EventFilter.not(EventFilter.and(...filters))(e)).toBe(EventFilter.or(...filters.map(EventFilter.not))(e))
    },
    { fastCheck: { numRuns: 200 } }
  )
})
