/**
 * `QmpTestServer` is a QMP server in your own process, on a real Unix socket (in a fresh temporary
 * directory) or on TCP (127.0.0.1, a free port), for tests and demos that have no QEMU at hand.
 *
 * It speaks QMP as QEMU 7.2 does, and a conformance suite holds it to that against a real QEMU:
 *
 * - it reads a JSON stream as QEMU's parser does, not lines: a command needs no newline, several may
 *   share a line and one may span several; malformed input gets QEMU's parse errors (without an `id`);
 *   a message not finished when the client hangs up is dropped;
 * - it writes as QEMU writes: members in QEMU's order, non-ASCII as `\uXXXX`, an `id` echoed exactly
 *   as it was read (`12345678901234567890` stays exact); on a pretty monitor (`pretty`), one member
 *   per line;
 * - the greeting, the `qmp_capabilities` gate, `exec-oob`, the error classes and descriptions, the
 *   order in which QEMU checks a command's members;
 * - a small `-machine none` VM behind the default commands: `query-status`, `stop`/`cont` with
 *   STOP/RESUME before the return, `quit` with SHUTDOWN and a hang-up, `null-co` block nodes,
 *   `blockdev-backup` jobs whose JOB_STATUS_CHANGE lifecycle, drains and `query-jobs` look like
 *   QEMU's (over real time when the job has a `speed`), and `human-monitor-command` for
 *   `info status`, `info version`, `help` and a few more.
 *
 * Where it differs on purpose, `differences` says so. Add or replace commands with `handle`; send
 * events with `emit`; see what the client sent with `commands` and `nextCommand`; and break things on
 * purpose: raw bytes, a line longer than any limit written as fast as the client reads it, a stall,
 * a hang-up, a server that never greets.
 *
 * The server never asserts anything itself (an assertion in a socket callback cannot fail a test):
 * what it observes reaches the test through Effects.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { QmpClient, QmpEvents } from "effect-qmp"
 * import * as QmpTestServer from "effect-qmp/testing/QmpTestServer"
 *
 * const program = Effect.gen(function*() {
 *   const server = yield* QmpTestServer.QmpTestServer
 *   yield* server.handle("guest-ping", (args, ctx) =>
 *     Effect.as(ctx.emit("PONG", { echo: args.text }), { pong: true }))
 *   const qmp = yield* QmpClient.QmpClient
 *   const events = yield* QmpEvents.QmpEvents
 *   const pongs = yield* events.listener("PONG")
 *   yield* qmp.execute("guest-ping", { text: "hi" })   // { pong: true }
 *   return yield* pongs.take                           // PONG came before the return
 * })
 *
 * program.pipe(Effect.scoped, Effect.provide(QmpTestServer.layerWithClient()))
 * ```
 *
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Differences from "../internal/testServer/differences.js"
import * as Dispatch from "../internal/testServer/dispatch.js"
import type { Input } from "../internal/testServer/link.js"
import { Link } from "../internal/testServer/link.js"
import * as Vm from "../internal/testServer/vm.js"
import * as Wire from "../internal/testServer/wire.js"
import type { QmpAddress } from "../QmpAddress.js"
import * as QmpClient from "../QmpClient.js"
import type { QmpConnectError, QmpNegotiationError } from "../QmpError.js"
import type * as QmpEvents from "../QmpEvents.js"
import * as QmpMessage from "../QmpMessage.js"

/**
 * A way in which `QmpTestServer` differs from QEMU 7.2 on purpose, and why.
 *
 * @since 0.1.0
 * @category models
 */
export interface Difference extends Differences.Difference {}

/**
 * Where `QmpTestServer` differs from QEMU 7.2 on purpose, each with its reason (the README shows
 * this list). In everything else it answers as QEMU does, which the conformance suite checks against
 * a real QEMU.
 *
 * @since 0.1.0
 * @category constants
 */
export const differences: ReadonlyArray<Difference> = Differences.differences

/**
 * The run state of the server's VM, as `query-status` reports it.
 *
 * @since 0.1.0
 * @category models
 */
export type RunState = "running" | "paused" | "prelaunch"

