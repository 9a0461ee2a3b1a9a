/**
 * QmpTestServer itself: through the real QmpClient, and through a raw socket where the client
 * would hide what is on the wire (the negotiation gate, the order of lines, raw faults).
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Logger, LogLevel, Option, Queue, Ref, TestClock } from "effect"
import type { Scope } from "effect"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { StringDecoder } from "node:string_decoder"
import { QmpClient, QmpEvents, QmpMessage } from "../src/index.js"
import type { QmpAddress, QmpError } from "../src/index.js"
import * as QmpTestServer from "../src/testing/QmpTestServer.js"
import { backup, nullNodes } from "./support/blockdev.js"
import { clientOf, connect } from "./support/connect.js"
import { names } from "./support/registry.js"

const MiB = 1024 * 1024

/** A raw socket client: what it reads goes to queues (never asserted in the socket's callbacks). */
interface Raw {
  /** The next line read, as text (without its `\r\n`). */
  readonly line: Effect.Effect<string>
  /** The next line read, parsed. */
  readonly next: Effect.Effect<any>
  /** The next line, or `None` if none comes within `millis`. */
  readonly poll: (millis: number) => Effect.Effect<Option.Option<any>>
  readonly write: (text: string) => Effect.Effect<void>
  /** Writes a message as a JSON line and gives the next line read. */
  readonly exchange: (message: unknown) => Effect.Effect<any>
  /** Every chunk read so far. */
  readonly chunks: Effect.Effect<ReadonlyArray<Buffer>>
  /** Completes when the server ended the stream. */
  readonly ended: Effect.Effect<void>
  readonly socket: Net.Socket
}

const rawConnect = (address: QmpAddress.QmpAddress): Effect.Effect<Raw, never, Scope.Scope> =>
  Effect.gen(function*() {
    const lines = yield* Queue.unbounded<string>()
    const ended = yield* Deferred.make<void>()
    const chunks: Array<Buffer> = []
    const socket = yield* Effect.acquireRelease(
      Effect.async<Net.Socket>((resume) => {
        const socket = "path" in address ?
          Net.createConnection({ path: address.path }) :
          Net.createConnection({ host: address.host, port: address.port })
        socket.once("connect", () => resume(Effect.succeed(socket)))
        socket.once("error", (error) => resume(Effect.die(error)))
      }),
      (socket) => Effect.sync(() => socket.destroy())
    )
    const decoder = new StringDecoder("utf8")
    let buffer = ""
    socket.on("error", () => {})
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk)
      buffer += decoder.write(chunk)
      for (let newline = buffer.indexOf("\n"); newline !== -1; newline = buffer.indexOf("\n")) {
        lines.unsafeOffer(buffer.slice(0, newline).replace(/\r$/, ""))
        buffer = buffer.slice(newline + 1)
      }
    })
    socket.on("end", () => Deferred.unsafeDone(ended, Exit.void))
    socket.on("close", () => Deferred.unsafeDone(ended, Exit.void))
    const write = (text: string) => Effect.async<void>((resume) => void socket.write(text, () => resume(Effect.void)))
    const next = Effect.map(Queue.take(lines), (line) => JSON.parse(line))
    return {
      line: Queue.take(lines),
      next,
      poll: (millis) => Effect.timeoutOption(next, millis),
      write,
      exchange: (message) => Effect.zipRight(write(JSON.stringify(message) + "\n"), next),
      chunks: Effect.sync(() => chunks.slice()),
      ended: Deferred.await(ended),
      socket
    }
  })

/** A raw client that has read the greeting and negotiated (with oob). */
const rawNegotiated = (address: QmpAddress.QmpAddress) =>
  Effect.gen(function*() {
    const raw = yield* rawConnect(address)
    yield* raw.next
    expect(yield* raw.exchange({ execute: "qmp_capabilities", arguments: { enable: ["oob"] } })).toEqual({ return: {} })
    return raw
  })

const statuses = (events: ReadonlyArray<QmpMessage.QmpEvent>) =>
  events.filter((e) => e.event === "JOB_STATUS_CHANGE").map((e) => e.data?.status)

/** Polls `effect` every 10 ms until `done` holds for its value (or the test times out). */
const until = <A, E>(effect: Effect.Effect<A, E>, done: (a: A) => boolean): Effect.Effect<A, E> =>
  Effect.flatMap(effect, (a) => done(a) ? Effect.succeed(a) : Effect.zipRight(Effect.sleep(10), until(effect, done)))

/**
 * A client and a backup job that keeps running (64 MiB at 1 MiB/s) on the server, with a listener
 * for every event from the moment the job runs on.
 */
const runningJob = (jobId: string) =>
  Effect.gen(function*() {
    const { client, events, server } = yield* connect()
    const nodes = yield* nullNodes(client, { size: 64 * MiB })
    yield* backup(client, jobId, nodes, { speed: MiB })
    return { client, events, server, listener: yield* events.listener() }
  })

/** The QmpExecuteError an execute fails with (anything else is a defect). */
const refusal = <A>(effect: Effect.Effect<A, QmpClient.ExecuteError>): Effect.Effect<QmpError.QmpExecuteError> =>
  Effect.flatMap(Effect.either(effect), (result) =>
    result._tag === "Left" && result.left._tag === "QmpExecuteError" ?
      Effect.succeed(result.left) :
      Effect.dieMessage(`expected a QmpExecuteError, got ${result._tag === "Left" ? result.left._tag : "a success"}`))

