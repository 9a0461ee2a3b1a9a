/**
 * The wire schemas and the fast event guard. The guard `isEvent` must accept exactly what the
 * `QmpMessage.Event` schema decodes: property tests drive both with valid events, near misses and
 * arbitrary JSON, always after a JSON round trip (the values the wire can produce).
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc, Schema } from "effect"
import { QmpMessage } from "../src/index.js"

const decodeEvent = Schema.decodeUnknownEither(QmpMessage.Event)
const schemaAccepts = (u: unknown): boolean => Either.isRight(decodeEvent(u))

/** What the wire can deliver: a value as `JSON.parse` builds it. */
const roundTrip = (u: unknown): unknown => JSON.parse(JSON.stringify(u))

/** Parses one wire line and decodes it, failing the test with the schema's explanation. */
const decodeLine = <A, I>(schema: Schema.Schema<A, I>, line: string): A => {
  const result = Schema.decodeUnknownEither(schema)(JSON.parse(line))
  if (Either.isLeft(result)) assert.fail(result.left.message)
  return result.right
}

const rejects = <A, I>(schema: Schema.Schema<A, I>, u: unknown): boolean =>
  Either.isLeft(Schema.decodeUnknownEither(schema)(u))

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------

/** Keys that trip naive code: prototype names, and the event's own field names. */
const trickyKey = fc.constantFrom("__proto__", "constructor", "toString", "hasOwnProperty", "event", "data", "")
const key = fc.oneof({ weight: 3, arbitrary: fc.string({ maxLength: 6 }) }, { weight: 1, arbitrary: trickyKey })
const jsonValue = fc.jsonValue({ maxDepth: 2 })
const jsonObject = fc.dictionary(key, jsonValue, { maxKeys: 4 })
const finite = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }))
const notString = jsonValue.filter((v) => typeof v !== "string")
const notNumber = jsonValue.filter((v) => typeof v !== "number")
const notObject = fc.oneof(fc.constant(null), fc.array(jsonValue, { maxLength: 3 }), fc.string(), finite, fc.boolean())

const validTimestamp = fc.record({ seconds: finite, microseconds: finite })

/** A valid event: a string name, maybe data (a JSON object), a timestamp. */
const validEvent = fc.record(
  { event: fc.string({ maxLength: 20 }), data: jsonObject, timestamp: validTimestamp },
  { requiredKeys: ["event", "timestamp"] }
)

/** Extra keys that are not the event's own fields. */
const extraKeys = fc.dictionary(
  key.filter((k) => k !== "event" && k !== "data" && k !== "timestamp" && k !== "__proto__"),
  jsonValue,
  { minKeys: 1, maxKeys: 3 }
)

type Candidate = { readonly kind: string; readonly value: unknown; readonly valid: boolean }

const omit = (o: Record<string, unknown>, k: string): Record<string, unknown> => {
  const { [k]: _, ...rest } = o
  return rest
}

/** A valid event changed in one way, labelled with the kind of change and whether it stays valid. */
const candidate: fc.Arbitrary<Candidate> = fc.tuple(validEvent, extraKeys, jsonObject).chain(([e, extra, obj]) => {
  const ev = e as Record<string, unknown>
  const ts = e.timestamp as Record<string, unknown>
  const c = (kind: string, value: unknown, valid: boolean): Candidate => ({ kind, value, valid })
  return fc.oneof(
    fc.constant(c("valid", ev, true)),
    fc.constant(c("extra keys", { ...extra, ...ev }, true)),
    fc.constant(c("timestamp extra keys", { ...ev, timestamp: { ...extra, ...ts } }, true)),
    fc.constant(c("no data", omit(ev, "data"), true)),
    fc.constant(c("empty data", { ...ev, data: {} }, true)),
    fc.constant(c("data object", { ...ev, data: obj }, true)),
    fc.constant(c("empty name", { ...ev, event: "" }, true)),
    fc.constant(c("no event", omit(ev, "event"), false)),
    notString.map((v) => c("event mistyped", { ...ev, event: v }, false)),
    notObject.map((v) => c("data not an object", { ...ev, data: v }, false)),
    fc.constant(c("no timestamp", omit(ev, "timestamp"), false)),
    notObject.map((v) => c("timestamp not an object", { ...ev, timestamp: v }, false)),
    fc.constant(c("no seconds", { ...ev, timestamp: omit(ts, "seconds") }, false)),
    fc.constant(c("no microseconds", { ...ev, timestamp: omit(ts, "microseconds") }, false)),
    notNumber.map((v) => c("seconds mistyped", { ...ev, timestamp: { ...ts, seconds: v } }, false)),
    notNumber.map((v) => c("microseconds mistyped", { ...ev, timestamp: { ...ts, microseconds: v } }, false)),
    fc.constant(c("timestamp is the seconds", { ...ev, timestamp: ts.seconds }, false)),
    fc.constant(c("in an array", [ev], false)),
    fc.constant(c("empty object", {}, false)),
    notObject.map((v) => c("not an object", v, false)),
    fc.constant(c("data only", { data: obj }, false))
  )
})