/**
 * Options of a server.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `"unix"` (default): a socket in a fresh temporary directory, removed with the server; `"tcp"`: 127.0.0.1. */
  readonly transport?: "unix" | "tcp" | undefined
  /** The QEMU version in the greeting and `query-version`: 7.2.0 by default. */
  readonly version?: { readonly major: number; readonly minor: number; readonly micro: number } | undefined
  /** The `package` string of the greeting and `query-version`. */
  readonly package?: string | undefined
  /** The capabilities the greeting offers: `["oob"]` by default, as QEMU. */
  readonly capabilities?: ReadonlyArray<string> | undefined
  /**
   * Replaces the greeting: `false` never greets (as QEMU does to a second client, and as a hung QEMU
   * does); a string or bytes are written as they are (a greeting that is not JSON: add the newline
   * yourself); an object is written as a JSON line (a greeting that is not QMP).
   */
  readonly greeting?: false | string | Uint8Array | Readonly<Record<string, unknown>> | undefined
  /** The VM's initial run state: `"running"` by default; `"prelaunch"` is QEMU's `-S`. */
  readonly status?: RunState | undefined
  /**
   * Serve one client at a time, as QEMU does (default `true`): a second client is accepted but gets
   * no greeting, and is not read, until the first has gone. `false` serves every client at once.
   */
  readonly exclusive?: boolean | undefined
  /**
   * Write as QEMU's pretty monitor does (`-mon chardev=...,mode=control,pretty=on`): each message
   * over several lines, four spaces per level. `false` by default.
   */
  readonly pretty?: boolean | undefined
}

/**
 * A command the server received, as it was read (before the negotiation gate and any check).
 *
 * @since 0.1.0
 * @category models
 */
export interface ReceivedCommand {
  /** The connection it came on: 1 for the first client, 2 for the next, ... */
  readonly connection: number
  /** The value of `execute`, or of `exec-oob`. */
  readonly command: string
  readonly arguments: Readonly<Record<string, unknown>> | undefined
  /** The `id` the client gave, `undefined` if none. */
  readonly id: unknown
  /** `true` if it came as `exec-oob`. */
  readonly oob: boolean
  /** The message as received. */
  readonly message: Readonly<Record<string, unknown>>
}

/**
 * Bytes to write as they are: a string (written as UTF-8) or bytes.
 *
 * @since 0.1.0
 * @category models
 */
export type RawData = string | Uint8Array

/**
 * An error reply: its class (`GenericError`, `CommandNotFound`, `DeviceNotActive`, ...) and description.
 *
 * @since 0.1.0
 * @category models
 */
export interface CommandError {
  readonly class: string
  readonly desc: string
}

/**
 * A `GenericError`, the class of most of QEMU's errors.
 *
 * @since 0.1.0
 * @category constructors
 */
export const genericError = (desc: string): CommandError => Wire.genericError(desc)

/**
 * What a command handler can do besides returning its result.
 *
 * @since 0.1.0
 * @category models
 */
export interface HandlerContext {
  readonly command: ReceivedCommand
  /** The client that sent the command: for faults aimed at it (`raw`, `hangUp`, ...). */
  readonly connection: Connection
  readonly server: Service
  /** Emits an event to every negotiated client, now: before this command's reply. */
  readonly emit: Service["emit"]
  /**
   * Writes the reply `{"return": result, "id": ...}` now, so that the handler can go on after it
   * (events after the reply, a hang-up); what the handler returns is then dropped.
   */
  readonly reply: (result: unknown) => Effect.Effect<void>
  /**
   * Writes `message`, as a JSON line, in place of the reply: a malformed reply, or a reply with
   * another `id`. What the handler returns is then dropped.
   */
  readonly replyRaw: (message: unknown) => Effect.Effect<void>
  /** No reply at all, whatever the handler returns: the client waits (until its timeout). */
  readonly noReply: Effect.Effect<void>
  /**
   * Runs `effect` in the background, in the server's scope (interrupted when the server closes):
   * what happens after the reply.
   */
  readonly fork: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<void>
}

/**
 * A command handler: given the command's arguments (`{}` when there are none), it succeeds with the
 * `return` value (`undefined` gives `{}`) or fails with the error to reply. Events it emits go out
 * before its reply. In-band commands are handled one at a time per client, in order, as QEMU does;
 * `exec-oob` ones on their own, at once.
 *
 * @since 0.1.0
 * @category models
 */
