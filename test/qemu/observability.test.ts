/**
 * What a QMP connection tells about itself, on real QEMU: logs (silent at the default level), the
 * wire tap at debug level, a span per command, metrics; and `layerConfig`.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Either, Layer, LogLevel, Metric, Tracer } from "effect"
import { QemuProcess, QmpAddress, QmpClient, QmpEvents, QmpMetrics } from "../../src/index.js"
import { captureLogs } from "../support/logs.js"
import { describeQemu, session } from "../support/qemu.js"

/** A session in which QEMU sends an event: stop (its STOP heard), cont, disconnect. */
const stopAndCont = Effect.gen(function*() {
  const { events, qmp } = yield* session()
  const stops = yield* events.listener("STOP")
  yield* qmp.execute("stop")
  yield* stops.take
  yield* qmp.execute("cont")
  yield* qmp.disconnect
}).pipe(Effect.scoped)

describeQemu("observability on real QEMU", () => {
  it.live("at the default level a normal session logs nothing", () => {
    const logs = captureLogs()
    return stopAndCont.pipe(Effect.provide(logs.layer), Effect.map(() => expect(logs.entries).toEqual([])))
  })

  it.live("at debug level the wire tap shows what was written and read", () => {
    const logs = captureLogs({ minimumLevel: LogLevel.Debug })
    return stopAndCont.pipe(
      Effect.provide(logs.layer),
      Effect.map(() => {
        const debug = logs.messages("DEBUG")
        const sent = debug.filter((message) => message.startsWith("-> "))
        const read = debug.filter((message) => message.startsWith("<- "))
        expect(sent.some((message) => message.includes("\"execute\":\"stop\""))).toBe(true)
        expect(read.some((message) => message.includes("\"QMP\""))).toBe(true) // the greeting
        expect(read.some((message) => message.includes("\"event\": \"STOP\""))).toBe(true)
        expect(debug.some((message) => message.startsWith("Connected to QEMU 7."))).toBe(true)
      })
    )
  })

  it.live("each execute runs in a span named after its kind, carrying the command", () => {
    const spans: Array<{ name: string; attributes: Map<string, unknown>; ended: boolean }> = []
    const tracer = Tracer.make({
      span: (name, parent, context, links, startTime, kind) => {
        const attributes = new Map<string, unknown>()
        const record = { name, attributes, ended: false }
        spans.push(record)
        return {
          _tag: "Span",
          name,
          spanId: String(spans.length),
          traceId: "trace",
          parent,
          context,
          status: { _tag: "Started", startTime },
          attributes,
          links,
          sampled: true,
          kind,
          end: () => {
            record.ended = true
          },
          attribute: (key, value) => {
            attributes.set(key, value)
          },
          event: () => {},
          addLinks: () => {}
        }
      },
      context: (f) => f()
    })
    return Effect.gen(function*() {
      const { qmp } = yield* session()
      yield* qmp.execute("query-status")
      yield* qmp.executeOob("query-yank")
      const commands = spans.filter((span) => span.name.startsWith("QmpClient."))
      expect(commands.map((span) => [span.name, span.attributes.get("qmp.command"), span.ended])).toEqual([
        ["QmpClient.execute", "query-status", true],
        ["QmpClient.exec-oob", "query-yank", true]
      ])
    }).pipe(Effect.scoped, Effect.withTracer(tracer))
  })

  it.live("metrics: events received, commands pending, events dropped per listener", () =>
    Effect.gen(function*() {
      const { events, qemu, qmp } = yield* session()
      const address = QmpAddress.format(qemu.address)
      const received = Metric.tagged(QmpMetrics.eventsReceived, "address", address)
      const pending = Metric.tagged(QmpMetrics.commandsPending, "address", address)
      const bounded = yield* events.listener("STOP", undefined, { capacity: 1, strategy: "dropping" })
      const dropped = Metric.tagged(QmpMetrics.eventsDropped, "listener", "STOP")
      const droppedBefore = (yield* Metric.value(dropped)).count
      for (let i = 0; i < 3; i++) {
        yield* qmp.execute("stop")
        yield* qmp.execute("cont")
      }
      expect((yield* Metric.value(received)).count).toBe(6)
      expect((yield* Metric.value(dropped)).count - droppedBefore).toBe(2)
      expect(yield* bounded.dropped).toBe(2)
      // A command in flight counts as pending until its reply.
      yield* qemu.signal("SIGSTOP")
      const inFlight = yield* Effect.fork(qmp.execute("query-status"))
      yield* Effect.sleep("50 millis")
      expect((yield* Metric.value(pending)).count).toBe(1)
      yield* qemu.signal("SIGCONT")
      yield* inFlight.await
      expect((yield* Metric.value(pending)).count).toBe(0)
    }).pipe(Effect.scoped))

  it.live("layerConfig reads the address from QMP_SOCKET", () =>
    Effect.gen(function*() {
      const qemu = yield* QemuProcess.QemuProcess
      assert("path" in qemu.address)
      // QEMU serves one client per socket: free it for the client built from Config.
      yield* qemu.client.disconnect
      const provider = ConfigProvider.fromMap(new Map([["QMP_SOCKET", qemu.address.path]]))
      const context = yield* Layer.build(QmpClient.layerConfig()).pipe(Effect.withConfigProvider(provider))
      const qmp = Context.get(context, QmpClient.QmpClient)
      expect(qmp.address).toEqual(qemu.address)
      expect(yield* qmp.execute("query-status")).toMatchObject({ status: "running" })
      expect(Context.getOption(context, QmpEvents.QmpEvents)._tag).toBe("Some")
    }).pipe(Effect.scoped, Effect.provide(QemuProcess.layer())))
})