/** Mixes of right and wrong fields in any combination, with no label: the two must agree. */
const mixed = fc.record(
  {
    event: fc.oneof(fc.string({ maxLength: 5 }), jsonValue),
    data: fc.oneof(jsonObject, jsonValue),
    timestamp: fc.oneof(
      validTimestamp,
      fc.record({ seconds: fc.oneof(finite, jsonValue), microseconds: fc.oneof(finite, jsonValue) }, {
        requiredKeys: []
      }),
      jsonValue
    ),
    extra: jsonValue
  },
  { requiredKeys: [] }
)

// ---------------------------------------------------------------------------------------------
// isEvent and the Event schema
// ---------------------------------------------------------------------------------------------

describe("isEvent agrees with the Event schema", () => {
  it.prop(
    "on valid events and near misses (after a JSON round trip), each as labelled",
    [candidate],
    ([c]) => {
      const value = roundTrip(c.value)
      expect({ kind: c.kind, guard: QmpMessage.isEvent(value) }).toEqual({ kind: c.kind, guard: c.valid })
      expect({ kind: c.kind, schema: schemaAccepts(value) }).toEqual({ kind: c.kind, schema: c.valid })
    },
    { fastCheck: { numRuns: 2000 } }
  )

  it.prop(
    "on mixes of right and wrong fields",
    [mixed],
    ([m]) => {
      const value = roundTrip(m)
      expect(QmpMessage.isEvent(value)).toBe(schemaAccepts(value))
    },
    { fastCheck: { numRuns: 2000 } }
  )

  it.prop(
    "on arbitrary JSON values",
    [fc.jsonValue({ maxDepth: 4 })],
    ([json]) => {
      const value = roundTrip(json)
      expect(QmpMessage.isEvent(value)).toBe(schemaAccepts(value))
    },
    { fastCheck: { numRuns: 1000 } }
  )

  it.prop(
    "on wire text, including '__proto__' keys that JSON.parse makes own keys",
    [fc.constantFrom("data", "timestamp", "top"), jsonValue, fc.boolean()],
    ([where, value, withData]) => {
      const proto = `"__proto__":${JSON.stringify(value)}`
      const data = where === "data" ? `,"data":{${proto}}` : withData ? `,"data":{}` : ""
      const ts = where === "timestamp" ? `{${proto},"seconds":1,"microseconds":2}` : `{"seconds":1,"microseconds":2}`
      const top = where === "top" ? `${proto},` : ""
      const u: unknown = JSON.parse(`{${top}"event":"X"${data},"timestamp":${ts}}`)
      expect(QmpMessage.isEvent(u)).toBe(true)
      expect(schemaAccepts(u)).toBe(true)
    },
    { fastCheck: { numRuns: 200 } }
  )

  it("the generators reach both verdicts on every kind of change", () => {
    const kinds = new Map<string, boolean>()
    for (const c of fc.sample(candidate, { numRuns: 3000, seed: 42 })) kinds.set(c.kind, c.valid)
    expect(kinds.size).toBe(21)
    expect([...kinds.values()].filter((valid) => valid).length).toBe(7)
  })

  it("reads the event's own fields only", () => {
    const inherited = Object.assign(Object.create({ event: "STOP" }), { timestamp: { seconds: 1, microseconds: 0 } })
    expect(QmpMessage.isEvent(inherited)).toBe(false)
    const inheritedTimestamp = { event: "STOP", timestamp: Object.create({ seconds: 1, microseconds: 0 }) }
    expect(QmpMessage.isEvent(inheritedTimestamp)).toBe(false)
  })

  it("makeEvent builds valid events", () => {
    const stop = QmpMessage.makeEvent("STOP", undefined, 1_700_000_000_123)
    expect(stop).toEqual({ event: "STOP", timestamp: { seconds: 1_700_000_000, microseconds: 123_000 } })
    expect("data" in stop).toBe(false)
    const reset = QmpMessage.makeEvent("RESET", { guest: false })
    expect(reset.data).toEqual({ guest: false })
    for (const e of [stop, reset]) {
      expect(QmpMessage.isEvent(e)).toBe(true)
      expect(schemaAccepts(e)).toBe(true)
    }
  })
})

