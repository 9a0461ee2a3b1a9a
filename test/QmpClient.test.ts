/**
 * QmpClient against a scripted server in this process: what real QEMU will not do on demand (floods,
 * bad input, hang-ups at awkward moments, silence). The real-QEMU suite is in test/qemu/.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Either, Exit, Fiber, Layer, Logger, LogLevel, Stream } from "effect"
import * as Net from "node:net"
import * as Path from "node:path"
import { EventListener, QmpClient, QmpEvents, QmpMessage } from "../src/index.js"
import * as ScriptedServer from "./support/ScriptedServer.js"

const MiB = 1024 * 1024

interface Connected {
  readonly server: ScriptedServer.Server
  readonly conn: ScriptedServer.Connection
  readonly client: QmpClient.Service
  readonly events: QmpEvents.Service
  readonly negotiation: Record<string, any>
}

/** A scripted server, a registry, and a client connected to it through a handshake. */
const connect = (options: QmpClient.Options & { readonly capabilities?: ReadonlyArray<string> } = {}) =>
  Effect.gen(function*() {
    const server = yield* ScriptedServer.make
    const events = yield* QmpEvents.make
    const fiber = yield* QmpClient.make(server.address, options).pipe(
      Effect.provideService(QmpEvents.QmpEvents, events),
      Effect.fork
    )
    const conn = yield* server.accept
    const negotiation = yield* ScriptedServer.handshake(conn, options.capabilities)
    const client = yield* Fiber.join(fiber)
    return { server, conn, client, events, negotiation } satisfies Connected
  })

/** Connecting to `server` without a handshake: the test scripts the server. */
const attempt = (address: QmpClient.Service["address"], options: QmpClient.Options = {}) =>
  Effect.gen(function*() {
    const events = yield* QmpEvents.make
    const fiber = yield* QmpClient.make(address, options).pipe(
      Effect.provideService(QmpEvents.QmpEvents, events),
      Effect.fork
    )
    return { fiber, events }
  })

interface LogEntry {
  readonly level: string
  readonly message: string
  readonly annotations: Record<string, unknown>
}

/** Runs `effect` with every log line (debug and up) collected into `logs`. */
const withLogs = <A, E, R>(f: (logs: Array<LogEntry>) => Effect.Effect<A, E, R>) => {
  const logs: Array<LogEntry> = []
  const collector = Logger.make(({ annotations, logLevel, message }) => {
    logs.push({
      level: logLevel.label,
      message: (Array.isArray(message) ? message : [message]).map(String).join(" "),
      annotations: Object.fromEntries(annotations)
    })
  })
  return f(logs).pipe(
    Effect.provide(Layer.merge(Logger.replace(Logger.defaultLogger, collector), Logger.minimumLogLevel(LogLevel.Debug)))
  )
}