describe("addresses from text and Config", () => {
  it("parseTcpAddress takes HOST:PORT and [IPv6]:PORT, and says what is wrong otherwise", () => {
    expect(QmpClient.parseTcpAddress("127.0.0.1:4444")).toEqual(Either.right({ host: "127.0.0.1", port: 4444 }))
    expect(QmpClient.parseTcpAddress("[::1]:4444")).toEqual(Either.right({ host: "::1", port: 4444 }))
    expect(QmpClient.parseTcpAddress("localhost:1")).toEqual(Either.right({ host: "localhost", port: 1 }))
    for (const bad of ["localhost", "localhost:", ":4444", "host:0", "host:65536", "host:12ab", "::1:4444"]) {
      const parsed = QmpClient.parseTcpAddress(bad)
      assert(Either.isLeft(parsed), bad)
      expect(parsed.left).toContain("HOST:PORT")
    }
  })

  it.effect("addressConfig: QMP_SOCKET first, then QMP_TCP; a bad QMP_TCP is a ConfigError naming it", () =>
    Effect.gen(function*() {
      const read = (entries: ReadonlyArray<[string, string]>) =>
        Effect.either(Effect.withConfigProvider(QmpClient.addressConfig, ConfigProvider.fromMap(new Map(entries))))
      expect(yield* read([["QMP_SOCKET", "/run/qmp.sock"], ["QMP_TCP", "h:1"]])).toEqual(
        Either.right({ path: "/run/qmp.sock" })
      )
      expect(yield* read([["QMP_TCP", "10.0.0.1:4444"]])).toEqual(Either.right({ host: "10.0.0.1", port: 4444 }))
      const bad = yield* read([["QMP_TCP", "nope"]])
      assert(Either.isLeft(bad))
      expect(String(bad.left)).toContain("QMP_TCP")
      const missing = yield* read([])
      assert(Either.isLeft(missing))
      expect(String(missing.left)).toContain("QMP_SOCKET")
      expect(String(missing.left)).toContain("QMP_TCP")
    }))
})
