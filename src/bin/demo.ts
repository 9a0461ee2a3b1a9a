/**
 * The demo that `npm start` and `qmp demo` run: the event system of effect-qmp on a live QMP
 * connection, step by step, against a real QEMU when `qemu-system-x86_64` is on PATH and against the
 * built-in `QmpTestServer` otherwise.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { findOnPath } from "../internal/findOnPath.js"
import * as Jobs from "../Jobs.js"
import * as QemuProcess from "../QemuProcess.js"
import * as QmpClient from "../QmpClient.js"
import type { QemuProcessError, QmpConnectError, QmpNegotiationError } from "../QmpError.js"
import * as QmpEvents from "../QmpEvents.js"
import type * as QmpMessage from "../QmpMessage.js"
import * as QmpTestServer from "../testing/QmpTestServer.js"
import { withVerbosity } from "./connection.js"
import * as Output from "./output.js"
import * as Progress from "./progress.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `auto` (the default): QEMU when it is on PATH, else the built-in server. */
  readonly server?: "auto" | "qemu" | "builtin" | undefined
}

/** The width the demo keeps to. */
const columns = 80

const binaryName = "qemu-system-x86_64"

/** The job the demo follows: 16 MiB copied at 8 MiB/s, about two seconds. */
const jobSize = 16 * 1024 * 1024
const jobSpeed = 8 * 1024 * 1024

/** The QMP server the demo talks to, and how it ends after `quit`. */
interface Peer {
  readonly qmp: QmpClient.Service
  readonly events: QmpEvents.Service
  /** Says what the peer is, in lines of at most 80 columns. */
  readonly banner: ReadonlyArray<string>
  /** Waits until the peer is gone after `quit`, and says how it went. */
  readonly gone: Effect.Effect<string>
}

const qemuPeer: Effect.Effect<Peer, QemuProcessError | QmpConnectError | QmpNegotiationError, Scope.Scope> = Effect
  .gen(function*() {
    const context = yield* Layer.build(QemuProcess.layer())
    const qemu = Context.get(context, QemuProcess.QemuProcess)
    const { major, micro, minor } = qemu.client.greeting.QMP.version.qemu
    return {
      qmp: qemu.client,
      events: Context.get(context, QmpEvents.QmpEvents),
      banner: [
        `Peer: QEMU ${major}.${minor}.${micro} (pid ${qemu.pid}), started for this demo and stopped after it:`,
        `${binaryName} ${QemuProcess.defaultArgs.join(" ")}`
      ],
      gone: Effect.map(qemu.exited, (code) => `QEMU exited (${typeof code === "number" ? `code ${code}` : code})`)
    }
  })

const builtinPeer = (reason: string): Effect.Effect<Peer, QmpConnectError | QmpNegotiationError, Scope.Scope> =>
  Effect.gen(function*() {
    const context = yield* Layer.build(QmpTestServer.layerWithClient())
    const qmp = Context.get(context, QmpClient.QmpClient)
    return {
      qmp,
      events: Context.get(context, QmpEvents.QmpEvents),
      banner: [
        `Peer: the built-in QmpTestServer, which answers as QEMU 7.2 does`,
        `(${reason}). To see a real QEMU at work, install it:`,
        "apt-get install qemu-system-x86 (Debian, Ubuntu), dnf install qemu-system-x86",
        "(Fedora) or brew install qemu (macOS)."
      ],
      gone: Effect.as(qmp.closed, "the server closed the connection, as QEMU does")
    }
  })

const peerFor = (server: "auto" | "qemu" | "builtin") => {
  switch (server) {
    case "qemu":
      return qemuPeer
    case "builtin":
      return builtinPeer("chosen with --server builtin")
    case "auto":
      return findOnPath(binaryName) === undefined ? builtinPeer(`${binaryName} is not on PATH`) : qemuPeer
  }
}

// -----------------------------------------------------------------------------
// Rendering
// -----------------------------------------------------------------------------

const fit = (text: string, width = columns): string => text.length <= width ? text : text.slice(0, width - 1) + "…"

const say = (text = "") => Output.line(text === "" ? "" : fit(`   ${text}`.trimEnd()))

const title = (step: number, text: string) => Output.line(fit(`\n${step}/6  ${text}`))

const showEvent = (event: QmpMessage.QmpEvent) => say(Output.prettyEvent(event))

/** An event of a job on one line within 80 columns: BLOCK_JOB_* events with their progress in MiB. */
const jobEventLine = (event: Jobs.JobEvent): string => {
  switch (event.event) {
    case "BLOCK_JOB_COMPLETED":
    case "BLOCK_JOB_CANCELLED":
    case "BLOCK_JOB_READY": {
      const { data } = event
      const error = event.event === "BLOCK_JOB_COMPLETED" && event.data.error !== undefined ?
        `, ${event.data.error}` :
        ""
      return `${Output.localTime(event.timestamp)}  ${event.event}  ${data.device}: ` +
        `${Progress.mib(data.offset)} of ${Progress.mib(data.len)} MiB${error}`
    }
    default:
      return Output.prettyEvent(event)
  }
}

const jobBar = (done: number, total: number, status: string) =>
  `   ${Progress.bar(Progress.ratio(done, total), `${Progress.mib(done)}/${Progress.mib(total)} MiB  ${status}`)}`

// -----------------------------------------------------------------------------
// The steps
// -----------------------------------------------------------------------------