describe("QmpClient (scripted server)", () => {
  describe("connecting", () => {
    it.scopedLive("reads the greeting and enables oob when it is offered", () =>
      Effect.gen(function*() {
        const { client, negotiation } = yield* connect()
        expect(negotiation).toMatchObject({ execute: "qmp_capabilities", arguments: { enable: ["oob"] } })
        expect(typeof negotiation.id).toBe("string")
        expect(client.oob).toBe(true)
        expect(client.greeting).toEqual(ScriptedServer.greeting(["oob"]))
      }))

    it.scopedLive("does not ask for oob when the greeting does not offer it", () =>
      Effect.gen(function*() {
        const { client, negotiation } = yield* connect({ capabilities: [] })
        expect(negotiation.arguments).toBeUndefined()
        expect(client.oob).toBe(false)
      }))

    it.scopedLive("a missing socket fails at once with QmpConnectError NotFound, naming the address", () =>
      Effect.gen(function*() {
        const server = yield* ScriptedServer.make
        const address = { path: Path.join(server.dir, "missing.sock") }
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

    it.scopedLive("a server that never greets fails with QmpConnectError NoGreeting within connectTimeout", () =>
      Effect.gen(function*() {
        const server = yield* ScriptedServer.make
        const started = Date.now()
        const { fiber } = yield* attempt(server.address, { connectTimeout: "300 millis" })
        const conn = yield* server.accept
        const error = yield* Effect.flip(Fiber.join(fiber))
        const elapsed = Date.now() - started
        expect(error).toMatchObject({ _tag: "QmpConnectError", reason: "NoGreeting" })
        expect(error.message).toContain("another client probably holds this QMP socket")
        expect(elapsed).toBeLessThan(300 + 2_000)
        // The failed attempt let go of the socket at once.
        yield* conn.closed
      }))

    it.scopedLive("a greeting that is not QMP fails with QmpNegotiationError BadGreeting; the registry is not ended", () =>
      Effect.gen(function*() {
        const server = yield* ScriptedServer.make
        const { events, fiber } = yield* attempt(server.address)
        const listener = yield* events.listener()
        const conn = yield* server.accept
        yield* conn.send({ hello: "world" })
        const error = yield* Effect.flip(Fiber.join(fiber))
        expect(error).toMatchObject({ _tag: "QmpNegotiationError", reason: "BadGreeting" })
        expect(error.message).toContain("QMP")
        yield* conn.closed
        // A failed connect never ends the registry it was given.
        yield* events.publish(QmpMessage.makeEvent("STILL_OPEN"))
        expect((yield* listener.take).event).toBe("STILL_OPEN")
      }))

    it.scopedLive("a greeting that is not JSON fails with QmpNegotiationError BadGreeting", () =>
      Effect.gen(function*() {
        const server = yield* ScriptedServer.make
        const { fiber } = yield* attempt(server.address)
        const conn = yield* server.accept
        yield* conn.write("SSH-2.0-OpenSSH_9.2\r\n")
        const error = yield* Effect.flip(Fiber.join(fiber))
        expect(error).toMatchObject({ _tag: "QmpNegotiationError", reason: "BadGreeting" })
        expect(error.message).toContain("not JSON")
      }))

    it.scopedLive("a server that hangs up before greeting fails with QmpConnectError Closed", () =>
      Effect.gen(function*() {
        const server = yield* ScriptedServer.make
        const { fiber } = yield* attempt(server.address)
        const conn = yield* server.accept
        yield* conn.end
        const error = yield* Effect.flip(Fiber.join(fiber))
        expect(error).toMatchObject({ _tag: "QmpConnectError", reason: "Closed" })
      }))

    it.scopedLive("a refused qmp_capabilities fails with QmpNegotiationError Refused", () =>
      Effect.gen(function*() {
        const server = yield* ScriptedServer.make
        const { fiber } = yield* attempt(server.address)
        const conn = yield* server.accept
        yield* conn.send(ScriptedServer.greeting())
        const negotiation = yield* conn.receive
        yield* conn.send({ error: { class: "GenericError", desc: "not today" }, id: negotiation.id })
        const error = yield* Effect.flip(Fiber.join(fiber))
        expect(error).toMatchObject({ _tag: "QmpNegotiationError", reason: "Refused" })
        expect(error.message).toContain("GenericError: not today")
      }))
  })

  describe("commands", () => {
    it.scopedLive("correlates concurrent calls by id, whatever the order of the replies", () =>
      Effect.gen(function*() {
        const { client, conn } = yield* connect()
        const calls = yield* Effect.forEach(
          ["a", "b", "c"],
          (name) => Effect.fork(client.execute(`cmd-${name}`, { name })),
          { concurrency: "unbounded" }
        )
        const received = [yield* conn.receive, yield* conn.receive, yield* conn.receive]
        expect(new Set(received.map((m) => m.id)).size).toBe(3)
        // Answer in reverse order, all in one write.
        yield* conn.send(...received.reverse().map((m) => ({ return: { echo: m.arguments.name }, id: m.id })))
        const results = yield* Effect.forEach(calls, Fiber.join)
        expect(results).toEqual([{ echo: "a" }, { echo: "b" }, { echo: "c" }])
      }))

    it.scopedLive("QEMU's error reply fails the call with QmpExecuteError; the connection stays usable", () =>
      Effect.gen(function*() {
        const { client, conn } = yield* connect()
        const call = yield* Effect.fork(client.execute("nope"))
        const command = yield* conn.receive
        yield* conn.send({
          error: { class: "CommandNotFound", desc: "The command nope has not been found" },
          id: command.id
        })
        const error = yield* Effect.flip(Fiber.join(call))
        expect(error).toMatchObject({ _tag: "QmpExecuteError", command: "nope", errorClass: "CommandNotFound" })
        const next = yield* Effect.fork(client.execute("query-status"))
        yield* conn.send({ return: { status: "running" }, id: (yield* conn.receive).id })
        expect(yield* Fiber.join(next)).toEqual({ status: "running" })
      }))

    it.scopedLive("executeOob writes exec-oob with an id", () =>
      Effect.gen(function*() {
        const { client, conn } = yield* connect()
        const call = yield* Effect.fork(client.executeOob("query-yank"))
        const command = yield* conn.receive
        expect(command).toMatchObject({ "exec-oob": "query-yank" })
        yield* conn.send({ return: [], id: command.id })
        expect(yield* Fiber.join(call)).toEqual([])
      }))

    it.scopedLive("a late reply after QmpTimeoutError is dropped without disturbing later calls", () =>
      withLogs((logs) =>
        Effect.gen(function*() {
          const { client, conn } = yield* connect()
          const slow = yield* Effect.fork(client.execute("slow", undefined, { timeout: "200 millis" }))
          const slowCommand = yield* conn.receive
          const error = yield* Effect.flip(Fiber.join(slow))
          expect(error).toMatchObject({ _tag: "QmpTimeoutError", command: "slow", timeout: "200ms" })
          expect(error.message).toContain("may still complete")

          const next = yield* Effect.fork(client.execute("next"))
          const nextCommand = yield* conn.receive
          // The late reply first, then the reply to the next call.
          yield* conn.send({ return: "late", id: slowCommand.id }, { return: "mine", id: nextCommand.id })
          expect(yield* Fiber.join(next)).toBe("mine")
          expect(logs.some((l) => l.level === "DEBUG" && l.message.includes("late reply"))).toBe(true)
          expect(logs.filter((l) => l.level === "WARN")).toEqual([])
        })
      ))

    it.scopedLive("an interrupted call's late reply is dropped too", () =>
      Effect.gen(function*() {
        const { client, conn } = yield* connect()
        const call = yield* Effect.fork(client.execute("abandoned"))
        const command = yield* conn.receive
        yield* Fiber.interrupt(call)
        const next = yield* Effect.fork(client.execute("next"))
        const nextCommand = yield* conn.receive
        yield* conn.send({ return: "late", id: command.id }, { return: "mine", id: nextCommand.id })
        expect(yield* Fiber.join(next)).toBe("mine")
      }))

    it.scopedLive("200 concurrent calls each get their own reply", () =>
      Effect.gen(function*() {
        const { client, conn } = yield* connect()
        const calls = yield* Effect.fork(
          Effect.forEach(
            Array.from({ length: 200 }, (_, i) => i),
            (i) => client.execute("echo", { i }),
            { concurrency: "unbounded" }
          )
        )
        const commands = yield* Effect.forEach(Array.from({ length: 200 }), () => conn.receive)
        // Shuffle the replies.
        commands.sort((a, b) => ((a.arguments.i * 7919) % 200) - ((b.arguments.i * 7919) % 200))
        yield* conn.send(...commands.map((m) => ({ return: m.arguments.i, id: m.id })))
        expect(yield* Fiber.join(calls)).toEqual(Array.from({ length: 200 }, (_, i) => i))
      }))
  })

  describe("events", () => {
    it.scopedLive("an event sent before a return is in every listener when execute returns (separate chunks)", () =>
      Effect.gen(function*() {
        const { client, conn, events } = yield* connect()
        const stops = yield* events.listener("STOP")
        const all = yield* events.listener()
        const call = yield* Effect.fork(client.execute("stop"))
        const command = yield* conn.receive
        yield* conn.send(ScriptedServer.event("STOP"))
        yield* Effect.sleep("30 millis")
        yield* conn.send({ return: {}, id: command.id })
        yield* Fiber.join(call)
        expect(yield* stops.isEmpty).toBe(false)
        expect(yield* all.isEmpty).toBe(false)
        expect((yield* events.events.history).map((e) => e.event)).toEqual(["STOP"])
      }))

    it.scopedLive("5 000 events written before a return are all in history when execute returns", () =>
      Effect.gen(function*() {
        const { client, conn, events } = yield* connect()
        const jobs = yield* events.listener("JOB_STATUS_CHANGE")
        const call = yield* Effect.fork(client.execute("flood"))
        const command = yield* conn.receive
        const flood = Array.from(
          { length: 5_000 },
          (_, n) => ScriptedServer.event("JOB_STATUS_CHANGE", { id: `job${n}`, status: "running" })
        )
        yield* conn.send(...flood, { return: {}, id: command.id })
        yield* Fiber.join(call)
        const history = yield* events.events.history
        expect(history.length).toBe(5_000)
        expect(history.map((e) => e.data?.id)).toEqual(flood.map((e) => e.data?.id))
        expect((yield* jobs.history).length).toBe(5_000)
        expect((yield* jobs.clear).length).toBe(5_000)
      }))

    it.scopedLive("a multi-byte character split across two writes decodes correctly", () =>
      Effect.gen(function*() {
        const { client, conn, events } = yield* connect()
        const text = "ünïcödé € 𝄞 😀 名前"
        const call = yield* Effect.fork(client.execute("echo"))
        const command = yield* conn.receive
        const bytes = Buffer.from(
          JSON.stringify(ScriptedServer.event("NAMED", { text })) + "\r\n" +
            JSON.stringify({ return: { text }, id: command.id }) + "\r\n"
        )
        // Split inside the 4-byte encoding of 😀, in the event, and again inside the reply's 名.
        const first = bytes.indexOf(Buffer.from("😀")) + 2
        const second = bytes.lastIndexOf(Buffer.from("名")) + 1
        yield* conn.write(bytes.subarray(0, first))
        yield* Effect.sleep("30 millis")
        yield* conn.write(bytes.subarray(first, second))
        yield* Effect.sleep("30 millis")
        yield* conn.write(bytes.subarray(second))
        expect(yield* Fiber.join(call)).toEqual({ text })
        const [event] = yield* events.events.history
        expect(event.data).toEqual({ text })
      }))

    it.scopedLive(
      "pauses reading while dispatch falls behind, instead of buffering the flood",
      () =>
        Effect.gen(function*() {
          // A registry that takes 1 ms per 100 events (slower than the client parses them) while the
          // event loop stays free: without flow control the client would read the whole flood into
          // memory while dispatch lags behind.
          const server = yield* ScriptedServer.make
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
          const fiber = yield* QmpClient.make(server.address).pipe(
            Effect.provideService(QmpEvents.QmpEvents, slow),
            Effect.fork
          )
          const conn = yield* server.accept
          yield* ScriptedServer.handshake(conn)
          const client = yield* Fiber.join(fiber)

          const line = JSON.stringify(ScriptedServer.event("FILL", { pad: "x".repeat(64) })) + "\r\n"
          const block = Buffer.from(line.repeat(Math.floor(32 * 1024 / line.length)))
          const perBlock = block.length / line.length
          const blocks = Math.ceil(12 * MiB / block.length)
          let maxBehind = 0
          yield* ScriptedServer.pump(conn, block, blocks, (n) => {
            // Blocks before the n-th are in the kernel or in the client now: how far behind is publishing?
            maxBehind = Math.max(maxBehind, ((n - 1) * perBlock - published) * line.length)
          })
          // Paused, the client holds a few chunks at most; the kernel holds a few hundred KB more.
          expect(maxBehind).toBeLessThan(3 * MiB)
          // And nothing was lost.
          const call = yield* Effect.fork(client.execute("done"))
          yield* conn.send({ return: {}, id: (yield* conn.receive).id })
          yield* Fiber.join(call)
          expect(published).toBe(blocks * perBlock)
          expect((yield* real.events.history).length).toBe(Math.min(blocks * perBlock, 10_000))
        }),
      { timeout: 20_000 }
    )
  })

  describe("bad input", () => {
    it.scopedLive("a message of unknown shape, a malformed event, a reply with an unknown id: logged and dropped", () =>
      withLogs((logs) =>
        Effect.gen(function*() {
          const { client, conn, events } = yield* connect()
          const call = yield* Effect.fork(client.execute("query-status"))
          const command = yield* conn.receive
          yield* conn.send(
            { hello: "world" },
            { event: "BROKEN", data: {} },
            { return: { status: "stolen" }, id: "nobody-asked" },
            { return: { status: "running" }, id: command.id }
          )
          expect(yield* Fiber.join(call)).toEqual({ status: "running" })
          expect(yield* events.events.history).toEqual([])
          const warnings = logs.filter((l) => l.level === "WARN").map((l) => l.message)
          expect(warnings).toEqual([
            "Dropped a message of unknown shape",
            "Dropped a malformed event",
            "Dropped a reply that answers no pending command (unknown id)"
          ])
          expect(String(logs.find((l) => l.message === "Dropped a malformed event")?.annotations.detail))
            .toContain("timestamp")
        })
      ))

    it.scopedLive("a malformed reply with a pending call's id fails that call with MalformedReply; the rest goes on", () =>
      Effect.gen(function*() {
        const { client, conn } = yield* connect()
        const call = yield* Effect.fork(client.execute("query-status"))
        const command = yield* conn.receive
        yield* conn.send({ error: { desc: "an error without a class" }, id: command.id })
        const error = yield* Effect.flip(Fiber.join(call))
        expect(error).toMatchObject({ _tag: "QmpProtocolError", reason: "MalformedReply" })
        expect(error.message).toContain("class")
        const next = yield* Effect.fork(client.execute("query-status"))
        yield* conn.send({ return: 1, id: (yield* conn.receive).id })
        expect(yield* Fiber.join(next)).toBe(1)
      }))

    const fatal = (
      name: string,
      line: string,
      reason: "NotJson" | "NotObject"
    ) =>
      it.scopedLive(name, () =>
        Effect.gen(function*() {
          const { client, conn, events } = yield* connect()
          const listener = yield* events.listener()
          yield* conn.send(ScriptedServer.event("BEFORE"))
          const call = yield* Effect.fork(client.execute("query-status"))
          yield* conn.receive
          yield* conn.write(line + "\r\n")
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
          const { client, conn, events } = yield* connect()
          const call = yield* Effect.fork(client.execute("query-qmp-schema"))
          yield* conn.receive
          const before = process.memoryUsage().rss
          let peak = before
          const written = yield* ScriptedServer.writeDrained(conn, 64 * MiB, MiB, () => {
            peak = Math.max(peak, process.memoryUsage().rss)
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
        const { client, conn } = yield* connect({ maxMessageBytes: 1024 })
        const call = yield* Effect.fork(client.execute("query-status"))
        const command = yield* conn.receive
        yield* conn.send({ return: "y".repeat(2000), id: command.id })
        expect(yield* Effect.flip(Fiber.join(call))).toMatchObject({
          _tag: "QmpProtocolError",
          reason: "MessageTooLarge"
        })
      }))
  })

  describe("end of the connection", () => {
    it.scopedLive("a hang-up in the middle of a line fails pending calls and ends listeners with QmpDisconnected", () =>
      Effect.gen(function*() {
        const { client, conn, events } = yield* connect()
        const listener = yield* events.listener()
        const call = yield* Effect.fork(client.execute("query-status"))
        const command = yield* conn.receive
        yield* conn.send(ScriptedServer.event("STOP"))
        yield* conn.write(`{"return": {"status": "runn`)
        yield* conn.end
        const error = yield* Effect.flip(Fiber.join(call))
        expect(error).toMatchObject({ _tag: "QmpDisconnected", reason: "Closed" })
        expect(error.message).toContain("in the middle of a message")
        expect(command.execute).toBe("query-status")
        expect((yield* listener.take).event).toBe("STOP")
        expect(yield* Effect.flip(listener.take)).toMatchObject({ _tag: "QmpDisconnected", reason: "Closed" })
        expect(yield* Effect.flip(listener.take)).toMatchObject({ _tag: "QmpDisconnected", reason: "Closed" })
      }))

    it.scopedLive("quit succeeds when the server hangs up right after SHUTDOWN, before quit's return", () =>
      Effect.gen(function*() {
        const { client, conn, events } = yield* connect()
        const listener = yield* events.listener()
        const other = yield* Effect.fork(client.execute("query-status"))
        yield* conn.receive
        const quit = yield* Effect.fork(client.execute("quit"))
        expect((yield* conn.receive).execute).toBe("quit")
        yield* conn.send(ScriptedServer.event("SHUTDOWN", { guest: false, reason: "host-qmp-quit" }))
        yield* conn.destroy
        expect(yield* Fiber.join(quit)).toEqual({})
        expect(yield* Effect.flip(Fiber.join(other))).toMatchObject({ _tag: "QmpDisconnected" })
        expect((yield* listener.take).event).toBe("SHUTDOWN")
        expect(yield* Effect.flip(listener.take)).toMatchObject({ _tag: "QmpDisconnected" })
      }))

    it.scopedLive("a write after the server hung up fails with QmpDisconnected instead of hanging", () =>
      Effect.gen(function*() {
        const { client, conn } = yield* connect()
        yield* conn.destroy
        // Right away, before the client may have noticed, and after it has.
        const first = yield* Effect.flip(client.execute("query-status"))
        expect(first).toMatchObject({ _tag: "QmpDisconnected" })
        // A clean end of stream ("Closed"), or EPIPE on that write ("Lost"): the race decides.
        const closed = yield* client.closed
        expect(["Closed", "Lost"]).toContain(closed.reason)
        expect(yield* Effect.flip(client.execute("query-status"))).toBe(closed)
      }))

    it.scopedLive("disconnect fails pending calls and ends listeners with QmpDisconnected Disconnected", () =>
      Effect.gen(function*() {
        const { client, conn, events } = yield* connect()
        const listener = yield* events.listener()
        yield* conn.send(ScriptedServer.event("STOP"))
        const call = yield* Effect.fork(client.execute("query-status"))
        yield* conn.receive
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
        const server = yield* ScriptedServer.make
        const events = yield* QmpEvents.make
        const listener = yield* EventListener.make()
        yield* events.register(listener)
        const fiber = yield* QmpClient.make(server.address).pipe(
          Effect.provideService(QmpEvents.QmpEvents, events),
          Effect.scoped,
          Effect.fork
        )
        const conn = yield* server.accept
        yield* ScriptedServer.handshake(conn)
        yield* Fiber.join(fiber)
        yield* conn.closed
        expect(yield* Effect.flip(listener.take)).toMatchObject({ _tag: "QmpDisconnected", reason: "Disconnected" })
      }))

    it.scopedLive("the layer provides QmpClient and QmpEvents; listeners hear events through Stream", () =>
      Effect.gen(function*() {
        const server = yield* ScriptedServer.make
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
        yield* ScriptedServer.handshake(conn)
        for (const name of ["STOP", "RESUME"]) {
          const command = yield* conn.receive
          yield* conn.send(ScriptedServer.event(name), { return: {}, id: command.id })
        }
        const events = yield* Fiber.join(fiber)
        expect(Chunk.toReadonlyArray(events).map((e) => e.event)).toEqual(["STOP", "RESUME"])
        yield* conn.closed
      }))

    it.scopedLive("executeOob after the server hung up fails fast with QmpDisconnected", () =>
      Effect.gen(function*() {
        const { client, conn } = yield* connect()
        yield* conn.end
        const exit = yield* Effect.exit(client.closed)
        expect(Exit.isSuccess(exit)).toBe(true)
        const result = yield* Effect.either(client.executeOob("query-yank"))
        expect(Either.isLeft(result) && result.left._tag).toBe("QmpDisconnected")
      }))
  })
})
