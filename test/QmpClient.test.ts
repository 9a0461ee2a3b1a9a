/**
 * QmpClient against QmpTestServer, in this process: what real QEMU will not do on demand (floods,
 * bad input, hang-ups at awkward moments, silence). The real-QEMU suite is in test/qemu/.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Either, Exit, Fiber, LogLevel, Metric, Option, Stream, TestClock } from "effect"
import * as Net from "node:net"
import * as Path from "node:path"
import * as V8 from "node:v8"
import * as Vm from "node:vm"
import { EventListener, QmpAddress, QmpClient, QmpEvents, QmpMessage, QmpMetrics } from "../src/index.js"
import * as QmpTestServer from "../src/testing/QmpTestServer.js"
import { attempt, connect } from "./support/connect.js"
import { captureLogs } from "./support/logs.js"

const MiB = 1024 * 1024

/** `connect`, plus the server's side of the connection and the `qmp_capabilities` the client sent. */
const connected = (serverOptions: QmpTestServer.Options = {}, clientOptions: QmpClient.Options = {}) =>
  Effect.gen(function*() {
    const { client, events, server } = yield* connect(serverOptions, clientOptions)
    return { client, events, server, conn: yield* server.accept, negotiation: yield* server.nextCommand }
  })

/** The arguments of a received command, for tests that know what they sent. */
const argsOf = (command: QmpTestServer.ReceivedCommand): Record<string, any> => command.arguments ?? {}

/** The instance inside Effect's span-capturing Proxy, if the error is wrapped in one (`effect/OriginalAnnotation`). */
const original = <E>(error: E): E => (error as any)?.[Symbol.for("effect/OriginalAnnotation")] ?? error

/** A full collection: `gc`, which Node gives when `--expose-gc` is set, here set at run time. */
const collectGarbage = (): void => {
  V8.setFlagsFromString("--expose-gc")
  ;(Vm.runInNewContext("gc") as () => void)()
}

/** An event with a fixed timestamp, as a test writes it by hand. */
const event = (name: string, data?: Record<string, unknown>): QmpMessage.QmpEvent =>
  QmpMessage.makeEvent(name, data, 1_700_000_000_000)