const steps = (peer: Peer) =>
  Effect.gen(function*() {
    const { events, qmp } = peer

    yield* title(1, "A listener for STOP")
    yield* Effect.scoped(Effect.gen(function*() {
      const listener = yield* events.listener("STOP")
      yield* say(`listener("STOP"), execute("stop"), then take:`)
      yield* qmp.execute("stop")
      yield* showEvent(yield* listener.take)
    }))

    yield* title(2, "A listener for STOP and RESUME")
    yield* Effect.scoped(Effect.gen(function*() {
      const listener = yield* events.listener(["STOP", "RESUME"])
      yield* say(`listener(["STOP", "RESUME"]), execute("cont"), execute("stop"), take twice:`)
      yield* qmp.execute("cont")
      yield* qmp.execute("stop")
      yield* showEvent(yield* listener.take)
      yield* showEvent(yield* listener.take)
    }))

    yield* title(3, "clear, then cont: the default listener is left with RESUME only")
    const cleared = yield* events.events.clear
    yield* say(`events.clear dropped the ${cleared.length} pending: ${cleared.map((e) => e.event).join(", ")}`)
    yield* say(`execute("cont"), then events.take:`)
    yield* qmp.execute("cont")
    yield* showEvent(yield* events.events.take)
    yield* say(`events.isEmpty: ${yield* events.events.isEmpty}`)

    yield* title(4, `Jobs following block job job1 to its end`)
    yield* Effect.scoped(
      Effect.gen(function*() {
        for (const node of ["src", "tgt"]) {
          yield* qmp.execute("blockdev-add", { driver: "null-co", "node-name": node, size: jobSize })
        }
        const listener = yield* Jobs.listener("job1")
        yield* say(`Jobs.listener("job1"), then blockdev-backup job0 (unthrottled) with Jobs.run,`)
        yield* say(`and job1 (16 MiB at 8 MiB/s, null-co) with Jobs.start, and Jobs.progress:`)
        const backup = { device: "src", target: "tgt", sync: "full" } as const
        yield* Jobs.run("blockdev-backup", { ...backup, "job-id": "job0" })
        const screen = yield* Progress.makeScreen()
        const started = Date.now()
        const job = yield* Jobs.start("blockdev-backup", { ...backup, "job-id": "job1", speed: jobSpeed })
        yield* Effect.all([
          job.result,
          listener.stream.pipe(
            Stream.takeUntil((event) => event.event === "JOB_STATUS_CHANGE" && event.data.status === "null"),
            Stream.runForEach((event) => screen.line(fit(`   ${jobEventLine(event)}`)))
          ),
          Jobs.progress(job.id).pipe(
            Stream.runForEach((info) =>
              screen.progress(
                Progress.ratio(info["current-progress"], info["total-progress"]),
                jobBar(info["current-progress"], info["total-progress"], info.status)
              )
            )
          )
        ], { concurrency: "unbounded", discard: true }).pipe(
          Effect.timeoutFail({
            duration: Duration.seconds(15),
            onTimeout: () => new Error("job1 did not end within 15 seconds")
          })
        )
        yield* screen.progress(1, jobBar(jobSize, jobSize, "concluded"))
        yield* screen.finish
        const job0 = (yield* events.events.history).filter((e) => e.data?.id === "job0" || e.data?.device === "job0")
        const seconds = ((Date.now() - started) / 1000).toFixed(1)
        yield* say(`job1 took ${seconds} s; Jobs.listener("job1") kept out job0's ${job0.length} events`)
      }).pipe(Effect.provideService(QmpClient.QmpClient, qmp), Effect.provideService(QmpEvents.QmpEvents, events))
    )

    yield* title(5, "The default listener's history (clear leaves it whole)")
    const history = yield* events.events.history
    yield* say(`${"#".padStart(2)}  ${"time".padEnd(12)}  ${"event".padEnd(19)}  data`)
    for (const [i, event] of history.entries()) {
      const data = event.data === undefined ? "" : JSON.stringify(event.data)
      yield* say(
        `${String(i + 1).padStart(2)}  ${Output.localTime(event.timestamp)}  ${event.event.padEnd(19)}  ${data}`
      )
    }

    yield* title(6, "A clean shutdown")
    yield* Effect.scoped(Effect.gen(function*() {
      const listener = yield* events.listener("SHUTDOWN")
      yield* say(`listener("SHUTDOWN"), execute("quit"), then take:`)
      yield* qmp.execute("quit")
      yield* showEvent(yield* listener.take)
      yield* say(
        yield* peer.gone.pipe(
          Effect.timeoutFail({
            duration: Duration.seconds(5),
            onTimeout: () => new Error("the peer did not go away within 5 seconds of quit")
          })
        )
      )
    }))
  })

/**
 * Runs the demo: about three seconds with QEMU, within 20 in any case. Everything it starts is
 * stopped when it ends, however it ends.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (options: Options = {}) =>
  Effect.gen(function*() {
    const started = Date.now()
    yield* Output.line("effect-qmp demo: QMP events, live")
    const peer = yield* peerFor(options.server ?? "auto")
    for (const line of peer.banner) yield* Output.line(fit(line))
    yield* steps(peer)
    yield* Output.line(
      `\nDone in ${((Date.now() - started) / 1000).toFixed(1)} s. More: ${Output.programName()} --help, and the README.`
    )
  }).pipe(Effect.scoped)

/**
 * The command line of `qmp demo`, parsed.
 *
 * @since 0.1.0
 * @category models
 */
export interface Config {
  readonly verbose: boolean
  readonly server: "auto" | "qemu" | "builtin"
}

/**
 * Runs `qmp demo`.
 *
 * @since 0.1.0
 * @category running
 */
export const command = (config: Config) => run({ server: config.server }).pipe(withVerbosity(config.verbose))
