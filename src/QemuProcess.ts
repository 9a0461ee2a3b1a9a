/**
 * A QEMU started for a scope, with a QMP connection to it.
 *
 * `QemuProcess.layer()` launches `qemu-system-x86_64` with a QMP socket in a fresh temporary
 * directory (or on a free TCP port of 127.0.0.1), waits for the socket, connects, and provides
 * `QemuProcess`, `QmpClient` and `QmpEvents`. Closing the scope stops QEMU for sure: `quit` over
 * QMP, then SIGTERM, then SIGKILL, each phase waiting up to `stopTimeout` for the exit; the
 * temporary directory is removed. This is `qemu.machine.QEMUMachine` of QEMU's Python tree.
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Command from "@effect/platform/Command"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Net from "node:net"
import * as Path from "node:path"
import { OutputTail } from "./internal/outputTail.js"
import type { QmpAddress } from "./QmpAddress.js"
import * as QmpClient from "./QmpClient.js"
import { QemuProcessError } from "./QmpError.js"
import type { QmpConnectError, QmpNegotiationError } from "./QmpError.js"
import * as QmpEvents from "./QmpEvents.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** QEMU's process id. */
  readonly pid: number
  /** Where its QMP socket listens. */
  readonly address: QmpAddress
  /** The tail of what QEMU wrote on stderr and stdout (the last 64 KiB). */
  readonly stderr: Effect.Effect<string>
  /** The connection to it. */
  readonly client: QmpClient.Service
  /** Waits for QEMU to exit, and gives its exit code, or the signal that ended it (`"SIGKILL"`). */
  readonly exited: Effect.Effect<number | NodeJS.Signals>
}

/**
 * The `QemuProcess` service.
 *
 * @since 0.1.0
 * @category tags
 */
export class QemuProcess extends Context.Tag("effect-qmp/QemuProcess")<QemuProcess, Service>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The QEMU binary: `qemu-system-x86_64` by default. */
  readonly binary?: string | undefined
  /** Its arguments, without `-qmp`: `-machine none -display none -nodefaults` by default. */
  readonly args?: ReadonlyArray<string> | undefined
  /** A Unix socket in a fresh temporary directory (the default), or TCP on a free port of 127.0.0.1. */
  readonly qmp?: "unix" | "tcp" | undefined
  /** How long each phase of stopping (quit, SIGTERM, SIGKILL) waits for the exit: 5 s by default. */
  readonly stopTimeout?: Duration.DurationInput | undefined
  /** How long QEMU may take to open its QMP socket: 10 s by default. */
  readonly startTimeout?: Duration.DurationInput | undefined
  /** Options of the QMP connection. */
  readonly client?: QmpClient.Options | undefined
}