export type Handler = (
  args: Readonly<Record<string, unknown>>,
  context: HandlerContext
) => Effect.Effect<unknown, CommandError>

/**
 * A handler that never replies: the client's call waits, and the test answers it (or not) by hand
 * with `send`, after `nextCommand`.
 *
 * @since 0.1.0
 * @category handlers
 */
export const silent: Handler = (_, context) => context.noReply

/**
 * @since 0.1.0
 * @category models
 */
export interface HandleOptions {
  /** The command may run out of band (`exec-oob`): `false` by default, as for most of QEMU's commands. */
  readonly oob?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RawOptions {
  /** Between the writes of an array of pieces: 20 ms by default. */
  readonly delay?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PumpOptions {
  /** Runs after the n-th chunk was handed to the socket (to sample memory, say). Keep it quick. */
  readonly onChunk?: ((n: number) => void) | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface LongLineOptions {
  /** The size of each write: 1 MiB by default. */
  readonly chunkSize?: number | undefined
  /** Runs after each chunk was handed to the socket, with the bytes written so far. Keep it quick. */
  readonly onChunk?: ((written: number) => void) | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface StallOptions {
  /** Release by itself after this long; without it, the stall lasts until `release`. */
  readonly duration?: Duration.DurationInput | undefined
}

/**
 * One client's connection. Writes complete once the data is handed to the kernel, and never fail:
 * on a closed connection they do nothing.
 *
 * @since 0.1.0
 * @category models
 */
export interface Connection {
  /** 1 for the first client, 2 for the next, ... */
  readonly id: number
  /** `true` once the client has negotiated: it receives events from then on. */
  readonly negotiated: Effect.Effect<boolean>
  readonly isOpen: Effect.Effect<boolean>
  /** Completes when the connection has closed, whichever side closed it. */
  readonly closed: Effect.Effect<void>
  /** Writes each message as a JSON line (`\r\n`, as QEMU), all in one write. */
  readonly send: (...messages: ReadonlyArray<unknown>) => Effect.Effect<void>
  /**
   * Writes bytes as they are. An array is written piece by piece, `delay` apart, so that the client
   * reads the pieces as separate chunks: a multi-byte character split across two writes, a line in
   * pieces.
   */
  readonly raw: (data: RawData | ReadonlyArray<RawData>, options?: RawOptions) => Effect.Effect<void>
  /**
   * Writes `chunk` `count` times as fast as the client reads it (waiting for `drain` whenever the
   * socket's buffer is full, so that the server holds one chunk at most), or until the connection
   * closes. Gives the number of chunks handed to the socket.
   */
  readonly pump: (chunk: RawData, count: number, options?: PumpOptions) => Effect.Effect<number>
  /**
   * Writes `bytes` bytes of a line that never ends (no newline), in drained chunks as `pump`, or
   * until the connection closes (a client rejecting the line hangs up). Gives the bytes handed to
   * the socket.
   */
  readonly writeLongLine: (bytes: number, options?: LongLineOptions) => Effect.Effect<number>
  /**
   * Stops reading from this client and answering it (its commands wait, unread) until `release`,
   * or for `duration`. Events still go out.
   */
  readonly stall: (options?: StallOptions) => Effect.Effect<void>
  readonly release: Effect.Effect<void>
  /** Ends the stream after what was written: the client reads the rest, then the end. */
  readonly hangUp: Effect.Effect<void>
  /** Closes at once: what was not written yet is dropped. */
  readonly destroy: Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** Where to connect: `{ path }` or `{ host, port }`. */
  readonly address: QmpAddress
  /** The greeting the server sends, when it is a QMP greeting. */
  readonly greeting: QmpMessage.Greeting | undefined
  /**
   * Adds a command, or replaces one (a default one too), from the next command on. A handler for
   * `qmp_capabilities` replaces the negotiation: the client is negotiated once the handler's reply
   * (not an error) is written, with `oob` if it asked for it; after that, `qmp_capabilities` gets
   * QEMU's "already complete" error whatever the handler.
   */
  readonly handle: (command: string, handler: Handler, options?: HandleOptions) => Effect.Effect<void>
  /**
   * Emits an event to every negotiated client (QEMU buffers no events for later clients), given by
   * name and data with the current time as its timestamp, or whole. Completes once it is handed to
   * the kernel for each of them.
   */
  readonly emit: (
    event: string | QmpMessage.QmpEvent,
    data?: Readonly<Record<string, unknown>>
  ) => Effect.Effect<void>
  /** Emits events in order, in one write per client. */
  readonly emitAll: (events: Iterable<QmpMessage.QmpEvent>) => Effect.Effect<void>
  /** Every command received so far, oldest first. */
  readonly commands: Effect.Effect<ReadonlyArray<ReceivedCommand>>
  /** The next command received that `nextCommand` has not given yet (waits for it): each command once. */
  readonly nextCommand: Effect.Effect<ReceivedCommand>
  /** The next connection that `accept` has not given yet (waits for it): each connection once. */
  readonly accept: Effect.Effect<Connection>
  /** The connections open now (a client waiting for its greeting included). */
  readonly connections: Effect.Effect<ReadonlyArray<Connection>>
  /** The VM's run state. */
  readonly status: Effect.Effect<RunState>
  /** `send` to every open connection. */
  readonly send: (...messages: ReadonlyArray<unknown>) => Effect.Effect<void>
  /** `raw` to every open connection. */
  readonly raw: (data: RawData | ReadonlyArray<RawData>, options?: RawOptions) => Effect.Effect<void>
  /** Stalls every connection, those that come later included, until `release` or for `duration`. */
  readonly stall: (options?: StallOptions) => Effect.Effect<void>
  /** Ends a server-wide `stall`. */
  readonly release: Effect.Effect<void>
  /** `hangUp` on every open connection. */
  readonly hangUp: Effect.Effect<void>
  /** `destroy` on every open connection. */
  readonly destroy: Effect.Effect<void>
}

/**
 * The `QmpTestServer` service.
 *
 * @since 0.1.0
 * @category tags
 */
export class QmpTestServer extends Context.Tag("effect-qmp/QmpTestServer")<QmpTestServer, Service>() {}

/**
 * The greeting of QEMU 7.2, offering `capabilities` (members in QAPI's order; the server writes them in QEMU's).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeGreeting = (options: {
  readonly version?: { readonly major: number; readonly minor: number; readonly micro: number } | undefined
  readonly package?: string | undefined
  readonly capabilities?: ReadonlyArray<string> | undefined
} = {}): QmpMessage.Greeting => {
  const version = options.version ?? defaultVersion
  return {
    QMP: {
      version: {
        qemu: { major: version.major, minor: version.minor, micro: version.micro },
        package: options.package ?? defaultPackage
      },
      capabilities: options.capabilities ?? ["oob"]
    }
  }
}

const defaultVersion = { major: 7, minor: 2, micro: 0 }
const defaultPackage = "effect-qmp QmpTestServer"
const MiB = 1024 * 1024
const toBytes = (data: RawData): Uint8Array => typeof data === "string" ? Buffer.from(data) : data

/**
 * Starts a server in the current scope. Closing the scope closes every connection, stops listening,
 * and removes the temporary directory.
 *
 * Its default commands answer as QEMU 7.2 with `-machine none` does (events before the return where
 * QEMU sends them so):
 *
 * - `query-status`; `stop` (STOP), `cont` (RESUME), each only when the run state changes;
 *   `system_reset` (RESET), `system_powerdown` (POWERDOWN); `query-version`, `query-commands`,
 *   `query-yank` (out of band too).
 * - `quit`: SHUTDOWN, the jobs left cancelled, the return, then every client hung up and nothing
 *   listening any more, as when QEMU exits.
 * - `blockdev-add` and `blockdev-del` for `null-co` and `null-aio` nodes (1 GiB unless `size` is given).
 * - `blockdev-backup` between two nodes of the same size: JOB_STATUS_CHANGE created, running (and
 *   the drain's paused, running), then, at once without `speed` or over real time at `speed` bytes
 *   per second, waiting, pending, BLOCK_JOB_COMPLETED, concluded and null (with `auto-finalize` or
 *   `auto-dismiss` off, BLOCK_JOB_PENDING and a wait for `job-finalize`, `job-dismiss`);
 *   `query-jobs` and `query-block-jobs` show its progress; `job-pause`, `job-resume`, `job-cancel`,
 *   `job-finalize`, `job-dismiss`, `block-job-pause`, `block-job-resume`, `block-job-cancel`,
 *   `block-job-set-speed` drive it; `stop` and a new job drain the running ones (paused, then
 *   running again), as QEMU's block layer does.
 * - `human-monitor-command`: `info status`, `info version`, `help`, `stop`, `cont`, `quit`,
 *   `system_reset`, `system_powerdown`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const transport = options.transport ?? "unix"
    const exclusive = options.exclusive ?? true
    const capabilities = options.capabilities ?? ["oob"]
    const wire = Wire.make(options.pretty ?? false)
    const greeting: unknown = options.greeting ??
      makeGreeting({ version: options.version, package: options.package, capabilities })
    const greetingBytes: RawData | undefined = greeting === false ?
      undefined :
      typeof greeting === "string" || greeting instanceof Uint8Array ?
      greeting :
      wire.message(greeting)
    // The greeting as a client reads it, when it is a QMP greeting: its capabilities are the ones offered.
    const qmpGreeting = options.greeting === undefined ?
      greeting as QmpMessage.Greeting :
      typeof greeting === "object" && !(greeting instanceof Uint8Array) ?
      Option.getOrUndefined(Schema.decodeUnknownOption(QmpMessage.Greeting)(greeting)) :
      undefined
    const offered = qmpGreeting?.QMP.capabilities ?? capabilities

    const scope = yield* Effect.scope
    const fork = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<void> =>
      Effect.asVoid(Effect.forkIn(Effect.interruptible(effect), scope))

    // Listening: a socket in a fresh temporary directory, or a free TCP port.
    const dir = transport === "unix" ?
      yield* Effect.acquireRelease(
        Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-qmp-server-"))),
        (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
      ) :
      undefined
    const incoming = yield* Queue.unbounded<Net.Socket>()
    const sockets = new Set<Net.Socket>() // every socket accepted, touched only by the listener's callbacks
    const listener = yield* Effect.acquireRelease(
      Effect.async<Net.Server>((resume) => {
        // Half-open: a client that ends its side still gets the replies to what it sent before, as from QEMU.
        const server = Net.createServer({ allowHalfOpen: true }, (socket) => {
          sockets.add(socket)
          socket.on("close", () => sockets.delete(socket))
          incoming.unsafeOffer(socket)
        })
        server.once("error", (error) => resume(Effect.die(error)))
        const onListening = () => {
          server.on("error", () => {})
          resume(Effect.succeed(server))
        }
        if (dir !== undefined) server.listen(Path.join(dir, "qmp.sock"), onListening)
        else server.listen(0, "127.0.0.1", onListening)
      }),
      (server) =>
        Effect.async<void>((resume) => {
          for (const socket of sockets) socket.destroy()
          // After `quit`, nothing listens any more.
          if (!server.listening) return resume(Effect.void)
          server.close(() => resume(Effect.void))
        })
    )
    const address: QmpAddress = dir !== undefined ?
      { path: Path.join(dir, "qmp.sock") } :
      { host: "127.0.0.1", port: (listener.address() as Net.AddressInfo).port }

    const links = yield* Ref.make<ReadonlyArray<Link>>([])
    const log = yield* Ref.make(Chunk.empty<ReceivedCommand>())
    const ids = yield* Ref.make(0)
    const received = yield* Queue.unbounded<ReceivedCommand>()
    const accepted = yield* Queue.unbounded<Connection>()
    const serverStall = yield* Ref.make(false)
    const permit = yield* Effect.makeSemaphore(1)
    const exited = yield* Ref.make(false)

    const broadcast = (line: string): Effect.Effect<void> =>
      Effect.flatMap(Ref.get(links), (all) =>
        Effect.forEach(all, (link) =>
          link.negotiated ? link.write(line) : Effect.void, {
          concurrency: "unbounded",
          discard: true
        }))

    const emit = (event: string | QmpMessage.QmpEvent, data?: Readonly<Record<string, unknown>>) =>
      typeof event === "string" ?
        Effect.flatMap(Wire.now, (timestamp) =>
          broadcast(wire.event(data === undefined ? { event, timestamp } : { event, data, timestamp }))) :
        broadcast(wire.event(event))

    const emitAll = (events: Iterable<QmpMessage.QmpEvent>) =>
      Effect.suspend(() => {
        let text = ""
        for (const event of events) {
          text += wire.event(event)
        }
        return text === "" ? Effect.void : broadcast(text)
      })

    const each = (f: (link: Link) => Effect.Effect<void>): Effect.Effect<void> =>
      Effect.flatMap(Ref.get(links), (all) =>
        Effect.forEach(all, f, { concurrency: "unbounded", discard: true }))

    const handlers = yield* Ref.make<ReadonlyMap<string, Dispatch.Registration>>(new Map())

    const vm = yield* Vm.make({
      status: options.status ?? "running",
      version: options.version ?? defaultVersion,
      package: options.package ?? defaultPackage,
      emit: (event, data) =>
        emit(event, data),
      commandNames: Effect.map(Ref.get(handlers), (map) => ["qmp_capabilities", ...map.keys()]),
      // QEMU exits after quit's reply: every client sees the end, and nothing listens any more.
      exit: Effect.zipRight(
        Ref.set(exited, true),
        Effect.sync(() => {
          listener.close()
          for (const socket of sockets) {
            socket.end()
          }
        })
      )
    })
    yield* Ref.set(handlers, new Map(vm.handlers.map((registration) => [registration.name, registration])))

    const service: Service = {
      address,
      greeting: qmpGreeting,
      handle: (name, handler, handleOptions) =>
        Ref.update(handlers, (map) =>
          new Map(map).set(name, { name, handler, oob: handleOptions?.oob ?? false })),
      emit,
      emitAll,
      commands: Effect.map(Ref.get(log), Chunk.toReadonlyArray),
      nextCommand: Queue.take(received),
      accept: Queue.take(accepted),
      connections: Effect.map(Ref.get(links), (all) => all.map(connectionOf)),
      status: vm.status,
      send: (...messages) => Effect.suspend(() => each((link) => link.write(wire.lines(messages)))),
      raw: (data, rawOptions) => each((link) => link.raw(data, rawOptions?.delay ?? defaultDelay)),
      stall: (stallOptions) =>
        Effect.zipRight(
          Effect.zipRight(Ref.set(serverStall, true), each((link) => Effect.sync(() => link.stall(false)))),
          releaseLater(stallOptions, service.release)
        ),
      release: Effect.zipRight(Ref.set(serverStall, false), each((link) => Effect.sync(() => link.release(false)))),
      hangUp: each((link) => Effect.sync(() => link.hangUp())),
      destroy: each((link) => Effect.sync(() => link.destroy()))
    }

    const releaseLater = (stallOptions: StallOptions | undefined, release: Effect.Effect<void>) =>
      stallOptions?.duration === undefined ? Effect.void : fork(Effect.delay(release, stallOptions.duration))

    const facades = new WeakMap<Link, Connection>()
    function connectionOf(link: Link): Connection {
      const existing = facades.get(link)
      if (existing !== undefined) return existing
      const connection: Connection = {
        id: link.id,
        negotiated: Effect.sync(() => link.negotiated),
        isOpen: Effect.sync(() => link.isOpen),
        closed: link.closed,
        send: (...messages) => Effect.suspend(() => link.write(wire.lines(messages))),
        raw: (data, rawOptions) => link.raw(data, rawOptions?.delay ?? defaultDelay),
        pump: (chunk, count, pumpOptions) => {
          const bytes = toBytes(chunk)
          const onChunk = pumpOptions?.onChunk ?? (() => {})
          return link.pump((n) => n < count ? bytes : undefined, onChunk)
        },
        writeLongLine: (bytes, lineOptions) =>
          Effect.suspend(() => {
            const size = Math.max(1, Math.min(lineOptions?.chunkSize ?? MiB, bytes))
            const chunk = Buffer.alloc(size, 0x61)
            const chunks = Math.ceil(bytes / size)
            const onChunk = lineOptions?.onChunk
            const writtenAfter = (n: number) => Math.min(bytes, n * size)
            return Effect.map(
              link.pump(
                (n) => n < chunks - 1 ? chunk : n === chunks - 1 ? chunk.subarray(0, bytes - n * size) : undefined,
                (n) => onChunk?.(writtenAfter(n))
              ),
              writtenAfter
            )
          }),
        stall: (stallOptions) =>
          Effect.zipRight(Effect.sync(() => link.stall(true)), releaseLater(stallOptions, connection.release)),
        release: Effect.sync(() => link.release(true)),
        hangUp: Effect.sync(() => link.hangUp()),
        destroy: Effect.sync(() => link.destroy())
      }
      facades.set(link, connection)
      return connection
    }

    const { dispatch } = Dispatch.make({
      wire,
      handlers: Ref.get(handlers),
      offered,
      context: (link) => ({ connection: connectionOf(link), server: service, emit, fork })
    })

    /** One client, from its greeting to its end. */
    const serve = (link: Link, inputs: Queue.Dequeue<Input>): Effect.Effect<void, never, Scope.Scope> =>
      Effect.gen(function*() {
        link.start()
        if (greetingBytes !== undefined) yield* link.write(greetingBytes)
        const inBand = yield* Queue.unbounded<readonly [Input, ReceivedCommand | undefined]>()
        const outOfBand = yield* Queue.unbounded<readonly [Input, ReceivedCommand | undefined]>()
        const worker = (queue: Queue.Queue<readonly [Input, ReceivedCommand | undefined]>) =>
          Queue.take(queue).pipe(
            Effect.flatMap(([input, command]) =>
              Effect.zipRight(
                link.latch.await,
                // The client's input ended: what it sent before has been answered; QEMU then closes.
                input._tag === "End" ? Effect.sync(() => link.hangUp()) : dispatch(link, input, command)
              )
            ),
            Effect.forever,
            Effect.forkScoped
          )
        yield* worker(inBand)
        yield* worker(outOfBand)
        // Every message read is recorded in order, then goes to its queue: exec-oob ones jump the queue.
        yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
          const input = yield* Queue.take(inputs)
          const command = Dispatch.commandOf(link, input)
          if (command !== undefined) {
            yield* Ref.update(log, Chunk.append(command))
            yield* Queue.offer(received, command)
          }
          yield* Queue.offer(Dispatch.isOutOfBand(input) ? outOfBand : inBand, [input, command])
        })))
        yield* link.closed
      })

    const onSocket = (socket: Net.Socket): Effect.Effect<void> =>
      Effect.gen(function*() {
        if (yield* Ref.get(exited)) {
          socket.destroy()
          return
        }
        const inputs = yield* Queue.unbounded<Input>()
        const link = new Link(yield* Ref.updateAndGet(ids, (n) => n + 1), socket, inputs)
        yield* Effect.addFinalizer(() =>
          Effect.zipRight(
            Ref.update(links, (all) => all.filter((l) => l !== link)),
            Effect.sync(() => link.destroy())
          )
        )
        yield* Ref.update(links, (all) => [...all, link])
        // Registered first, then the server-wide stall applied: a `stall` or `release` running meanwhile
        // sees this link too, so the two agree whatever the order.
        if (yield* Ref.get(serverStall)) link.stall(false)
        yield* Queue.offer(accepted, connectionOf(link))
        yield* Effect.logDebug("client connected").pipe(Effect.annotateLogs("connection", link.id))
        const session = Effect.scoped(serve(link, inputs))
        yield* exclusive ? permit.withPermits(1)(session) : session
        yield* Effect.logDebug("client gone").pipe(Effect.annotateLogs("connection", link.id))
      }).pipe(Effect.scoped)

    const fibers = yield* FiberSet.make()
    yield* Queue.take(incoming).pipe(
      Effect.flatMap((socket) => FiberSet.run(fibers, onSocket(socket))),
      Effect.forever,
      Effect.forkScoped
    )

    return QmpTestServer.of(service)
  }).pipe(Effect.annotateLogs({ module: "QmpTestServer" }))

const defaultDelay: Duration.Duration = Duration.millis(20)

/**
 * A server as a layer, for `it.layer` or `Effect.provide`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<QmpTestServer> => Layer.scoped(QmpTestServer, make(options))

/**
 * A server and a `QmpClient` connected to it (with its `QmpEvents` registry): all three services,
 * for tests and demos that need no QEMU.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWithClient = (
  options?: Options,
  clientOptions?: QmpClient.Options
): Layer.Layer<
  QmpTestServer | QmpClient.QmpClient | QmpEvents.QmpEvents,
  QmpConnectError | QmpNegotiationError
> =>
  Layer.unwrapEffect(
    Effect.map(QmpTestServer, (server) => QmpClient.layer(server.address, clientOptions))
  ).pipe(Layer.provideMerge(layer(options)))
