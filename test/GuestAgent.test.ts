/**
 * GuestAgent against a scripted agent in this process, for what a real `qemu-ga` on a Unix socket
 * never does (test/agent/ runs the real one): stale bytes on the channel before our 0xFF, an error
 * without an id for a command, an agent that never answers, and commands that must run one at a time.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Queue } from "effect"
import type { Scope } from "effect"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { GuestAgent } from "../src/index.js"

/** What the scripted agent reads: each command, and each 0xFF. */
type Read = { readonly _tag: "Sentinel" } | { readonly _tag: "Command"; readonly message: any }

interface FakeAgent {
  readonly path: string
  /** What the client wrote, in order. */
  readonly read: Effect.Effect<Read>
  /** Writes bytes to the client. */
  readonly write: (data: string | Uint8Array) => Effect.Effect<void>
}

/** A scripted agent on a Unix socket: one client; reads 0xFF bytes and JSON lines; writes what it is told. */
const fakeAgent: Effect.Effect<FakeAgent, never, Scope.Scope> = Effect.gen(function*() {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-qmp-fake-agent-"))),
    (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  )
  const path = Path.join(dir, "qga.sock")
  const reads = yield* Queue.unbounded<Read>()
  const client = yield* Deferred.make<Net.Socket>()
  const sockets: Array<Net.Socket> = []
  yield* Effect.acquireRelease(
    Effect.async<Net.Server>((resume) => {
      const server = Net.createServer((socket) => {
        sockets.push(socket)
        socket.on("error", () => {})
        let line = ""
        socket.on("data", (chunk: Buffer) => {
          for (const byte of chunk) {
            if (byte === 0xff) {
              reads.unsafeOffer({ _tag: "Sentinel" })
              line = ""
            } else if (byte === 0x0a) {
              reads.unsafeOffer({ _tag: "Command", message: JSON.parse(line) })
              line = ""
            } else {
              line += String.fromCharCode(byte)
            }
          }
        })
        Deferred.unsafeDone(client, Effect.succeed(socket))
      })
      server.listen(path, () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.async<void>((resume) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resume(Effect.void))
      })
  )
  return {
    path,
    read: Queue.take(reads),
    write: (data) =>
      Effect.flatMap(Deferred.await(client), (socket) =>
        Effect.async<void>((resume) => {
          socket.write(data, () => resume(Effect.void))
        }))
  }
})

/** Answers the client's resync as qemu-ga does: its error for the 0xFF, then 0xFF and the number back. */
const answerSync = (agent: FakeAgent) =>
  Effect.gen(function*() {
    expect(yield* agent.read).toEqual({ _tag: "Sentinel" })
    const sync = yield* agent.read
    expect(sync).toMatchObject({ _tag: "Command", message: { execute: "guest-sync-delimited" } })
    const { message } = sync as Extract<Read, { _tag: "Command" }>
    yield* agent.write("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\uFFFD'\"}}\n")
    yield* agent.write(Buffer.concat([
      Buffer.from([0xff]),
      Buffer.from(JSON.stringify({ return: message.arguments.id, id: message.id }) + "\n")
    ]))
  })

/** Reads the next command and answers it with `reply` (its id added). */
const answer = (agent: FakeAgent, reply: Record<string, unknown>) =>
  Effect.gen(function*() {
    const read = yield* agent.read
    expect(read._tag).toBe("Command")
    const { message } = read as Extract<Read, { _tag: "Command" }>
    yield* agent.write(JSON.stringify({ ...reply, id: message.id }) + "\n")
    return message
  })

describe("GuestAgent, on a scripted agent", () => {
  it.scopedLive("stale bytes before the agent's 0xFF are dropped: a late answer, half a line", () =>
    Effect.gen(function*() {
      const agent = yield* fakeAgent
      const connecting = yield* Effect.fork(GuestAgent.make({ path: agent.path }))
      // What a client before us left on the channel, before our 0xFF reaches the agent.
      yield* agent.write("{\"return\": {}, \"id\": \"qga-1\"}\n{\"return\": {\"half\": \"a li")
      yield* answerSync(agent)
      const client = yield* Fiber.join(connecting)
      const ping = yield* Effect.fork(client.execute("guest-ping"))
      expect((yield* answer(agent, { return: { pong: 1 } })).execute).toBe("guest-ping")
      expect(yield* Fiber.join(ping)).toEqual({ pong: 1 })
    }))

  it.scopedLive("an error without an id fails the pending command; the next one comes after a resync", () =>
    Effect.gen(function*() {
      const agent = yield* fakeAgent
      const connecting = yield* Effect.fork(GuestAgent.make({ path: agent.path }))
      yield* answerSync(agent)
      const client = yield* Fiber.join(connecting)
      const first = yield* Effect.fork(client.execute("guest-ping"))
      yield* agent.read
      yield* agent.write(
        "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON nesting depth limit exceeded\"}}\n"
      )
      expect(yield* Effect.flip(Fiber.join(first))).toMatchObject({
        _tag: "QmpProtocolError",
        reason: "ServerParseError"
      })
      const second = yield* Effect.fork(client.execute("guest-info"))
      yield* answerSync(agent)
      yield* answer(agent, { return: { version: "7.2.0" } })
      expect(yield* Fiber.join(second)).toEqual({ version: "7.2.0" })
    }))

  it.scopedLive("commands run one at a time: the next is written once the last is answered", () =>
    Effect.gen(function*() {
      const agent = yield* fakeAgent
      const connecting = yield* Effect.fork(GuestAgent.make({ path: agent.path }))
      yield* answerSync(agent)
      const client = yield* Fiber.join(connecting)
      const a = yield* Effect.fork(client.execute("guest-ping"))
      const b = yield* Effect.fork(client.execute("guest-info"))
      const first = yield* agent.read
      expect(first).toMatchObject({ message: { execute: "guest-ping" } })
      // Nothing else comes until the first is answered.
      expect(yield* Effect.timeoutOption(agent.read, "100 millis")).toMatchObject({ _tag: "None" })
      yield* agent.write(JSON.stringify({ return: {}, id: (first as any).message.id }) + "\n")
      yield* answer(agent, { return: { version: "x" } })
      expect(yield* Fiber.join(a)).toEqual({})
      expect(yield* Fiber.join(b)).toEqual({ version: "x" })
    }))

  it.scopedLive("an agent that never answers guest-sync-delimited: QmpConnectError NoSync", () =>
    Effect.gen(function*() {
      const agent = yield* fakeAgent
      const error = yield* Effect.flip(GuestAgent.make({ path: agent.path }, { connectTimeout: "300 millis" }))
      expect(error).toMatchObject({ _tag: "QmpConnectError", reason: "NoSync" })
      expect(error.message).toContain("did not answer guest-sync-delimited")
    }))
})