/**
 * The arguments used when none are given: a machine with nothing in it, and no window.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultArgs: ReadonlyArray<string> = ["-machine", "none", "-display", "none", "-nodefaults"]

/** A TCP port that was free a moment ago. QEMU binds it right away; a collision fails the start loudly. */
const freePort: Effect.Effect<number, QemuProcessError> = Effect.async((resume) => {
  const server = Net.createServer()
  server.once(
    "error",
    (error) => resume(Effect.fail(new QemuProcessError({ reason: "SpawnFailed", detail: error.message, stderr: "" })))
  )
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as Net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** QEMU's option syntax: a comma in a value is written twice. */
const qemuOptionValue = (value: string) => value.replaceAll(",", ",,")

/**
 * Starts QEMU for the current scope and connects to it. The connection feeds the `QmpEvents` in the
 * context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<
  Service,
  QemuProcessError | QmpConnectError | QmpNegotiationError,
  Scope.Scope | QmpEvents.QmpEvents | CommandExecutor.CommandExecutor | FileSystem.FileSystem
> =>
  Effect.gen(function*() {
    const binary = options.binary ?? "qemu-system-x86_64"
    const stopTimeout = options.stopTimeout ?? Duration.seconds(5)
    const fs = yield* FileSystem.FileSystem
    // Removed last, once QEMU has stopped: scope finalizers run in reverse order.
    const directory = yield* fs.makeTempDirectoryScoped({ prefix: "effect-qmp-" }).pipe(
      Effect.mapError((error) => new QemuProcessError({ reason: "SpawnFailed", detail: error.message, stderr: "" }))
    )
    const address: QmpAddress = options.qmp === "tcp"
      ? { host: "127.0.0.1", port: yield* freePort }
      : { path: Path.join(directory, "qmp.sock") }
    const qmpArg = "path" in address
      ? `unix:${qemuOptionValue(address.path)},server=on,wait=off`
      : `tcp:${address.host}:${address.port},server=on,wait=off`

    const args = [...(options.args ?? defaultArgs), "-qmp", qmpArg]
    const process = yield* Command.make(binary, ...args).pipe(
      Command.start,
      Effect.mapError((error) =>
        new QemuProcessError({
          reason: error._tag === "SystemError" && error.reason === "NotFound" ? "NotFound" : "SpawnFailed",
          detail: `${binary}: ${error.message}`,
          stderr: ""
        })
      )
    )
    const pid = process.pid as number
    // QEMU runs in a process group of its own (the platform's Command detaches it), so a terminal's
    // Ctrl-C does not reach it: with NodeRuntime.runMain the scope closes and stops it. Should this
    // process exit without closing the scope (process.exit, an uncaught exception), kill QEMU anyway.
    const killOnExit = () => {
      try {
        globalThis.process.kill(-pid, "SIGKILL")
      } catch {
        // gone already
      }
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => globalThis.process.once("exit", killOnExit)),
      () => Effect.sync(() => globalThis.process.off("exit", killOnExit))
    )

    // Keep the tail of QEMU's output, for errors and for `stderr`. These readers are forked while
    // the process is being acquired, so they must be made interruptible or they would block cleanup.
    const output = new OutputTail(64 * 1024)
    const readers = yield* Effect.forkScoped(Effect.interruptible(
      Effect.all(
        [process.stderr, process.stdout].map((stream) =>
          Stream.runForEach(stream, (chunk) => Effect.sync(() => output.push(chunk))).pipe(Effect.ignore)
        ),
        { concurrency: 2, discard: true }
      )
    ))
    // `exitCode` fails when a signal ended the process; its message is the only place that names it.
    const exitStatus: Effect.Effect<number | NodeJS.Signals> = process.exitCode.pipe(
      Effect.catchAll((error) =>
        Effect.succeed((/signal: (SIG[A-Z0-9]+)/.exec(error.message)?.[1] ?? "SIGKILL") as NodeJS.Signals)
      )
    )
    const exited = Effect.asVoid(exitStatus)

    // `true` while QEMU runs (a process whose state cannot be read counts as gone).
    const stillRunning = process.isRunning.pipe(Effect.orElseSucceed(() => false))
    // Sends a signal and waits up to `stopTimeout` for the exit (`kill` itself waits for it); `true`
    // once QEMU has exited.
    const signal = (name: "SIGTERM" | "SIGKILL") =>
      process.kill(name).pipe(
        Effect.timeoutOption(stopTimeout),
        Effect.map(Option.isSome),
        Effect.orElse(() => Effect.negate(stillRunning))
      )

    // The stop sequence runs whole in a fiber of its own: a finalizer of an interrupted scope runs in
    // the interrupted fiber, where any interruptible region (a timeout, a race) would end at once.
    // Each phase (quit, SIGTERM, SIGKILL) waits up to `stopTimeout` in all.
    const stopWith = (quit: Effect.Effect<unknown, unknown>) =>
      Effect.gen(function*() {
        if (!(yield* stillRunning)) return
        const quitted = yield* quit.pipe(Effect.zipRight(exited), Effect.timeoutOption(stopTimeout), Effect.option)
        if (Option.isSome(quitted) && Option.isSome(quitted.value)) return
        yield* Effect.logDebug("QEMU did not quit: sending SIGTERM")
        if (yield* signal("SIGTERM")) return
        yield* Effect.logWarning("QEMU ignored SIGTERM: sending SIGKILL")
        if (!(yield* signal("SIGKILL"))) yield* Effect.logError("QEMU survived SIGKILL")
      }).pipe(
        Effect.annotateLogs({ module: "QemuProcess", pid }),
        // A fiber forked from a finalizer inherits its uninterruptibility: the timeouts above need it back.
        Effect.interruptible,
        Effect.forkDaemon,
        Effect.flatMap(Fiber.await)
      )
    // Registered right after the start, so that a failed connect still stops QEMU (without QMP).
    yield* Effect.addFinalizer(() => stopWith(Effect.fail("no QMP connection")))

    const tail = Effect.sync(() => output.toString())
    const startTimeout = options.startTimeout ?? Duration.seconds(10)
    const exitedEarly = Effect.gen(function*() {
      yield* exited
      // Let the readers take what QEMU wrote before it exited.
      yield* Fiber.await(readers).pipe(Effect.timeoutOption("500 millis"))
      return yield* new QemuProcessError({
        reason: "ExitedEarly",
        detail: `${binary} exited before its QMP socket was ready`,
        stderr: output.toString()
      })
    })
    // The socket appears (or the port opens) a moment after the start: retry "not there yet" only.
    // QEMU may create the socket before it has parsed all of its options, so the connect races the exit.
    const connect = QmpClient.make(address, options.client).pipe(
      Effect.retry({
        schedule: Schedule.spaced("20 millis"),
        while: (error) =>
          error._tag === "QmpConnectError" && (error.reason === "NotFound" || error.reason === "Refused")
      }),
      Effect.timeoutFail({
        duration: startTimeout,
        onTimeout: () =>
          new QemuProcessError({
            reason: "NoSocket",
            detail: `no QMP socket at ${qmpArg} within ${Duration.format(startTimeout)}`,
            stderr: output.toString()
          })
      })
    )
    const client = yield* Effect.raceFirst(connect, exitedEarly)
    yield* Effect.addFinalizer(() => stopWith(client.execute("quit")))

    return QemuProcess.of({ pid, address, stderr: tail, client, exited: exitStatus })
  })

/**
 * QEMU for the lifetime of the layer, with its `QmpClient` and the `QmpEvents` it feeds.
 *
 * @example
 * ```ts
 * const program = Effect.gen(function*() {
 *   const qmp = yield* QmpClient.QmpClient
 *   console.log(yield* qmp.execute("query-status"))
 * })
 * program.pipe(Effect.provide(QemuProcess.layer()), Effect.runPromise)
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<
  QemuProcess | QmpClient.QmpClient | QmpEvents.QmpEvents,
  QemuProcessError | QmpConnectError | QmpNegotiationError
> =>
  Layer.scopedContext(Effect.gen(function*() {
    const events = yield* QmpEvents.make
    const qemu = yield* make(options).pipe(Effect.provideService(QmpEvents.QmpEvents, events))
    return Context.make(QemuProcess, qemu).pipe(
      Context.add(QmpClient.QmpClient, qemu.client),
      Context.add(QmpEvents.QmpEvents, events)
    )
  })).pipe(Layer.provide(NodeContext.layer))
