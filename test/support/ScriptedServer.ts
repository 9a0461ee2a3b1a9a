/**
 * A scripted QMP server for tests: a plain `net` server in the test's own process, on a Unix socket
 * in a fresh temporary directory. The test drives each connection step by step: what the client
 * sent (`receive`), what to write back (`send`, `write`), when to hang up (`end`, `destroy`).
 *
 * It never asserts anything itself (an assertion in a socket callback cannot fail a test): every
 * observation goes to the test through a `Queue` or an `Effect`.
 */
import { Deferred, Effect, Queue } from "effect"
import type { Scope } from "effect"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import type { QmpError } from "../../src/index.js"

export interface Connection {
  readonly socket: Net.Socket
  /** The next message the client sent, parsed. */
  readonly receive: Effect.Effect<Record<string, any>>
  /** Writes text or bytes; completes once the data is handed to the kernel. Fails if it cannot be written. */
  readonly write: (data: string | Uint8Array) => Effect.Effect<void, Error>
  /** Writes each message as a JSON line, all in one write. */
  readonly send: (...messages: ReadonlyArray<unknown>) => Effect.Effect<void, Error>
  /** Half-closes: the client sees the end of the stream. */
  readonly end: Effect.Effect<void>
  /** Closes at once. */
  readonly destroy: Effect.Effect<void>
  /** Completes when the client has hung up (or the socket closed). */
  readonly closed: Effect.Effect<void>
}

export interface Server {
  readonly address: QmpError.QmpAddress
  readonly dir: string
  /** The next connection a client opened. */
  readonly accept: Effect.Effect<Connection>
}

export const greeting = (capabilities: ReadonlyArray<string> = ["oob"]) => ({
  QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: "scripted" }, capabilities }
})

export const event = (name: string, data?: Record<string, unknown>) => ({
  event: name,
  ...(data === undefined ? {} : { data }),
  timestamp: { seconds: 1_700_000_000, microseconds: 0 }
})

const makeConnection = (socket: Net.Socket): Connection => {
  const received = Effect.runSync(Queue.unbounded<Record<string, any>>())
  const closed = Effect.runSync(Deferred.make<void>())
  let buffer = ""
  socket.setEncoding("utf8")
  socket.on("data", (text: string) => {
    buffer += text
    for (let newline = buffer.indexOf("\n"); newline !== -1; newline = buffer.indexOf("\n")) {
      const line = buffer.slice(0, newline)
      buffer = buffer.slice(newline + 1)
      if (line.trim() !== "") received.unsafeOffer(JSON.parse(line))
    }
  })
  socket.on("error", () => {})
  socket.on("close", () => Deferred.unsafeDone(closed, Effect.void))
  const write = (data: string | Uint8Array) =>
    Effect.async<void, Error>((resume) => {
      if (socket.destroyed || socket.writableEnded) return resume(Effect.fail(new Error("socket closed")))
      socket.write(data, (error) => resume(error ? Effect.fail(error) : Effect.void))
    })
  return {
    socket,
    receive: Queue.take(received),
    write,
    send: (...messages) => write(messages.map((message) => JSON.stringify(message) + "\r\n").join("")),
    end: Effect.sync(() => socket.end()),
    destroy: Effect.sync(() => socket.destroy()),
    closed: Deferred.await(closed)
  }
}

export const make: Effect.Effect<Server, never, Scope.Scope> = Effect.gen(function*() {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-qmp-scripted-"))),
    (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  )
  const path = Path.join(dir, "qmp.sock")
  const connections = yield* Queue.unbounded<Connection>()
  const sockets = new Set<Net.Socket>()
  const server = yield* Effect.acquireRelease(
    Effect.async<Net.Server>((resume) => {
      const server = Net.createServer((socket) => {
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
        connections.unsafeOffer(makeConnection(socket))
      })
      server.listen(path, () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.async<void>((resume) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resume(Effect.void))
      })
  )
  void server
  return { address: { path }, dir, accept: Queue.take(connections) }
})

/** Greets, answers `qmp_capabilities`, and gives what the client sent to negotiate. */
export const handshake = (
  connection: Connection,
  capabilities: ReadonlyArray<string> = ["oob"]
): Effect.Effect<Record<string, any>, Error> =>
  Effect.gen(function*() {
    yield* connection.send(greeting(capabilities))
    const negotiation = yield* connection.receive
    yield* connection.send({ return: {}, id: negotiation.id })
    return negotiation
  })

/** Writes a large buffer in chunks, each handed to the kernel before the next: gives the bytes written. */
export const writeDrained = (
  connection: Connection,
  total: number,
  chunkSize: number,
  afterEach: () => void = () => {}
): Effect.Effect<number> =>
  Effect.gen(function*() {
    const chunk = Buffer.alloc(chunkSize, 0x61)
    let written = 0
    while (written < total) {
      const ok = yield* Effect.either(connection.write(chunk))
      if (ok._tag === "Left") break
      written += chunkSize
      afterEach()
    }
    return written
  })

/**
 * Writes `block` `count` times as fast as the socket takes it: a plain Node loop that waits for
 * `drain` whenever the socket's buffer is full, so the server itself never holds more than a block.
 * Calls `onBlock(n)` after handing over the n-th block; gives the number of blocks handed over.
 */
export const pump = (
  connection: Connection,
  block: Uint8Array,
  count: number,
  onBlock: (n: number) => void = () => {}
): Effect.Effect<number> =>
  Effect.async<number>((resume) => {
    const socket = connection.socket
    let n = 0
    let finished = false
    const done = () => {
      if (finished) return
      finished = true
      socket.off("drain", next)
      socket.off("close", done)
      resume(Effect.succeed(n))
    }
    function next() {
      while (n < count) {
        if (socket.destroyed) return done()
        const more = socket.write(block)
        onBlock(++n)
        if (!more) {
          socket.once("drain", next)
          return
        }
      }
      done()
    }
    socket.once("close", done)
    next()
    return Effect.sync(done)
  })