describe("QmpClient (QmpTestServer)", () => {
  describe("connecting", () => {
    it.scopedLive("reads the greeting and enables oob when it is offered", () =>
      Effect.gen(function*() {
        const { client, negotiation, server } = yield* connected()
        expect(negotiation.message).toMatchObject({ execute: "qmp_capabilities", arguments: { enable: ["oob"] } })
        expect(typeof negotiation.id).toBe("string")
        expect(client.oob).toBe(true)
        expect(client.greeting).toEqual({
          QMP: {
            version: { qemu: { major: 7, minor: 2, micro: 0 }, package: "effect-qmp QmpTestServer" },
            capabilities: ["oob"]
          }
        })
        expect(client.greeting).toEqual(server.greeting)
      }))

    it.scopedLive("does not ask for oob when the greeting does not offer it", () =>
      Effect.gen(function*() {
        const { client, negotiation } = yield* connected({ capabilities: [] })
        expect(negotiation.arguments).toBeUndefined()
        expect(negotiation.message.arguments).toBeUndefined()
        expect(client.oob).toBe(false)
      }))

    it.scopedLive("a missing socket fails at once with QmpConnectError NotFound, naming the address", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make()
        const address = { path: Path.join(Path.dirname((server.address as { path: string }).path), "missing.sock") }
        const { fiber } = yield* attempt(address)
        const error = yield* Effect.flip(Fiber.join(fiber))
        expect(error).toMatchObject({ _tag: "QmpConnectError", reason: "NotFound", address })
        expect(error.message).toContain(`unix:${address.path}`)
      }))

    it.scopedLive("a port nobody listens on fails with QmpConnectError Refused", () =>
      Effect.gen(function*() {
        const port = yield* Effect.async<number>((resume) => {
          const probe = Net.createServer().listen(0, "127.0.0.1", () => {
            const { port } = probe.address() as Net.AddressInfo
            probe.close(() => resume(Effect.succeed(port)))
          })
        })
        const { fiber } = yield* attempt({ host: "127.0.0.1", port })
        const error = yield* Effect.flip(Fiber.join(fiber))
        expect(error).toMatchObject({ _tag: "QmpConnectError", reason: "Refused" })
        expect(error.message).toContain(`tcp:127.0.0.1:${port}`)
      }))

    it.scoped("a server that never greets fails with QmpConnectError NoGreeting within connectTimeout", () => {
      const logs = captureLogs()
      return Effect.gen(function*() {
        const server = yield* QmpTestServer.make({ greeting: false })
        expect(server.greeting).toBeUndefined()
        const { fiber } = yield* attempt(server.address, { connectTimeout: "300 millis" }).pipe(
          Effect.provide(logs.layer)
        )
        const conn = yield* server.accept
        // Once the client drops an event sent before any greeting, it is connected and waiting for one.
        yield* conn.send(event("EARLY"))
        yield* logs.logged("Dropped an event that came before the greeting")
        yield* TestClock.adjust("299 millis")
        expect(yield* Fiber.poll(fiber)).toEqual(Option.none())
        yield* TestClock.adjust("1 millis")
        const error = yield* Effect.flip(Fiber.join(fiber))
        expect(error).toMatchObject({ _tag: "QmpConnectError", reason: "NoGreeting" })
        expect(error.message).toContain("another client probably holds this QMP socket")
        // The failed attempt let go of the socket at once.
        yield* conn.closed
      })
    })

    it.scopedLive("a greeting that is not QMP fails with QmpNegotiationError BadGreeting; the registry is not ended", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make({ greeting: { hello: "world" } })
        const { events, fiber } = yield* attempt(server.address)
        const listener = yield* events.listener()
        const conn = yield* server.accept
        const error = yield* Effect.flip(Fiber.join(fiber))
        expect(error).toMatchObject({ _tag: "QmpNegotiationError", reason: "BadGreeting" })
        expect(error.message).toMatch(/not a QMP greeting: it sent \{"hello":"world"\} \(QMP: is missing\)/)
        yield* conn.closed
        // A failed connect never ends the registry it was given.
        yield* events.publish(QmpMessage.makeEvent("STILL_OPEN"))
        expect((yield* listener.take).event).toBe("STILL_OPEN")
      }))

    it.scopedLive("an event before the greeting is dropped (logged); the greeting after it is read", () =>
      Effect.gen(function*() {
        const logs = captureLogs()
        const greeting = QmpTestServer.makeGreeting()
        const server = yield* QmpTestServer.make({
          greeting: JSON.stringify(QmpMessage.makeEvent("RESUME")) + "\r\n" + JSON.stringify(greeting) + "\r\n"
        })
        const { events, fiber } = yield* attempt(server.address).pipe(
          Effect.provide(logs.layer)
        )
        const client = yield* Fiber.join(fiber)
        expect(client.greeting).toEqual(greeting)
        expect(yield* client.execute("query-status")).toMatchObject({ status: "running" })
        expect(logs.messages()).toContain("Dropped an event that came before the greeting")
        expect(yield* events.events.history).toEqual([])
      }))

    it.scopedLive("a greeting that is not JSON fails with QmpNegotiationError BadGreeting", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make({ greeting: "SSH-2.0-OpenSSH_9.2\r\n" })
        const { fiber } = yield* attempt(server.address)
        const error = yield* Effect.flip(Fiber.join(fiber))
        expect(error).toMatchObject({ _tag: "QmpNegotiationError", reason: "BadGreeting" })
        // It names what the server sent.
        expect(error.message).toBe(
          "The server's first message is not a QMP greeting: it sent SSH-2.0-OpenSSH_9.2, which is not JSON"
        )
      }))

    it.scopedLive("a pretty monitor: the greeting, replies and events, each over many lines", () =>
      Effect.gen(function*() {
        const { client, events, server } = yield* connect({ pretty: true })
        const stops = yield* events.listener("STOP")
        expect(yield* client.execute("query-status")).toEqual({ status: "running", singlestep: false, running: true })
        yield* client.execute("stop")
        expect((yield* stops.take).event).toBe("STOP")
        yield* server.emit("BIG", { items: Array.from({ length: 100 }, (_, i) => ({ i, text: "é{[\"" })) })
        expect(yield* client.execute("query-jobs")).toEqual([])
        expect((yield* events.events.history).map((e) => e.event)).toEqual(["STOP", "BIG"])
      }))

    it.scopedLive("a pretty greeting in one-byte chunks: the framer is chosen once the first line is known", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make({ greeting: false, pretty: true })
        const { fiber } = yield* attempt(server.address)
        const conn = yield* server.accept
        const greeting = "{\r\n    \"QMP\": {\r\n        \"version\": {\r\n            \"qemu\": {\r\n" +
          "                \"micro\": 0,\r\n                \"minor\": 2,\r\n                \"major\": 7\r\n" +
          "            },\r\n            \"package\": \"\"\r\n        },\r\n        \"capabilities\": [\r\n" +
          "        ]\r\n    }\r\n}\r\n"
        yield* conn.raw([greeting.slice(0, 1), greeting.slice(1, 2), greeting.slice(2, 3), greeting.slice(3)], {
          delay: 5
        })
        const client = yield* Fiber.join(fiber)
        expect(client.greeting.QMP.version.qemu).toEqual({ major: 7, minor: 2, micro: 0 })
        expect(yield* client.execute("query-status")).toMatchObject({ status: "running" })
      }))

    it.scopedLive("a greeting that is JSON but not QMP is named", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make({ greeting: "[1, 2]\r\n" })
        const { fiber } = yield* attempt(server.address)
        const error = yield* Effect.flip(Fiber.join(fiber))
        expect(error.message).toBe(
          "The server's first message is not a QMP greeting: it sent [1, 2], which is an array"
        )
      }))

    it.scopedLive("a server that hangs up before greeting fails with QmpConnectError Closed", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make({ greeting: false })
        const { fiber } = yield* attempt(server.address)
        const conn = yield* server.accept
        yield* conn.hangUp
        const error = yield* Effect.flip(Fiber.join(fiber))
        expect(error).toMatchObject({ _tag: "QmpConnectError", reason: "Closed" })
      }))

    it.scopedLive("a refused qmp_capabilities fails with QmpNegotiationError Refused", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make()
        yield* server.handle("qmp_capabilities", () => Effect.fail(QmpTestServer.genericError("not today")))
        const { fiber } = yield* attempt(server.address)
        expect((yield* server.nextCommand).command).toBe("qmp_capabilities")
        const error = yield* Effect.flip(Fiber.join(fiber))
        expect(error).toMatchObject({ _tag: "QmpNegotiationError", reason: "Refused" })
        expect(error.message).toContain("GenericError: not today")
      }))
  })

  describe("commands", () => {
    it.scopedLive("correlates concurrent calls by id, whatever the order of the replies", () =>
      Effect.gen(function*() {
        const { client, conn, server } = yield* connected()
        for (const name of ["a", "b", "c"]) yield* server.handle(`cmd-${name}`, QmpTestServer.silent)
        const calls = yield* Effect.forEach(
          ["a", "b", "c"],
          (name) => Effect.fork(client.executeUnknown(`cmd-${name}`, { name })),
          { concurrency: "unbounded" }
        )
        const received = [yield* server.nextCommand, yield* server.nextCommand, yield* server.nextCommand]
        expect(new Set(received.map((m) => m.id)).size).toBe(3)
        // Answer in reverse order, all in one write.
        yield* conn.send(...received.reverse().map((m) => ({ return: { echo: argsOf(m).name }, id: m.id })))
        const results = yield* Effect.forEach(calls, Fiber.join)
        expect(results).toEqual([{ echo: "a" }, { echo: "b" }, { echo: "c" }])
      }))

    it.scopedLive("QEMU's error reply fails the call with QmpExecuteError; the connection stays usable", () =>
      Effect.gen(function*() {
        const { client, server } = yield* connected()
        const call = yield* Effect.fork(client.executeUnknown("nope"))
        expect((yield* server.nextCommand).command).toBe("nope")
        const error = yield* Effect.flip(Fiber.join(call))
        expect(error).toMatchObject({
          _tag: "QmpExecuteError",
          command: "nope",
          errorClass: "CommandNotFound",
          desc: "The command nope has not been found"
        })
        const next = yield* Effect.fork(client.execute("query-status"))
        expect((yield* server.nextCommand).command).toBe("query-status")
        expect(yield* Fiber.join(next)).toEqual({ status: "running", singlestep: false, running: true })
      }))

    it.scopedLive("executeOob writes exec-oob with an id", () =>
      Effect.gen(function*() {
        const { client, server } = yield* connected()
        yield* server.handle("query-yank", () => Effect.succeed([]), { oob: true })
        const call = yield* Effect.fork(client.executeOob("query-yank"))
        const command = yield* server.nextCommand
        expect(command.message).toMatchObject({ "exec-oob": "query-yank" })
        expect(command.oob).toBe(true)
        expect(typeof command.id).toBe("string")
        expect(yield* Fiber.join(call)).toEqual([])
      }))

    it.scoped("a late reply after QmpTimeoutError is dropped without disturbing later calls", () => {
      const logs = captureLogs({ minimumLevel: LogLevel.Debug })
      return Effect.gen(function*() {
        const { client, conn, server } = yield* connected()
        yield* server.handle("slow", QmpTestServer.silent)
        yield* server.handle("next", QmpTestServer.silent)
        const slow = yield* Effect.fork(client.executeUnknown("slow", undefined, { timeout: "200 millis" }))
        const slowCommand = yield* server.nextCommand
        // The call times out when the clock reaches its timeout, not before.
        yield* TestClock.adjust("199 millis")
        expect(yield* Fiber.poll(slow)).toEqual(Option.none())
        yield* TestClock.adjust("1 millis")
        const error = yield* Effect.flip(Fiber.join(slow))
        expect(error).toMatchObject({ _tag: "QmpTimeoutError", command: "slow", timeout: "200ms" })
        expect(error.message).toContain("may still complete")

        const next = yield* Effect.fork(client.executeUnknown("next"))
        const nextCommand = yield* server.nextCommand
        // The late reply first, then the reply to the next call.
        yield* conn.send({ return: "late", id: slowCommand.id }, { return: "mine", id: nextCommand.id })
        expect(yield* Fiber.join(next)).toBe("mine")
        expect(logs.messages("DEBUG").some((message) => message.includes("late reply"))).toBe(true)
        expect(logs.messages("WARN")).toEqual([])
      }).pipe(Effect.provide(logs.layer))
    })

    it.scopedLive("an interrupted call's late reply is dropped too", () =>
      Effect.gen(function*() {
        const { client, conn, server } = yield* connected()
        yield* server.handle("abandoned", QmpTestServer.silent)
        yield* server.handle("next", QmpTestServer.silent)
        const call = yield* Effect.fork(client.executeUnknown("abandoned"))
        const command = yield* server.nextCommand
        yield* Fiber.interrupt(call)
        const next = yield* Effect.fork(client.executeUnknown("next"))
        const nextCommand = yield* server.nextCommand
        yield* conn.send({ return: "late", id: command.id }, { return: "mine", id: nextCommand.id })
        expect(yield* Fiber.join(next)).toBe("mine")
      }))

    it.scopedLive("200 concurrent calls each get their own reply", () =>
      Effect.gen(function*() {
        const { client, conn, server } = yield* connected()
        yield* server.handle("echo", QmpTestServer.silent)
        const calls = yield* Effect.fork(
          Effect.forEach(
            Array.from({ length: 200 }, (_, i) => i),
            (i) => client.executeUnknown("echo", { i }),
            { concurrency: "unbounded" }
          )
        )
        const commands = yield* Effect.forEach(Array.from({ length: 200 }), () => server.nextCommand)
        // Shuffle the replies.
        commands.sort((a, b) => ((argsOf(a).i * 7919) % 200) - ((argsOf(b).i * 7919) % 200))
        yield* conn.send(...commands.map((m) => ({ return: argsOf(m).i, id: m.id })))
        expect(yield* Fiber.join(calls)).toEqual(Array.from({ length: 200 }, (_, i) => i))
      }))
  })

  describe("events", () => {
    it.scopedLive("an event sent before a return is in every listener when execute returns (separate chunks)", () =>
      Effect.gen(function*() {
        const { client, events, server } = yield* connected()
        yield* server.handle("stop", (_, ctx) =>
          ctx.emit("STOP").pipe(
            Effect.zipRight(Effect.sleep("30 millis")),
            Effect.as({})
          ))
        const stops = yield* events.listener("STOP")
        const all = yield* events.listener()
        const call = yield* Effect.fork(client.execute("stop"))
        expect((yield* server.nextCommand).command).toBe("stop")
        yield* Fiber.join(call)
        expect(yield* stops.isEmpty).toBe(false)
        expect(yield* all.isEmpty).toBe(false)
        expect((yield* events.events.history).map((e) => e.event)).toEqual(["STOP"])
      }))

    it.scopedLive("events handed on from the socket callback are delivered before a return read after them", () =>
      Effect.gen(function*() {
        // A sink in front of a registry that holds each batch handed on at once until the test lets
        // it go: the return, read after the event's own chunk, must wait for it.
        const registry = yield* QmpEvents.make
        const held: Array<() => Effect.Effect<void>> = []
        const sink = {
          publishAll: registry.publishAll,
          end: registry.end,
          offerAll: (events: ReadonlyArray<QmpMessage.QmpEvent>, delivered: () => void) => {
            held.push(() => Effect.zipRight(registry.publishAll(events), Effect.sync(delivered)))
            return true
          }
        }
        const server = yield* QmpTestServer.make()
        const client = yield* QmpClient.makeWith(server.address, {}, sink, undefined)
        const conn = yield* server.accept
        yield* server.nextCommand
        yield* server.handle("x-held", QmpTestServer.silent)
        const stops = yield* registry.listener("STOP")
        const call = yield* Effect.fork(client.executeUnknown("x-held"))
        const command = yield* server.nextCommand
        yield* conn.send(event("STOP"))
        // Handed on from the socket callback, not delivered yet.
        while (held.length === 0) yield* Effect.sleep("1 millis")
        yield* conn.send({ return: {}, id: command.id })
        yield* Effect.sleep("50 millis")
        expect(call.unsafePoll()).toBeNull()
        expect(yield* stops.isEmpty).toBe(true)
        yield* held[0]()
        yield* Fiber.join(call)
        expect((yield* stops.take).event).toBe("STOP")
        expect(held.length).toBe(1)
      }))

    for (const handedOn of [false, true]) {
      it.scopedLive(`an idle connection does not keep the last batch it read (${handedOn ? "handed on at once" : "processed"})`, () =>
        Effect.gen(function*() {
          // A fleet holds a thousand of them: each must not keep its last messages alive (nor make
          // V8 judge every batch long-lived, see Batch in reader.ts). Without offerAll the batch goes
          // through the processing fiber, which then waits for the next one: that loop once kept its
          // last batches in its locals. With offerAll the batch goes from the socket callback to the
          // sink, and this guards the reader and the session's hand-off.
          const registry = yield* QmpEvents.make
          const seen: Array<WeakRef<ReadonlyArray<QmpMessage.QmpEvent>>> = []
          let offered = 0
          const sink = {
            publishAll: (events: Iterable<QmpMessage.QmpEvent>) => {
              seen.push(new WeakRef(events as ReadonlyArray<QmpMessage.QmpEvent>))
              return registry.publishAll(events)
            },
            end: registry.end,
            ...(handedOn ?
              {
                offerAll: (events: ReadonlyArray<QmpMessage.QmpEvent>, delivered: () => void) => {
                  seen.push(new WeakRef(events))
                  offered++
                  Effect.runFork(Effect.zipRight(registry.publishAll(events), Effect.sync(delivered)))
                  return true
                }
              } :
              {})
          }
          const server = yield* QmpTestServer.make()
          yield* QmpClient.makeWith(server.address, {}, sink, undefined)
          const conn = yield* server.accept
          yield* server.nextCommand
          const stops = yield* registry.listener("STOP")
          yield* conn.send(event("STOP"))
          expect((yield* stops.take).event).toBe("STOP")
          expect(seen.length).toBe(1)
          expect(offered).toBe(handedOn ? 1 : 0)
          // Let the processing fiber get back to its wait (a few tries, for a loaded machine).
          for (let attempt = 0; attempt < 5 && seen[0].deref() !== undefined; attempt++) {
            yield* Effect.sleep("20 millis")
            collectGarbage()
          }
          expect(seen[0].deref()).toBeUndefined()
        }))
    }

    it.scopedLive("5 000 events written before a return are all in history when execute returns", () =>
      Effect.gen(function*() {
        const { client, events, server } = yield* connected()
        const flood = Array.from(
          { length: 5_000 },
          (_, n) => event("JOB_STATUS_CHANGE", { id: `job${n}`, status: "running" })
        )
        // The events and the return, all in one write.
        yield* server.handle(
          "flood",
          (_, ctx) => Effect.zipRight(ctx.connection.send(...flood, { return: {}, id: ctx.command.id }), ctx.noReply)
        )
        const jobs = yield* events.listener("JOB_STATUS_CHANGE")
        const call = yield* Effect.fork(client.executeUnknown("flood"))
        expect((yield* server.nextCommand).command).toBe("flood")
        yield* Fiber.join(call)
        const history = yield* events.events.history
        expect(history.length).toBe(5_000)
        expect(history.map((e) => e.data?.id)).toEqual(flood.map((e) => e.data?.id))
        expect((yield* jobs.history).length).toBe(5_000)
        expect((yield* jobs.clear).length).toBe(5_000)
      }))

    it.scopedLive("a multi-byte character split across two writes decodes correctly", () =>
      Effect.gen(function*() {
        const { client, conn, events, server } = yield* connected()
        yield* server.handle("echo", QmpTestServer.silent)
        const text = "ünïcödé € 𝄞 😀 名前"
        const call = yield* Effect.fork(client.executeUnknown("echo"))
        const command = yield* server.nextCommand
        const bytes = Buffer.from(
          JSON.stringify(event("NAMED", { text })) + "\r\n" +
            JSON.stringify({ return: { text }, id: command.id }) + "\r\n"
        )
        // Split inside the 4-byte encoding of 😀, in the event, and again inside the reply's 名.
        const first = bytes.indexOf(Buffer.from("😀")) + 2
        const second = bytes.lastIndexOf(Buffer.from("名")) + 1
        yield* conn.raw(
          [bytes.subarray(0, first), bytes.subarray(first, second), bytes.subarray(second)],
          { delay: "30 millis" }
        )
        expect(yield* Fiber.join(call)).toEqual({ text })
        const [named] = yield* events.events.history
        expect(named.data).toEqual({ text })
      }))

    it.scopedLive(
      "pauses reading while dispatch falls behind, instead of buffering the flood",
      () =>
        Effect.gen(function*() {
          // A registry that takes 1 ms per 100 events (slower than the client parses them) while the
          // event loop stays free: without flow control the client would read the whole flood into
          // memory while dispatch lags behind.
          const server = yield* QmpTestServer.make()
          yield* server.handle("done", () => Effect.succeed({}))
          const real = yield* QmpEvents.make
          let published = 0
          const slow: QmpEvents.Service = {
            ...real,
            publishAll: (batch) => {
              const events = Array.from(batch)
              return Effect.sleep(Duration.millis(events.length / 100)).pipe(
                Effect.zipRight(real.publishAll(events)),
                Effect.tap(() => Effect.sync(() => published += events.length))
              )
            }
          }
          const client = yield* QmpClient.make(server.address).pipe(
            Effect.provideService(QmpEvents.QmpEvents, slow)
          )
          const conn = yield* server.accept

          const line = JSON.stringify(event("FILL", { pad: "x".repeat(64) })) + "\r\n"
          const block = Buffer.from(line.repeat(Math.floor(32 * 1024 / line.length)))
          const perBlock = block.length / line.length
          const blocks = Math.ceil(12 * MiB / block.length)
          let maxBehind = 0
          yield* conn.pump(block, blocks, {
            onChunk: (n) => {
              // Blocks before the n-th are in the kernel or in the client now: how far behind is publishing?
              maxBehind = Math.max(maxBehind, ((n - 1) * perBlock - published) * line.length)
            }
          })
          // Paused, the client holds a few chunks at most; the kernel holds a few hundred KB more.
          expect(maxBehind).toBeLessThan(3 * MiB)
          // And nothing was lost.
          yield* client.executeUnknown("done")
          expect(published).toBe(blocks * perBlock)
          expect((yield* real.events.history).length).toBe(Math.min(blocks * perBlock, 10_000))
        }),
      { timeout: 20_000 }
    )
  })

  describe("bad input", () => {
    it.scopedLive("a message of unknown shape, a malformed event, a reply with an unknown id: logged and dropped", () => {
      const logs = captureLogs({ minimumLevel: LogLevel.Debug })
      return Effect.gen(function*() {
        const { client, events, server } = yield* connected()
        yield* server.handle("query-status", (_, ctx) =>
          Effect.zipRight(
            ctx.connection.send(
              { hello: "world" },
              { event: "BROKEN", data: {} },
              { return: { status: "stolen" }, id: "nobody-asked" },
              { return: { status: "running" }, id: ctx.command.id }
            ),
            ctx.noReply
          ))
        const call = yield* Effect.fork(client.executeUnknown("query-status"))
        expect(yield* Fiber.join(call)).toEqual({ status: "running" })
        expect(yield* events.events.history).toEqual([])
        expect(logs.messages("WARN")).toEqual([
          "Dropped a message of unknown shape",
          "Dropped a malformed event",
          "Dropped a reply that answers no pending command (unknown id)"
        ])
        expect(String(logs.entries.find((l) => l.message === "Dropped a malformed event")?.annotations.detail))
          .toContain("timestamp")
      }).pipe(Effect.provide(logs.layer))
    })

    it.scopedLive("a malformed reply with a pending call's id fails that call with MalformedReply; the rest goes on", () =>
      Effect.gen(function*() {
        const { client, server } = yield* connected()
        yield* server.handle(
          "query-status",
          (_, ctx) => ctx.replyRaw({ error: { desc: "an error without a class" }, id: ctx.command.id })
        )
        const call = yield* Effect.fork(client.executeUnknown("query-status"))
        const error = yield* Effect.flip(Fiber.join(call))
        expect(error).toMatchObject({ _tag: "QmpProtocolError", reason: "MalformedReply" })
        expect(error.message).toContain("class")
        yield* server.handle("query-status", () => Effect.succeed(1))
        const next = yield* Effect.fork(client.executeUnknown("query-status"))
        expect(yield* Fiber.join(next)).toBe(1)
      }))

    const fatal = (
      name: string,
      line: string,
      reason: "NotJson" | "NotObject"
    ) =>
      it.scopedLive(name, () =>
        Effect.gen(function*() {
          const { client, conn, events, server } = yield* connected()
          yield* server.handle("query-status", (_, ctx) =>
            Effect.zipRight(ctx.connection.raw(line + "\r\n"), ctx.noReply))
          const listener = yield* events.listener()
          yield* server.emit(event("BEFORE"))
          const call = yield* Effect.fork(client.executeUnknown("query-status"))
          expect((yield* server.nextCommand).command).toBe("query-status")
          const error = yield* Effect.flip(Fiber.join(call))
          expect(error).toMatchObject({ _tag: "QmpProtocolError", reason })
          // The listener yields what it holds, then fails with QmpDisconnected.
          expect((yield* listener.take).event).toBe("BEFORE")
          expect(yield* Effect.flip(listener.take)).toMatchObject({ _tag: "QmpDisconnected", reason: "ProtocolError" })
          expect(yield* client.closed).toMatchObject({ _tag: "QmpDisconnected", reason: "ProtocolError" })
          expect(yield* Effect.flip(client.execute("query-status"))).toMatchObject({ _tag: "QmpDisconnected" })
          yield* conn.closed
        }))

    fatal("a garbage line ends the connection with QmpProtocolError NotJson", "this is not json {", "NotJson")
    fatal("JSON that is not an object ends the connection with QmpProtocolError NotObject", "[1,2,3]", "NotObject")
    fatal("a JSON number ends the connection with QmpProtocolError NotObject", "42", "NotObject")

    it.scopedLive(
      "a 64 MiB line without a newline is rejected at maxMessageBytes while RSS grows < 48 MB",
      () =>
        Effect.gen(function*() {
          const { client, conn, events, server } = yield* connected()
          yield* server.handle("query-qmp-schema", QmpTestServer.silent)
          const call = yield* Effect.fork(client.execute("query-qmp-schema"))
          yield* server.nextCommand
          const before = process.memoryUsage().rss
          let peak = before
          const written = yield* conn.writeLongLine(64 * MiB, {
            chunkSize: MiB,
            onChunk: () => {
              peak = Math.max(peak, process.memoryUsage().rss)
            }
          })
          const error = yield* Effect.flip(Fiber.join(call))
          peak = Math.max(peak, process.memoryUsage().rss)
          expect(error).toMatchObject({ _tag: "QmpProtocolError", reason: "MessageTooLarge" })
          expect(error.message).toContain(String(QmpClient.defaultMaxMessageBytes))
          // The client hung up at the limit: the server could not write the rest.
          expect(written).toBeLessThan(2 * QmpClient.defaultMaxMessageBytes)
          expect(peak - before).toBeLessThan(48 * MiB)
          expect(yield* Effect.flip(events.events.take)).toMatchObject({
            _tag: "QmpDisconnected",
            reason: "ProtocolError"
          })
        }),
      { timeout: 20_000 }
    )

    it.scopedLive("a line over a small maxMessageBytes is rejected even when it is complete", () =>
      Effect.gen(function*() {
        const { client, server } = yield* connected({}, { maxMessageBytes: 1024 })
        yield* server.handle("query-status", () => Effect.succeed("y".repeat(2000)))
        const call = yield* Effect.fork(client.execute("query-status"))
        expect((yield* server.nextCommand).command).toBe("query-status")
        expect(yield* Effect.flip(Fiber.join(call))).toMatchObject({
          _tag: "QmpProtocolError",
          reason: "MessageTooLarge"
        })
      }))
  })

  describe("end of the connection", () => {
    it.scopedLive("a hang-up in the middle of a line fails pending calls and ends listeners with QmpDisconnected", () =>
      Effect.gen(function*() {
        const { client, conn, events, server } = yield* connected()
        yield* server.handle("query-status", QmpTestServer.silent)
        const listener = yield* events.listener()
        const call = yield* Effect.fork(client.execute("query-status"))
        const command = yield* server.nextCommand
        yield* server.emit(event("STOP"))
        yield* conn.raw(`{"return": {"status": "runn`)
        yield* conn.hangUp
        const error = yield* Effect.flip(Fiber.join(call))
        expect(error).toMatchObject({ _tag: "QmpDisconnected", reason: "Closed" })
        expect(error.message).toContain("in the middle of a message")
        expect(command.command).toBe("query-status")
        expect(command.message.execute).toBe("query-status")
        expect((yield* listener.take).event).toBe("STOP")
        expect(yield* Effect.flip(listener.take)).toMatchObject({ _tag: "QmpDisconnected", reason: "Closed" })
        expect(yield* Effect.flip(listener.take)).toMatchObject({ _tag: "QmpDisconnected", reason: "Closed" })
      }))

    it.scopedLive("quit succeeds when the server hangs up right after SHUTDOWN, before quit's return", () =>
      Effect.gen(function*() {
        const { client, events, server } = yield* connected()
        yield* server.handle("query-status", QmpTestServer.silent)
        // SHUTDOWN, then the hang-up: quit's return never comes.
        yield* server.handle("quit", (_, ctx) =>
          ctx.emit("SHUTDOWN", { guest: false, reason: "host-qmp-quit" }).pipe(
            Effect.zipRight(ctx.connection.destroy),
            Effect.zipRight(ctx.noReply)
          ))
        const listener = yield* events.listener()
        const other = yield* Effect.fork(client.execute("query-status"))
        yield* server.nextCommand
        const quit = yield* Effect.fork(client.execute("quit"))
        expect((yield* server.nextCommand).command).toBe("quit")
        expect(yield* Fiber.join(quit)).toEqual({})
        expect(yield* Effect.flip(Fiber.join(other))).toMatchObject({ _tag: "QmpDisconnected" })
        expect((yield* listener.take).event).toBe("SHUTDOWN")
        expect(yield* Effect.flip(listener.take)).toMatchObject({ _tag: "QmpDisconnected" })
      }))

    it.scopedLive("a write after the server hung up fails with QmpDisconnected instead of hanging", () =>
      Effect.gen(function*() {
        const { client, conn } = yield* connected()
        yield* conn.destroy
        // Right away, before the client may have noticed, and after it has.
        const first = yield* Effect.flip(client.execute("query-status"))
        expect(first).toMatchObject({ _tag: "QmpDisconnected" })
        // A clean end of stream ("Closed"), or EPIPE on that write ("Lost"): the race decides.
        const closed = yield* client.closed
        expect(["Closed", "Lost"]).toContain(closed.reason)
        // The very same reason. (An error failed inside a span, as `execute`'s, reaches the caller wrapped in
        // Effect's span-capturing Proxy: compare the instance inside.)
        expect(original(yield* Effect.flip(client.execute("query-status")))).toBe(closed)
      }))

    it.scopedLive("disconnect fails pending calls and ends listeners with QmpDisconnected Disconnected", () =>
      Effect.gen(function*() {
        const { client, conn, events, server } = yield* connected()
        yield* server.handle("query-status", QmpTestServer.silent)
        const listener = yield* events.listener()
        yield* server.emit(event("STOP"))
        const call = yield* Effect.fork(client.execute("query-status"))
        yield* server.nextCommand
        yield* client.disconnect
        expect(yield* Effect.flip(Fiber.join(call))).toMatchObject({ _tag: "QmpDisconnected", reason: "Disconnected" })
        expect((yield* listener.take).event).toBe("STOP")
        expect(yield* Effect.flip(listener.take)).toMatchObject({ _tag: "QmpDisconnected", reason: "Disconnected" })
        expect(yield* Effect.flip(client.execute("query-status"))).toMatchObject({ reason: "Disconnected" })
        yield* conn.closed
        yield* client.disconnect
      }))

    it.scopedLive("closing the client's scope disconnects; a registry that outlives it ends its listeners", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make()
        const events = yield* QmpEvents.make
        const listener = yield* EventListener.make()
        yield* events.register(listener)
        const fiber = yield* QmpClient.make(server.address).pipe(
          Effect.provideService(QmpEvents.QmpEvents, events),
          Effect.scoped,
          Effect.fork
        )
        const conn = yield* server.accept
        yield* Fiber.join(fiber)
        expect(yield* conn.negotiated).toBe(true)
        yield* conn.closed
        expect(yield* Effect.flip(listener.take)).toMatchObject({ _tag: "QmpDisconnected", reason: "Disconnected" })
      }))

    it.scopedLive("the layer provides QmpClient and QmpEvents; listeners hear events through Stream", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make()
        const program = Effect.gen(function*() {
          const client = yield* QmpClient.QmpClient
          const events = yield* QmpEvents.QmpEvents
          const listener = yield* events.listener(["STOP", "RESUME"])
          yield* client.execute("stop")
          yield* client.execute("cont")
          return yield* listener.stream.pipe(Stream.take(2), Stream.runCollect)
        }).pipe(Effect.scoped, Effect.provide(QmpClient.layer(server.address)))
        const fiber = yield* Effect.fork(program)
        const conn = yield* server.accept
        // The server's stop and cont emit STOP and RESUME before their return, as QEMU.
        const events = yield* Fiber.join(fiber)
        expect(Chunk.toReadonlyArray(events).map((e) => e.event)).toEqual(["STOP", "RESUME"])
        expect((yield* server.commands).map((c) => c.command)).toEqual(["qmp_capabilities", "stop", "cont"])
        yield* conn.closed
      }))

    it.scopedLive("executeOob after the server hung up fails fast with QmpDisconnected", () =>
      Effect.gen(function*() {
        const { client, conn } = yield* connected()
        yield* conn.hangUp
        const exit = yield* Effect.exit(client.closed)
        expect(Exit.isSuccess(exit)).toBe(true)
        const result = yield* Effect.either(client.executeOob("query-yank"))
        expect(Either.isLeft(result) && result.left._tag).toBe("QmpDisconnected")
      }))
  })

  describe("options a fleet uses", () => {
    it.scopedLive("endRegistry: false leaves the registry open when the connection ends; a later connection feeds it", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make()
        const events = yield* QmpEvents.make
        const listener = yield* events.listener("STOP")
        const first = yield* QmpClient.make(server.address, { endRegistry: false }).pipe(
          Effect.provideService(QmpEvents.QmpEvents, events)
        )
        yield* first.execute("stop")
        yield* first.disconnect
        expect(yield* first.closed).toMatchObject({ reason: "Disconnected" })
        // Still open: it yields what it holds, then waits rather than failing.
        expect((yield* listener.take).event).toBe("STOP")
        expect(yield* listener.poll).toEqual(Option.none())
        const second = yield* QmpClient.make(server.address, { endRegistry: false }).pipe(
          Effect.provideService(QmpEvents.QmpEvents, events)
        )
        yield* second.execute("cont")
        yield* second.execute("stop")
        expect((yield* listener.take).event).toBe("STOP")
      }))

    it.scoped("commandTimeouts: a command's own timeout in place of commandTimeout; a call's timeout first", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.QmpTestServer
        yield* server.handle("blockdev-add", QmpTestServer.silent)
        yield* server.handle("slow", QmpTestServer.silent)
        const client = yield* QmpClient.QmpClient
        const add = yield* Effect.fork(client.executeUnknown("blockdev-add"))
        const slow = yield* Effect.fork(client.executeUnknown("slow"))
        const own = yield* Effect.fork(client.executeUnknown("blockdev-add", {}, { timeout: "1 second" }))
        for (let i = 0; i < 3; i++) yield* server.nextCommand
        yield* TestClock.adjust("500 millis")
        expect(yield* Effect.flip(Fiber.join(slow))).toMatchObject({ _tag: "QmpTimeoutError", timeout: "500ms" })
        yield* TestClock.adjust("500 millis")
        expect(yield* Effect.flip(Fiber.join(own))).toMatchObject({ _tag: "QmpTimeoutError", timeout: "1s" })
        yield* TestClock.adjust("28999 millis")
        expect(add.unsafePoll()).toBeNull()
        yield* TestClock.adjust("1 millis")
        expect(yield* Effect.flip(Fiber.join(add))).toMatchObject({ _tag: "QmpTimeoutError", timeout: "30s" })
      }).pipe(
        Effect.provide(
          QmpTestServer.layerWithClient({}, {
            commandTimeout: "500 millis",
            commandTimeouts: { "blockdev-add": "30 seconds" }
          })
        )
      ))

    it.scopedLive("metricTags: the connection's metrics carry them beside its address", () =>
      Effect.gen(function*() {
        const { client, server } = yield* connect({}, { metricTags: { vm: "tagged-vm" } })
        const address = QmpAddress.format(server.address)
        const received = QmpMetrics.eventsReceived.pipe(
          Metric.tagged("address", address),
          Metric.tagged("vm", "tagged-vm")
        )
        yield* client.execute("stop")
        yield* client.execute("cont")
        expect((yield* Metric.value(received)).count).toBe(2)
      }))
  })
})