describe("QmpTestServer", () => {
  describe("greeting and negotiation", () => {
    it.scopedLive("greets as QEMU 7.2 does, offering oob, in QEMU's key order and spacing", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make()
        const raw = yield* rawConnect(server.address)
        const line = yield* raw.line
        expect(line).toBe(
          "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, " +
            "\"package\": \"effect-qmp QmpTestServer\"}, \"capabilities\": [\"oob\"]}}"
        )
        expect(Buffer.concat(yield* raw.chunks).toString()).toBe(line + "\r\n")
        expect(server.greeting).toEqual(JSON.parse(line))
        // The client reads the same, and enables oob.
        const { client } = yield* clientOf((yield* QmpTestServer.make()).address)
        expect(client.greeting).toEqual(JSON.parse(line))
        expect(client.oob).toBe(true)
      }))

    it.scopedLive("the version, package and capabilities are options", () =>
      Effect.gen(function*() {
        const { client } = yield* connect({
          version: { major: 8, minor: 1, micro: 3 },
          package: "v8.1.3",
          capabilities: []
        })
        expect(client.greeting.QMP).toEqual({
          version: { qemu: { major: 8, minor: 1, micro: 3 }, package: "v8.1.3" },
          capabilities: []
        })
        expect(client.oob).toBe(false)
        expect(yield* client.execute("query-version")).toEqual({
          qemu: { major: 8, minor: 1, micro: 3 },
          package: "v8.1.3"
        })
      }))

    it.scopedLive("gates every command behind qmp_capabilities, exactly as QEMU", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make()
        const raw = yield* rawConnect(server.address)
        yield* raw.next
        expect(yield* raw.exchange({ execute: "query-status", id: "c1" })).toEqual({
          id: "c1",
          error: { class: "CommandNotFound", desc: "Expecting capabilities negotiation with 'qmp_capabilities'" }
        })
        expect(yield* raw.exchange({ execute: "no-such-command" })).toEqual({
          error: { class: "CommandNotFound", desc: "Expecting capabilities negotiation with 'qmp_capabilities'" }
        })
        expect(yield* raw.exchange({ "exec-oob": "query-yank", id: 2 })).toEqual({
          id: 2,
          error: { class: "GenericError", desc: "QMP input member 'exec-oob' is unexpected" }
        })
        expect(yield* raw.exchange({ execute: "qmp_capabilities", arguments: { enable: ["foo"] }, id: 3 })).toEqual({
          id: 3,
          error: { class: "GenericError", desc: "Parameter 'null' does not accept value 'foo'" }
        })
        // Events go to negotiated clients only.
        yield* server.emit("NOT_YET")
        expect(yield* raw.exchange({ execute: "qmp_capabilities", arguments: { enable: ["oob"] } })).toEqual({
          return: {}
        })
        expect(yield* raw.exchange({ execute: "qmp_capabilities", id: { a: [1, "x"] } })).toEqual({
          id: { a: [1, "x"] },
          error: { class: "CommandNotFound", desc: "Capabilities negotiation is already complete, command ignored" }
        })
        expect(yield* raw.exchange({ execute: "query-status", id: 42 })).toEqual({
          return: { status: "running", singlestep: false, running: true },
          id: 42
        })
        expect(yield* (yield* server.accept).negotiated).toBe(true)
      }))

    it.scopedLive("checks input as QEMU's dispatcher does", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make()
        const raw = yield* rawNegotiated(server.address)
        const generic = (desc: string) => ({ class: "GenericError", desc })
        yield* raw.write("{\"execute\": }\n")
        expect(yield* raw.next).toMatchObject({ error: { class: "GenericError" } })
        expect((yield* raw.exchange([1, 2])).error).toEqual(generic("QMP input must be a JSON object"))
        expect(yield* raw.exchange({ id: 8 })).toEqual({ id: 8, error: generic("QMP input lacks member 'execute'") })
        expect((yield* raw.exchange({ execute: 1 })).error).toEqual(
          generic("QMP input member 'execute' must be a string")
        )
        expect((yield* raw.exchange({ execute: "stop", arguments: [1] })).error)
          .toEqual(generic("QMP input member 'arguments' must be an object"))
        expect((yield* raw.exchange({ execute: "stop", bogus: 1 })).error)
          .toEqual(generic("QMP input member 'bogus' is unexpected"))
        expect((yield* raw.exchange({ execute: "stop", arguments: { bogus: 1 } })).error)
          .toEqual(generic("Parameter 'bogus' is unexpected"))
        expect(yield* raw.exchange({ execute: "no-such-command", id: "n" })).toEqual({
          id: "n",
          error: { class: "CommandNotFound", desc: "The command no-such-command has not been found" }
        })
        expect(yield* raw.exchange({ "exec-oob": "query-status", id: 6 })).toEqual({
          id: 6,
          error: generic("The command query-status does not support OOB")
        })
        expect(yield* raw.exchange({ "exec-oob": "query-yank", id: 5 })).toEqual({
          return: [{ type: "chardev", id: "compat_monitor0" }],
          id: 5
        })
        // Still serving.
        expect((yield* raw.exchange({ execute: "query-status" })).return.status).toBe("running")
      }))

    it.scopedLive("serves TCP on 127.0.0.1 and a free port", () =>
      Effect.gen(function*() {
        const { client, server } = yield* connect({ transport: "tcp" })
        expect(server.address).toMatchObject({ host: "127.0.0.1" })
        expect("port" in server.address && server.address.port > 0).toBe(true)
        expect(yield* client.execute("query-status")).toEqual({ status: "running", singlestep: false, running: true })
        expect(yield* client.executeOob("query-yank")).toEqual([{ type: "chardev", id: "compat_monitor0" }])
      }))

    it.scopedLive("closing the scope closes the clients and removes the socket's directory", () =>
      Effect.gen(function*() {
        const closed = yield* Effect.scoped(Effect.gen(function*() {
          const { client, server } = yield* connect()
          const path = (server.address as { path: string }).path
          expect(Fs.existsSync(path)).toBe(true)
          return { client, dir: Path.dirname(path) }
        }))
        expect(Fs.existsSync(closed.dir)).toBe(false)
        expect(yield* closed.client.closed).toMatchObject({ _tag: "QmpDisconnected" })
      }))
  })

  describe("input read as QEMU reads it: a JSON stream, not lines", () => {
    it.scopedLive("commands without newlines, several in one write, one over several writes, each answered", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make()
        const raw = yield* rawNegotiated(server.address)
        yield* raw.write("{\"execute\":\"query-status\",\"id\":1}{\"execute\":\"query-version\",\"id\":2}")
        expect((yield* raw.next).id).toBe(1)
        expect((yield* raw.next).id).toBe(2)
        yield* raw.write("{\"execute\":")
        yield* raw.write("\r\n  \"query-status\", \"id\": 3")
        yield* raw.write("}")
        expect((yield* raw.next).return.status).toBe("running")
        // A number at the top level ends only with the byte after it.
        yield* raw.write("42")
        expect(yield* raw.poll(50)).toEqual(Option.none())
        yield* raw.write(" ")
        expect(yield* raw.next).toEqual({ error: { class: "GenericError", desc: "QMP input must be a JSON object" } })
      }))

    it.scopedLive("QEMU's parse errors, without an id; the ids echoed exactly", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make()
        const raw = yield* rawNegotiated(server.address)
        const generic = (desc: string) => ({ error: { class: "GenericError", desc } })
        yield* raw.write("{\"execute\":\"query-status\",\"execute\":\"stop\"}")
        expect(yield* raw.next).toEqual(generic("JSON parse error, duplicate key"))
        yield* raw.write("[".repeat(1025))
        expect(yield* raw.next).toEqual(generic("JSON nesting depth limit exceeded"))
        yield* raw.write("{\"execute\":\"query-status\",\"id\":12345678901234567890}")
        expect(yield* raw.line).toBe(
          "{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": true}, \"id\": 12345678901234567890}"
        )
        yield* raw.write("{\"execute\":\"no-such-é\"}")
        expect(yield* raw.line).toBe(
          "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command no-such-\\u00E9 has not been found\"}}"
        )
      }))

    it.scopedLive("a client that ends its side gets the replies to what it sent, then the end", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make()
        const raw = yield* rawNegotiated(server.address)
        raw.socket.end("{\"execute\":\"query-status\",\"id\":\"a\"}{\"execute\":\"stop\",\"id\":\"b\"}{\"execute\":")
        expect((yield* raw.next).id).toBe("a")
        expect((yield* raw.next).event).toBe("STOP")
        expect((yield* raw.next).id).toBe("b")
        // The unfinished command is dropped, as QEMU drops it.
        yield* raw.ended
        expect(yield* raw.poll(20)).toEqual(Option.none())
      }))

    it.scopedLive("human-monitor-command: info status, info version, help, stop", () =>
      Effect.gen(function*() {
        const { client, events } = yield* connect({ version: { major: 7, minor: 2, micro: 9 }, package: " (x)" })
        const hmp = (line: string) => client.execute("human-monitor-command", { "command-line": line })
        expect(yield* hmp("info status")).toBe("VM status: running\r\n")
        expect(yield* hmp("info version")).toBe("7.2.9 (x)\r\n")
        expect(yield* hmp("help stop")).toBe("stop|s  -- stop emulation\r\n")
        expect(yield* hmp("help")).toContain("info [subcommand] -- show various information about the system state\r\n")
        expect(yield* hmp("info nope")).toBe("unknown command: 'info nope'\r\n")
        const stops = yield* events.listener("STOP")
        expect(yield* hmp("stop")).toBe("")
        expect(yield* stops.isEmpty).toBe(false)
        expect(yield* hmp("info status")).toBe("VM status: paused\r\n")
        expect(yield* hmp("c now")).toBe(
          "cont|c: extraneous characters at the end of line\r\nTry \"help c\" for more information\r\n"
        )
      }))

    it("the README's QmpTestServer section lists every kept difference", () => {
      const readme = Fs.readFileSync(Path.join(import.meta.dirname, "..", "README.md"), "utf8")
      for (const difference of QmpTestServer.differences) {
        expect(readme).toContain(
          `| ${difference.topic} | ${difference.qemu} | ${difference.testServer} | ${difference.reason} |`
        )
      }
    })
  })

  describe("the default VM", () => {
    it.scopedLive("stop and cont emit STOP and RESUME before their return, only when the state changes", () =>
      Effect.gen(function*() {
        const { client, events, server } = yield* connect()
        const listener = yield* events.listener()
        yield* client.execute("stop")
        expect(names(yield* listener.clear)).toEqual(["STOP"])
        expect(yield* server.status).toBe("paused")
        yield* client.execute("stop")
        expect(yield* client.execute("query-status")).toEqual({ status: "paused", singlestep: false, running: false })
        yield* client.execute("cont")
        expect(names(yield* listener.clear)).toEqual(["RESUME"])
        yield* client.execute("cont")
        expect(yield* client.execute("query-status")).toEqual({ status: "running", singlestep: false, running: true })
        expect(names(yield* events.events.history)).toEqual(["STOP", "RESUME"])
      }))

    it.scoped("on the wire, STOP comes right before stop's return, stamped with the current time", () =>
      Effect.gen(function*() {
        // Before the server starts, so that no timer of its own is pending.
        yield* TestClock.setTime(1_700_000_000_123)
        const server = yield* QmpTestServer.make()
        const raw = yield* rawNegotiated(server.address)
        yield* raw.write("{\"execute\": \"stop\", \"id\": 1}\n{\"execute\": \"cont\", \"id\": 2}\n")
        const lines = [yield* raw.next, yield* raw.next, yield* raw.next, yield* raw.next]
        expect(lines.map((l) => l.event ?? `return ${l.id}`)).toEqual(["STOP", "return 1", "RESUME", "return 2"])
        const stop = lines[0]
        expect(Object.keys(stop)).toEqual(["timestamp", "event"])
        expect(stop.timestamp).toEqual({ seconds: 1_700_000_000, microseconds: 123_000 })
      }))

    it.scopedLive("a prelaunch VM (-S) resumes on cont", () =>
      Effect.gen(function*() {
        const { client, events } = yield* connect({ status: "prelaunch" })
        expect(yield* client.execute("query-status")).toEqual({
          status: "prelaunch",
          singlestep: false,
          running: false
        })
        yield* client.execute("stop")
        yield* client.execute("cont")
        expect(names(yield* events.events.history)).toEqual(["RESUME"])
      }))

    it.scopedLive("system_reset and system_powerdown emit RESET and POWERDOWN before their return", () =>
      Effect.gen(function*() {
        const { client, events } = yield* connect()
        yield* client.execute("system_reset")
        yield* client.execute("system_powerdown")
        const history = yield* events.events.history
        expect(names(history)).toEqual(["RESET", "POWERDOWN"])
        expect(history[0].data).toEqual({ guest: false, reason: "host-qmp-system-reset" })
        expect(history[1].data).toBeUndefined()
      }))

    it.scopedLive("quit: SHUTDOWN, the return, then the end of the stream; nothing listens afterwards", () =>
      Effect.gen(function*() {
        const { client, events, server } = yield* connect()
        const listener = yield* events.listener("SHUTDOWN")
        expect(yield* client.execute("quit")).toEqual({})
        expect((yield* listener.take).data).toEqual({ guest: false, reason: "host-qmp-quit" })
        expect(yield* client.closed).toMatchObject({ _tag: "QmpDisconnected", reason: "Closed" })
        yield* until(server.connections, (all) => all.length === 0)
        const again = yield* Effect.flip(clientOf(server.address))
        expect(again).toMatchObject({ _tag: "QmpConnectError", reason: "NotFound" })
      }))

    it.scopedLive("quit on the wire: SHUTDOWN, the return, EOF", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make()
        const raw = yield* rawNegotiated(server.address)
        yield* raw.write("{\"execute\": \"quit\", \"id\": \"q\"}\n")
        expect(yield* raw.next).toMatchObject({ event: "SHUTDOWN", data: { guest: false, reason: "host-qmp-quit" } })
        expect(yield* raw.next).toEqual({ return: {}, id: "q" })
        yield* raw.ended
      }))

    it.scopedLive("query-commands lists the commands, custom ones included", () =>
      Effect.gen(function*() {
        const { client, server } = yield* connect()
        yield* server.handle("x-custom", () => Effect.succeed(1))
        const commands = (yield* client.execute("query-commands")) as ReadonlyArray<{ name: string }>
        const known = commands.map((c) => c.name)
        for (const name of ["qmp_capabilities", "query-status", "stop", "cont", "quit", "query-jobs", "x-custom"]) {
          expect(known).toContain(name)
        }
      }))
  })

  describe("block jobs", () => {
    it.scopedLive("blockdev-add remembers null-co nodes, with QEMU's errors", () =>
      Effect.gen(function*() {
        const { client } = yield* connect()
        yield* client.execute("blockdev-add", { driver: "null-co", "node-name": "src", size: MiB })
        const error = (args: Record<string, unknown>) => refusal(client.executeUnknown("blockdev-add", args))
        expect(yield* error({ driver: "null-co", "node-name": "src" })).toMatchObject({
          errorClass: "GenericError",
          desc: "Duplicate nodes with node-name='src'"
        })
        expect((yield* error({ driver: "null-co" })).desc).toBe("'node-name' must be specified for the root node")
        expect((yield* error({ "node-name": "x" })).desc).toBe("Parameter 'driver' is missing")
        expect((yield* error({ driver: "null-co", "node-name": "x", size: "big" })).desc)
          .toBe("Invalid parameter type for 'size', expected: integer")
        yield* client.execute("blockdev-del", { "node-name": "src" })
        expect((yield* refusal(client.execute("blockdev-del", { "node-name": "src" }))).desc)
          .toBe("Failed to find node with node-name='src'")
      }))

    it.scopedLive("an unthrottled backup runs its whole lifecycle before the return, as QEMU 7.2", () =>
      Effect.gen(function*() {
        const { client, events } = yield* connect()
        const nodes = yield* nullNodes(client)
        const listener = yield* events.listener()
        yield* backup(client, "j1", nodes)
        const seen = yield* listener.clear
        expect(statuses(seen)).toEqual([
          "created",
          "running",
          "paused",
          "running",
          "waiting",
          "pending",
          "concluded",
          "null"
        ])
        expect(names(seen)).toEqual([
          ...Array(6).fill("JOB_STATUS_CHANGE"),
          "BLOCK_JOB_COMPLETED",
          "JOB_STATUS_CHANGE",
          "JOB_STATUS_CHANGE"
        ])
        expect(seen.find((e) => e.event === "BLOCK_JOB_COMPLETED")?.data).toEqual({
          device: "j1",
          len: MiB,
          offset: MiB,
          speed: 0,
          type: "backup"
        })
        expect(seen[0].data).toEqual({ status: "created", id: "j1" })
        expect(yield* client.execute("query-jobs")).toEqual([])
      }))

    it.scopedLive("blockdev-backup fails as QEMU does", () =>
      Effect.gen(function*() {
        const { client } = yield* connect()
        yield* nullNodes(client)
        yield* client.execute("blockdev-add", { driver: "null-co", "node-name": "big" })
        yield* client.execute("blockdev-add", { driver: "null-co", "node-name": "tgt2", size: MiB })
        const error = (args: Record<string, unknown>) => refusal(client.executeUnknown("blockdev-backup", args))
        const base = { "job-id": "j", device: "src", target: "tgt", sync: "full" as const }
        expect((yield* error({ ...base, sync: undefined })).desc).toBe("Parameter 'sync' is missing")
        expect((yield* error({ ...base, sync: "bogus" })).desc).toBe("Parameter 'sync' does not accept value 'bogus'")
        expect((yield* error({ ...base, device: "nope" })).desc).toBe("Cannot find device='nope' nor node-name='nope'")
        expect((yield* error({ ...base, target: "big" })).desc).toBe("Source and target image have different sizes")
        expect((yield* error({ ...base, "job-id": undefined })).desc).toBe("Invalid job ID ''")
        yield* client.execute("blockdev-backup", { ...base, speed: 1024 })
        // As QEMU, a busy node is found before a job ID already in use.
        expect((yield* error(base)).desc).toBe("Node 'tgt' is busy: block device is in use by block job: backup")
        expect((yield* error({ ...base, target: "tgt2" })).desc).toBe("Job ID 'j' already in use")
        expect((yield* refusal(client.execute("blockdev-del", { "node-name": "src" }))).desc)
          .toBe("Block device src is in use")
      }))

    it.scopedLive("a negative speed: the job is created and dropped (created, null) before the error, as QEMU does", () =>
      Effect.gen(function*() {
        const { client, events } = yield* connect()
        const nodes = yield* nullNodes(client)
        const listener = yield* events.listener("JOB_STATUS_CHANGE")
        const refused = yield* refusal(backup(client, "neg", nodes, { speed: -1 }))
        expect(refused.desc).toBe("Parameter 'speed' expects a non-negative value")
        expect(statuses(yield* listener.clear)).toEqual(["created", "null"])
        expect(yield* client.execute("query-jobs")).toEqual([])
      }))

    it.scoped("a throttled backup progresses with the clock; query-jobs shows its progress", () =>
      Effect.gen(function*() {
        const { client, events } = yield* connect()
        const size = 4 * MiB
        const speed = 8 * MiB
        const nodes = yield* nullNodes(client, { size })
        const listener = yield* events.listener()
        const completed = yield* events.listener("BLOCK_JOB_COMPLETED")
        yield* backup(client, "j1", nodes, { speed })
        // Before the return: created, running and the drain's paused/running; the job goes on.
        expect(statuses(yield* listener.clear)).toEqual(["created", "running", "paused", "running"])
        // The job moves every 100 ms of the clock, by what its speed allows, and reports whole 64 KiB
        // clusters: 4 MiB at 8 MiB/s takes half a second.
        const progress: Array<number> = []
        for (let millis = 50; millis < 500; millis += 50) {
          yield* TestClock.adjust("50 millis")
          const jobs = yield* client.execute("query-jobs")
          expect(jobs).toEqual([{
            "current-progress": expect.any(Number),
            status: "running",
            "total-progress": size,
            type: "backup",
            id: "j1"
          }])
          progress.push(jobs[0]["current-progress"] as number)
        }
        const cluster = 65536
        const expected = (millis: number) => Math.floor(speed * Math.floor(millis / 100) / 10 / cluster) * cluster
        expect(progress).toEqual([50, 100, 150, 200, 250, 300, 350, 400, 450].map(expected))
        expect(new Set(progress).size).toBe(5)
        expect(progress.every((p) => p < size && p % cluster === 0)).toBe(true)
        expect(yield* completed.isEmpty).toBe(true)
        yield* TestClock.adjust("50 millis")
        expect((yield* completed.take).data).toEqual({
          device: "j1",
          len: size,
          offset: size,
          speed,
          type: "backup"
        })
        expect(statuses(yield* listener.clear)).toEqual(["waiting", "pending", "concluded", "null"])
        expect(yield* client.execute("query-jobs")).toEqual([])
      }))

    it.scoped("job-pause, job-resume, block-job-set-speed and block-job-cancel, with their events before the return", () =>
      Effect.gen(function*() {
        const { client, listener } = yield* runningJob("j3")
        yield* TestClock.adjust("300 millis")
        yield* client.execute("job-pause", { id: "j3" })
        expect(statuses(yield* listener.clear)).toEqual(["paused"])
        expect((yield* refusal(client.execute("job-pause", { id: "j3" }))).desc).toBe("Job is already paused")
        const [paused] = yield* client.execute("query-block-jobs")
        expect(paused).toMatchObject({ device: "j3", status: "paused", paused: true, busy: false, speed: MiB })
        expect(paused.offset).toBeGreaterThan(0)
        // A second at 1 MiB/s would move a running job by 1 MiB: a paused one stays where it was.
        yield* TestClock.adjust("1 second")
        const [still] = yield* client.execute("query-block-jobs")
        expect(still.offset).toBe(paused.offset)
        yield* client.execute("job-resume", { id: "j3" })
        expect(statuses(yield* listener.clear)).toEqual(["running"])
        expect((yield* refusal(client.execute("job-resume", { id: "j3" }))).desc)
          .toBe("Can't resume a job that was not paused")
        yield* client.execute("block-job-set-speed", { device: "j3", speed: 2 * MiB })
        expect(yield* listener.isEmpty).toBe(true)
        yield* client.execute("block-job-cancel", { device: "j3" })
        const cancelled = yield* listener.clear
        expect(names(cancelled)).toEqual([
          "JOB_STATUS_CHANGE",
          "BLOCK_JOB_CANCELLED",
          "JOB_STATUS_CHANGE",
          "JOB_STATUS_CHANGE"
        ])
        expect(statuses(cancelled)).toEqual(["aborting", "concluded", "null"])
        expect(cancelled[1].data).toMatchObject({ device: "j3", len: 64 * MiB, speed: 2 * MiB, type: "backup" })
        expect(yield* client.execute("query-jobs")).toEqual([])
        expect(yield* refusal(client.execute("block-job-cancel", { device: "j3" }))).toMatchObject({
          errorClass: "DeviceNotActive",
          desc: "Block job 'j3' not found"
        })
        expect((yield* refusal(client.execute("job-cancel", { id: "j3" }))).desc).toBe("Job not found")
      }))

    it.scopedLive("auto-finalize and auto-dismiss off: BLOCK_JOB_PENDING, job-finalize, job-dismiss", () =>
      Effect.gen(function*() {
        const { client, events } = yield* connect()
        const nodes = yield* nullNodes(client)
        const listener = yield* events.listener()
        yield* backup(client, "j2", nodes, { "auto-finalize": false, "auto-dismiss": false })
        const before = yield* listener.clear
        expect(names(before).slice(-1)).toEqual(["BLOCK_JOB_PENDING"])
        expect(before.at(-1)?.data).toEqual({ type: "backup", id: "j2" })
        expect(statuses(before).slice(-2)).toEqual(["waiting", "pending"])
        expect(yield* client.execute("query-jobs")).toEqual([{
          "current-progress": MiB,
          status: "pending",
          "total-progress": MiB,
          type: "backup",
          id: "j2"
        }])
        expect((yield* refusal(client.execute("job-dismiss", { id: "j2" }))).desc)
          .toBe("Job 'j2' in state 'pending' cannot accept command verb 'dismiss'")
        yield* client.execute("job-finalize", { id: "j2" })
        const finalized = yield* listener.clear
        expect(names(finalized)).toEqual(["BLOCK_JOB_COMPLETED", "JOB_STATUS_CHANGE"])
        expect(statuses(finalized)).toEqual(["concluded"])
        expect((yield* refusal(client.execute("job-cancel", { id: "j2" }))).desc)
          .toBe("Job 'j2' in state 'concluded' cannot accept command verb 'cancel'")
        yield* client.execute("job-dismiss", { id: "j2" })
        expect(statuses(yield* listener.clear)).toEqual(["null"])
        expect(yield* client.execute("query-jobs")).toEqual([])
      }))

    it.scopedLive("quit cancels a running job between SHUTDOWN and the return, as QEMU 7.2", () =>
      Effect.gen(function*() {
        const { client, listener } = yield* runningJob("q1")
        yield* client.execute("quit")
        const seen = yield* listener.clear
        expect(names(seen)).toEqual([
          "SHUTDOWN",
          "JOB_STATUS_CHANGE",
          "JOB_STATUS_CHANGE",
          "JOB_STATUS_CHANGE",
          "BLOCK_JOB_CANCELLED",
          "JOB_STATUS_CHANGE",
          "JOB_STATUS_CHANGE"
        ])
        expect(statuses(seen)).toEqual(["paused", "running", "aborting", "concluded", "null"])
      }))

    it.scopedLive("stop drains a running job: paused and running after STOP", () =>
      Effect.gen(function*() {
        const { client, listener } = yield* runningJob("d")
        yield* client.execute("stop")
        const seen = yield* listener.clear
        expect(names(seen)).toEqual(["STOP", "JOB_STATUS_CHANGE", "JOB_STATUS_CHANGE"])
        expect(statuses(seen)).toEqual(["paused", "running"])
      }))
  })

  describe("handlers", () => {
    it.scopedLive("a custom command: its events come before its reply; args and the command are given", () =>
      Effect.gen(function*() {
        const { client, events, server } = yield* connect()
        const contexts = yield* Queue.unbounded<QmpTestServer.ReceivedCommand>()
        yield* server.handle("x-echo", (args, ctx) =>
          Effect.gen(function*() {
            yield* Queue.offer(contexts, ctx.command)
            yield* ctx.emit("ECHOED", { args })
            return { echo: args }
          }))
        const listener = yield* events.listenerUnknown("ECHOED")
        expect(yield* client.executeUnknown("x-echo", { a: [1, "two"] })).toEqual({ echo: { a: [1, "two"] } })
        expect(yield* listener.isEmpty).toBe(false)
        expect((yield* listener.take).data).toEqual({ args: { a: [1, "two"] } })
        const command = yield* Queue.take(contexts)
        expect(command).toMatchObject({ connection: 1, command: "x-echo", arguments: { a: [1, "two"] }, oob: false })
        expect(typeof command.id).toBe("string")
        // A command without arguments gets {} as args, and `undefined` as a result replies {}.
        const args = yield* Queue.unbounded<unknown>()
        yield* server.handle("x-void", (a) => Effect.asVoid(Queue.offer(args, a)))
        expect(yield* client.executeUnknown("x-void")).toEqual({})
        expect(yield* Queue.take(args)).toEqual({})
      }))

    it.scopedLive("a handler's failure is the error reply; a defect is a GenericError", () =>
      Effect.gen(function*() {
        const { client, server } = yield* connect()
        yield* server.handle("x-fail", () => Effect.fail({ class: "DeviceNotFound", desc: "Device 'x' not found" }))
        yield* server.handle("x-die", () => Effect.dieMessage("boom"))
        expect(yield* refusal(client.executeUnknown("x-fail"))).toMatchObject({
          _tag: "QmpExecuteError",
          command: "x-fail",
          errorClass: "DeviceNotFound",
          desc: "Device 'x' not found"
        })
        const died = yield* refusal(client.executeUnknown("x-die"))
        expect(died).toMatchObject({ _tag: "QmpExecuteError", errorClass: "GenericError" })
        expect(died.message).toContain("boom")
        expect(QmpTestServer.genericError("no")).toEqual({ class: "GenericError", desc: "no" })
      }).pipe(Effect.provide(Logger.minimumLogLevel(LogLevel.None))))

    it.scopedLive("a default command can be replaced", () =>
      Effect.gen(function*() {
        const { client, server } = yield* connect()
        yield* server.handle("query-status", () => Effect.succeed({ status: "inmigrate", running: false }))
        expect(yield* client.executeUnknown("query-status")).toEqual({ status: "inmigrate", running: false })
      }))

    it.scopedLive("reply now, then events after the reply (as block-job-complete), in the background", () =>
      Effect.gen(function*() {
        const { client, events, server } = yield* connect()
        const go = yield* Deferred.make<void>()
        yield* server.handle("x-later", (_, ctx) =>
          Effect.gen(function*() {
            yield* ctx.reply({ started: true })
            yield* ctx.fork(Effect.zipRight(Deferred.await(go), ctx.emit("LATER")))
            return "dropped"
          }))
        const listener = yield* events.listenerUnknown("LATER")
        expect(yield* client.executeUnknown("x-later")).toEqual({ started: true })
        expect(yield* listener.isEmpty).toBe(true)
        yield* Deferred.succeed(go, undefined)
        expect((yield* listener.take).event).toBe("LATER")
      }))

    it.scopedLive("replyRaw writes any reply; silent and noReply write none", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make()
        yield* server.handle("x-raw", (_, ctx) => ctx.replyRaw({ return: "whatever", id: "someone-else" }))
        yield* server.handle("x-silent", QmpTestServer.silent)
        const raw = yield* rawNegotiated(server.address)
        expect(yield* raw.exchange({ execute: "x-raw", id: 1 })).toEqual({ return: "whatever", id: "someone-else" })
        yield* raw.write("{\"execute\": \"x-silent\", \"id\": 2}\n")
        expect(yield* raw.poll(150)).toEqual(Option.none())
        expect((yield* server.commands).map((c) => c.command)).toEqual(["qmp_capabilities", "x-raw", "x-silent"])
      }))

    it.scopedLive("in-band commands run one at a time; exec-oob ones jump the queue", () =>
      Effect.gen(function*() {
        const { client, server } = yield* connect()
        const release = yield* Deferred.make<void>()
        yield* server.handle("x-slow", () => Effect.as(Deferred.await(release), "slow"))
        yield* server.handle("x-ping", () => Effect.succeed("pong"), { oob: true })
        const slow = yield* Effect.fork(client.executeUnknown("x-slow"))
        const inBand = yield* Effect.fork(client.execute("query-status"))
        expect(yield* client.executeOobUnknown("x-ping")).toBe("pong")
        expect(yield* client.executeOob("query-yank")).toEqual([{ type: "chardev", id: "compat_monitor0" }])
        yield* Effect.sleep("50 millis")
        expect(inBand.unsafePoll()).toBeNull()
        yield* Deferred.succeed(release, undefined)
        expect(yield* Fiber.join(slow)).toBe("slow")
        expect(yield* Fiber.join(inBand)).toMatchObject({ status: "running" })
      }))
  })

  describe("events, commands, connections", () => {
    it.scopedLive("emit and emitAll reach every negotiated client, in order, and only them", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make({ exclusive: false })
        const a = yield* clientOf(server.address)
        const b = yield* clientOf(server.address)
        const bystander = yield* rawConnect(server.address)
        yield* bystander.next // greeted, never negotiates
        const timestamp = { seconds: 1_700_000_000, microseconds: 5 }
        const before = Date.now()
        yield* server.emit("ONE", { n: 1 })
        yield* server.emitAll([
          { event: "TWO", timestamp },
          { event: "THREE", data: { n: 3 }, timestamp }
        ])
        yield* server.emit({ event: "FOUR", timestamp })
        for (const { events } of [a, b]) {
          const seen = [yield* events.events.take, yield* events.events.take, yield* events.events.take]
          seen.push(yield* events.events.take)
          expect(names(seen)).toEqual(["ONE", "TWO", "THREE", "FOUR"])
          expect(seen[0].data).toEqual({ n: 1 })
          // Stamped with the time of the emit: between the clock readings around it (to the second).
          expect(seen[0].timestamp.seconds).toBeGreaterThanOrEqual(Math.floor(before / 1000) - 1)
          expect(seen[0].timestamp.seconds).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 1)
          expect(Number.isInteger(seen[0].timestamp.microseconds)).toBe(true)
          expect(seen[2]).toEqual({ event: "THREE", data: { n: 3 }, timestamp })
        }
        expect(yield* bystander.poll(100)).toEqual(Option.none())
        expect((yield* server.connections).length).toBe(3)
      }))

    it.scopedLive("commands lists what was received, nextCommand waits for each in turn", () =>
      Effect.gen(function*() {
        const { client, server } = yield* connect()
        const negotiation = yield* server.nextCommand
        expect(negotiation).toMatchObject({
          connection: 1,
          command: "qmp_capabilities",
          arguments: { enable: ["oob"] },
          oob: false,
          message: { execute: "qmp_capabilities", arguments: { enable: ["oob"] } }
        })
        const next = yield* Effect.fork(server.nextCommand)
        yield* client.execute("query-status")
        expect(yield* Fiber.join(next)).toMatchObject({ command: "query-status", arguments: undefined })
        yield* client.executeOob("query-yank")
        expect(yield* server.nextCommand).toMatchObject({ command: "query-yank", oob: true })
        const all = yield* server.commands
        expect(all.map((c) => c.command)).toEqual(["qmp_capabilities", "query-status", "query-yank"])
        expect(new Set(all.map((c) => c.id)).size).toBe(3)
      }))

    it.scopedLive("one client at a time by default: a second one gets no greeting until the first leaves", () =>
      Effect.gen(function*() {
        const { client, server } = yield* connect()
        const second = yield* rawConnect(server.address)
        expect(yield* second.poll(200)).toEqual(Option.none())
        expect((yield* server.connections).map((c) => c.id)).toEqual([1, 2])
        yield* client.disconnect
        expect(yield* second.next).toHaveProperty("QMP")
        yield* until(server.connections, (all) => all.length === 1)
        const first = yield* server.accept
        yield* first.closed
        expect(yield* first.isOpen).toBe(false)
      }))

    it.scopedLive("layerWithClient provides the server, a client connected to it and its registry", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.QmpTestServer
        const client = yield* QmpClient.QmpClient
        const events = yield* QmpEvents.QmpEvents
        const stops = yield* events.listener("STOP")
        yield* client.execute("stop")
        expect((yield* stops.take).event).toBe("STOP")
        expect(yield* server.status).toBe("paused")
      }).pipe(Effect.provide(Layer.fresh(QmpTestServer.layerWithClient({ transport: "tcp" })))))
  })

  describe("faults", () => {
    it.scopedLive("raw writes bytes as they are; an array arrives as separate chunks", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make()
        const raw = yield* rawNegotiated(server.address)
        const conn = yield* server.accept
        const before = (yield* raw.chunks).length
        const bytes = Buffer.from("{\"event\": \"NAMED\", \"data\": {\"text\": \"😀\"}}\r\n")
        const split = bytes.indexOf(Buffer.from("😀")) + 2
        yield* conn.raw([bytes.subarray(0, split), bytes.subarray(split)], { delay: "30 millis" })
        expect((yield* raw.next).data.text).toBe("😀")
        const chunks = (yield* raw.chunks).slice(before)
        expect(chunks.length).toBe(2)
        expect(Buffer.concat(chunks)).toEqual(bytes)
        yield* server.raw("garbage\r\n")
        expect(yield* raw.line).toBe("garbage")
        yield* server.send({ hello: "world" }, [1])
        expect([yield* raw.line, yield* raw.line]).toEqual(["{\"hello\": \"world\"}", "[1]"])
      }))

    it.scopedLive("writeLongLine writes a line without end in drained chunks, and stops when the client hangs up", () =>
      Effect.gen(function*() {
        const server = yield* QmpTestServer.make()
        const raw = yield* rawNegotiated(server.address)
        const conn = yield* server.accept
        const marks: Array<number> = []
        const total = 3 * MiB + 5
        expect(yield* conn.writeLongLine(total, { chunkSize: 256 * 1024, onChunk: (n) => marks.push(n) })).toBe(total)
        expect(marks.length).toBe(13)
        expect(marks.at(-1)).toBe(total)
        yield* until(Effect.map(raw.chunks, (c) => Buffer.concat(c).length), (n) => n >= total)
        const received = Buffer.concat(yield* raw.chunks)
        const tail = received.subarray(received.lastIndexOf(0x0a) + 1)
        expect(tail.length).toBe(total)
        expect(tail.every((b) => b === 0x61)).toBe(true)

        // A client that does not read holds the writer back; when it hangs up, the writer stops.
        raw.socket.pause()
        let handed = 0
        const writer = yield* Effect.fork(conn.writeLongLine(256 * MiB, { onChunk: (n) => handed = n }))
        yield* Effect.sleep("300 millis")
        expect(handed).toBeLessThan(32 * MiB)
        raw.socket.destroy()
        const written = yield* Fiber.join(writer)
        expect(written).toBeLessThan(32 * MiB)
      }))

    it.scopedLive("pump writes a chunk count times, as fast as the client reads", () =>
      Effect.gen(function*() {
        const { events, server } = yield* connect()
        const conn = yield* server.accept
        const line = JSON.stringify(QmpMessage.makeEvent("FILL", { pad: "x".repeat(64) })) + "\r\n"
        const block = line.repeat(100)
        let last = 0
        expect(yield* conn.pump(block, 50, { onChunk: (n) => last = n })).toBe(50)
        expect(last).toBe(50)
        yield* until(Effect.map(events.events.history, (h) => h.length), (n) => n === 5_000)
      }))

    it.scoped("stall holds commands until release; events still go out", () =>
      Effect.gen(function*() {
        const { client, events, server } = yield* connect()
        yield* server.stall()
        const call = yield* Effect.fork(client.execute("query-status", undefined, { timeout: "200 millis" }))
        yield* TestClock.adjust("200 millis")
        expect(yield* Effect.flip(Fiber.join(call))).toMatchObject({ _tag: "QmpTimeoutError" })
        expect((yield* server.commands).length).toBe(1) // not even read
        yield* server.emit("DURING_STALL")
        expect((yield* events.events.take).event).toBe("DURING_STALL")
        yield* server.release
        expect(yield* client.execute("query-status")).toMatchObject({ status: "running" })
        expect((yield* server.commands).map((c) => c.command)).toEqual([
          "qmp_capabilities",
          "query-status",
          "query-status"
        ])
      }))

    it.scoped("a stall with a duration releases by itself when the clock reaches it; a connection can be stalled alone", () =>
      Effect.gen(function*() {
        const { client, events, server } = yield* connect()
        // An event from the server, read by the client: a command answered before it would be answered by now.
        const roundTrip = Effect.zipRight(server.emit("PING"), events.events.take)
        // A command sent now is answered when the clock reaches the end of a stall of `millis`, not before.
        const answeredAfter = (millis: number) =>
          Effect.gen(function*() {
            const call = yield* Effect.fork(client.execute("query-status"))
            yield* TestClock.adjust(millis - 1)
            yield* roundTrip
            expect(call.unsafePoll()).toBeNull()
            yield* TestClock.adjust(1)
            expect(yield* Fiber.join(call)).toMatchObject({ status: "running" })
          })
        yield* server.stall({ duration: "300 millis" })
        yield* answeredAfter(300)
        const conn = yield* server.accept
        yield* conn.stall({ duration: "200 millis" })
        yield* answeredAfter(200)
        yield* conn.stall()
        const held = yield* Effect.fork(client.execute("query-status"))
        yield* TestClock.adjust("1 second")
        yield* roundTrip
        expect(held.unsafePoll()).toBeNull()
        yield* conn.release
        expect(yield* Fiber.join(held)).toMatchObject({ status: "running" })
      }))

    it.scopedLive("hangUp ends the stream after what was written; destroy closes at once", () =>
      Effect.gen(function*() {
        const { client, events, server } = yield* connect()
        yield* server.emit("LAST_WORDS")
        yield* server.hangUp
        expect(yield* client.closed).toMatchObject({ reason: "Closed" })
        expect((yield* events.events.take).event).toBe("LAST_WORDS")
        const second = yield* clientOf(server.address)
        const conn = yield* server.accept
        expect(conn.id).toBe(1)
        const conn2 = yield* server.accept
        yield* conn2.destroy
        expect(["Closed", "Lost"]).toContain((yield* second.client.closed).reason)
        yield* conn2.closed
        // Writes to a closed connection do nothing.
        yield* conn2.send({ return: {} })
        yield* conn2.raw("x")
        expect(yield* conn2.writeLongLine(MiB)).toBe(0)
      }))

    it.scopedLive("a greeting can be any bytes or any object", () =>
      Effect.gen(function*() {
        const text = yield* QmpTestServer.make({ greeting: "SSH-2.0-OpenSSH_9.2\r\n" })
        expect(yield* (yield* rawConnect(text.address)).line).toBe("SSH-2.0-OpenSSH_9.2")
        const object = yield* QmpTestServer.make({ greeting: { hello: "world" } })
        expect(object.greeting).toBeUndefined()
        expect(yield* (yield* rawConnect(object.address)).next).toEqual({ hello: "world" })
        // A QMP greeting given whole: its capabilities are the ones offered.
        const custom = { QMP: { version: { qemu: { major: 6, minor: 0, micro: 0 }, package: "" }, capabilities: [] } }
        const qmp = yield* QmpTestServer.make({ greeting: custom })
        expect(qmp.greeting).toEqual(custom)
        const raw = yield* rawConnect(qmp.address)
        expect(yield* raw.next).toEqual(custom)
        expect(yield* raw.exchange({ execute: "qmp_capabilities", arguments: { enable: ["oob"] } })).toEqual({
          error: { class: "GenericError", desc: "Capability 'oob' not available" }
        })
      }))
  })

  it.scopedLive("the module's example", () =>
    Effect.gen(function*() {
      const server = yield* QmpTestServer.QmpTestServer
      yield* server.handle(
        "guest-ping",
        (args, ctx) => Effect.as(ctx.emit("PONG", { echo: args.text }), { pong: true })
      )
      const qmp = yield* QmpClient.QmpClient
      const events = yield* QmpEvents.QmpEvents
      const pongs = yield* events.listenerUnknown("PONG")
      expect(yield* qmp.executeUnknown("guest-ping", { text: "hi" })).toEqual({ pong: true })
      expect(yield* pongs.isEmpty).toBe(false)
      expect((yield* pongs.take).data).toEqual({ echo: "hi" })
    }).pipe(Effect.provide(QmpTestServer.layerWithClient())))

  it.scopedLive("the server observes through Effects: a Ref shared with a handler", () =>
    Effect.gen(function*() {
      const { client, server } = yield* connect()
      const seen = yield* Ref.make<ReadonlyArray<unknown>>([])
      yield* server.handle("x-record", (args) => Ref.update(seen, (all) => [...all, args.n]))
      yield* client.executeUnknown("x-record", { n: 1 })
      yield* client.executeUnknown("x-record", { n: 2 })
      expect(yield* Ref.get(seen)).toEqual([1, 2])
    }))
})