// ---------------------------------------------------------------------------------------------
// Messages as a real QEMU 7.2 writes them, copied from its QMP socket
// ---------------------------------------------------------------------------------------------

describe("the schemas decode what QEMU 7.2 sends", () => {
  it("the greeting", () => {
    const line = `{"QMP":{"version":{"qemu":{"micro":22,"minor":2,"major":7},` +
      `"package":"Debian 1:7.2+dfsg-7+deb12u18"},"capabilities":["oob"]}}`
    const greeting = decodeLine(QmpMessage.Greeting, line)
    expect(greeting.QMP.version.qemu).toEqual({ major: 7, minor: 2, micro: 22 })
    expect(greeting.QMP.version.package).toBe("Debian 1:7.2+dfsg-7+deb12u18")
    expect(greeting.QMP.capabilities).toEqual(["oob"])
    const noCapabilities = decodeLine(QmpMessage.Greeting, line.replace(`["oob"]`, "[]"))
    expect(noCapabilities.QMP.capabilities).toEqual([])
  })

  it("a greeting that is not QMP is rejected", () => {
    expect(rejects(QmpMessage.Greeting, { QMP: {} })).toBe(true)
    expect(rejects(QmpMessage.Greeting, { QMP: { version: { qemu: { major: 7 } }, capabilities: [] } })).toBe(true)
    expect(rejects(QmpMessage.Greeting, { hello: "SSH-2.0" })).toBe(true)
    expect(rejects(QmpMessage.Greeting, JSON.parse(`{"return":{}}`))).toBe(true)
  })

  it("returns", () => {
    expect(decodeLine(QmpMessage.Return, `{"return": {}}`)).toEqual({ return: {} })
    expect(decodeLine(QmpMessage.Return, `{"return": ""}`)).toEqual({ return: "" })
    expect(decodeLine(QmpMessage.Return, `{"return": {"status": "running", "singlestep": false, "running": true}}`))
      .toEqual({ return: { status: "running", singlestep: false, running: true } })
    expect(decodeLine(QmpMessage.Return, `{"return": [], "id": 42}`)).toEqual({ return: [], id: 42 })
    expect(decodeLine(QmpMessage.Return, `{"return": {}, "id": {"a": [1, "x"]}}`))
      .toEqual({ return: {}, id: { a: [1, "x"] } })
    expect(decodeLine(QmpMessage.Return, `{"return": null, "id": "c1"}`)).toEqual({ return: null, id: "c1" })
  })

  it("a message without a 'return' key is not a return", () => {
    expect(rejects(QmpMessage.Return, {})).toBe(true)
    expect(rejects(QmpMessage.Return, { id: 1 })).toBe(true)
    expect(rejects(QmpMessage.Return, JSON.parse(`{"event":"STOP","timestamp":{"seconds":1,"microseconds":2}}`)))
      .toBe(true)
    expect(rejects(QmpMessage.Return, JSON.parse(`{"error":{"class":"GenericError"},"id":1}`))).toBe(true)
  })

  it("errors", () => {
    const notNegotiated = decodeLine(
      QmpMessage.ErrorResponse,
      `{"id":"c1","error":{"class":"CommandNotFound","desc":"Expecting capabilities negotiation with 'qmp_capabilities'"}}`
    )
    expect(notNegotiated).toEqual({
      id: "c1",
      error: { class: "CommandNotFound", desc: "Expecting capabilities negotiation with 'qmp_capabilities'" }
    })
    const idless = decodeLine(
      QmpMessage.ErrorResponse,
      `{"error":{"class":"GenericError","desc":"JSON parse error, expecting value"}}`
    )
    expect(idless).toEqual({ error: { class: "GenericError", desc: "JSON parse error, expecting value" } })
    expect("id" in idless).toBe(false)
    // A malformed error (the README's "Bad input": it fails the call it answers): no class, or no desc
    expect(rejects(QmpMessage.ErrorResponse, { error: { desc: "x" }, id: 1 })).toBe(true)
    expect(rejects(QmpMessage.ErrorResponse, { error: { class: "GenericError" }, id: 1 })).toBe(true)
    expect(rejects(QmpMessage.ErrorResponse, { error: "GenericError", id: 1 })).toBe(true)
  })

  const events = [
    `{"timestamp": {"seconds": 1732523456, "microseconds": 123456}, "event": "STOP"}`,
    `{"timestamp": {"seconds": 1732523456, "microseconds": 223456}, "event": "RESUME"}`,
    `{"timestamp": {"seconds": 1732523457, "microseconds": 1}, "event": "RESET", ` +
    `"data": {"guest": false, "reason": "host-qmp-system-reset"}}`,
    `{"timestamp": {"seconds": 1732523457, "microseconds": 2}, "event": "SHUTDOWN", ` +
    `"data": {"guest": false, "reason": "host-qmp-quit"}}`,
    `{"timestamp": {"seconds": 1732523458, "microseconds": 3}, "event": "JOB_STATUS_CHANGE", ` +
    `"data": {"status": "created", "id": "j1"}}`,
    `{"timestamp": {"seconds": 1732523458, "microseconds": 4}, "event": "BLOCK_JOB_COMPLETED", ` +
    `"data": {"device": "j1", "len": 1048576, "offset": 1048576, "speed": 0, "type": "backup"}}`,
    `{"timestamp": {"seconds": 1732523458, "microseconds": 5}, "event": "BLOCK_JOB_COMPLETED", ` +
    `"data": {"device": "e1", "len": 1048576, "offset": 0, "speed": 0, "type": "backup", "error": "Input/output error"}}`,
    `{"timestamp": {"seconds": 1732523459, "microseconds": 6}, "event": "BLOCK_JOB_ERROR", ` +
    `"data": {"device": "e1", "operation": "read", "action": "report"}}`,
    `{"timestamp": {"seconds": 1732523459, "microseconds": 7}, "event": "DEVICE_TRAY_MOVED", ` +
    `"data": {"device": "", "tray-open": true, "id": "cd0"}}`,
    `{"timestamp": {"seconds": 1732523459, "microseconds": 8}, "event": "DEVICE_DELETED", ` +
    `"data": {"device": "m1", "path": "/machine/peripheral/m1"}}`,
    `{"timestamp": {"seconds": 1732523460, "microseconds": 9}, "event": "MIGRATION_PASS", "data": {"pass": 1}}`,
    `{"timestamp": {"seconds": 1732523460, "microseconds": 10}, "event": "BLOCK_WRITE_THRESHOLD", ` +
    `"data": {"node-name": "tgt", "write-threshold": 4096, "amount-exceeded": 1044480}}`
  ]

  it("events, by the schema and by the guard, keeping the data object itself", () => {
    for (const line of events) {
      const raw = JSON.parse(line)
      const event = decodeLine(QmpMessage.Event, line)
      expect(event).toEqual(raw)
      expect(QmpMessage.isEvent(raw)).toBe(true)
      expect(QmpMessage.explain(QmpMessage.Event, raw)).toBeUndefined()
      // JsonObject does not copy: the decoded data is the parsed object, which every listener shares
      const again = Schema.decodeUnknownSync(QmpMessage.Event)(raw)
      if (raw.data !== undefined) expect(again.data).toBe(raw.data)
    }
    const tray = decodeLine(QmpMessage.Event, events[8])
    expect(tray.data?.["tray-open"]).toBe(true)
    expect("data" in decodeLine(QmpMessage.Event, events[0])).toBe(false)
  })

  it("every message, through ServerMessage, as the member it is", () => {
    const decode = Schema.decodeUnknownSync(QmpMessage.ServerMessage)
    const greeting = decode(JSON.parse(
      `{"QMP":{"version":{"qemu":{"micro":22,"minor":2,"major":7},` +
        `"package":""},"capabilities":["oob"]}}`
    ))
    expect("QMP" in greeting).toBe(true)
    expect(decode(JSON.parse(`{"return": {}, "id": 1}`))).toEqual({ return: {}, id: 1 })
    const error = decode(JSON.parse(`{"error":{"class":"CommandNotFound","desc":"x"},"id":2}`))
    expect(error).toEqual({ error: { class: "CommandNotFound", desc: "x" }, id: 2 })
    expect("return" in error).toBe(false)
    for (const line of events) {
      const decoded = decode(JSON.parse(line))
      expect(decoded).toEqual(JSON.parse(line))
      expect("return" in decoded).toBe(false)
    }
  })

  it("commands as the client writes them", () => {
    const decode = Schema.decodeUnknownSync(QmpMessage.Command)
    expect(decode(JSON.parse(`{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}`)))
      .toEqual({ execute: "qmp_capabilities", arguments: { enable: ["oob"] } })
    expect(decode(JSON.parse(`{"execute":"query-status","id":"c1"}`))).toEqual({ execute: "query-status", id: "c1" })
    expect(decode(JSON.parse(`{"exec-oob":"migrate-pause","id":7}`))).toEqual({ "exec-oob": "migrate-pause", id: 7 })
    expect(rejects(QmpMessage.Command, { execute: 1 })).toBe(true)
    expect(rejects(QmpMessage.Command, { execute: "stop", arguments: [] })).toBe(true)
  })
})

// ---------------------------------------------------------------------------------------------
// __proto__ and explain
// ---------------------------------------------------------------------------------------------

describe("untrusted data", () => {
  it("a '__proto__' key in data stays an own key: JsonObject does not copy", () => {
    const line = `{"event":"X","data":{"__proto__":{"polluted":true},"id":"j1"},` +
      `"timestamp":{"seconds":1,"microseconds":2}}`
    const raw = JSON.parse(line)
    const event = Schema.decodeUnknownSync(QmpMessage.Event)(raw)
    expect(event).toEqual(raw)
    const data = event.data!
    expect(data).toBe(raw.data)
    expect(Object.keys(data)).toEqual(["__proto__", "id"])
    expect(Object.getPrototypeOf(data)).toBe(Object.prototype)
    expect((data as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.getOwnPropertyDescriptor(data, "__proto__")?.value).toEqual({ polluted: true })
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    // and the same through JsonObject alone
    const direct = Schema.decodeUnknownSync(QmpMessage.JsonObject)(raw.data)
    expect(direct).toBe(raw.data)
  })

  it("JsonObject accepts objects only", () => {
    for (const u of [null, [], [1], "x", 1, true, undefined]) {
      expect(rejects(QmpMessage.JsonObject, u)).toBe(true)
    }
    expect(rejects(QmpMessage.JsonObject, {})).toBe(false)
  })

  const explainEvent = (u: unknown) => QmpMessage.explain(QmpMessage.Event, u)

  it("explain(Event, u) names the path and the problem", () => {
    const ts = { seconds: 1, microseconds: 2 }
    expect(explainEvent({ event: "STOP", timestamp: ts })).toBeUndefined()
    const mistyped = explainEvent({ event: 1, timestamp: ts })
    expect(mistyped).toBe("event: Expected string, actual 1")
    const missing = explainEvent({ timestamp: ts })
    expect(missing).toBe("event: is missing")
    const badData = explainEvent({ event: "X", data: [1], timestamp: ts })
    expect(badData).toMatch(/^data: /)
    expect(badData).toContain("JsonObject")
    const nullData = explainEvent({ event: "X", data: null, timestamp: ts })
    expect(nullData).toMatch(/^data: /)
    expect(nullData).toContain("null")
    const noMicros = explainEvent({ event: "X", timestamp: { seconds: 1 } })
    expect(noMicros).toBe("timestamp.microseconds: is missing")
    const badSeconds = explainEvent({ event: "X", timestamp: { seconds: "1", microseconds: 2 } })
    expect(badSeconds).toBe(`timestamp.seconds: Expected number, actual "1"`)
    expect(explainEvent([])).toContain("QmpEvent")
    expect(explainEvent("STOP")).toContain(`actual "STOP"`)
  })

  it.prop(
    "explain(Event, u) explains exactly the events the guard rejects",
    [candidate],
    ([c]) => {
      const value = roundTrip(c.value)
      const explanation = explainEvent(value)
      expect(explanation === undefined).toBe(QmpMessage.isEvent(value))
      if (explanation !== undefined) expect(explanation.length).toBeGreaterThan(0)
    },
    { fastCheck: { numRuns: 300 } }
  )
})
