/**
 * Real QEMU for tests: a QEMU started by `QemuProcess` for the test's scope (Unix socket, or TCP on
 * 127.0.0.1), with its client and registry, plus what tests need to poke at the process.
 *
 * Without `qemu-system-x86_64` on PATH the suite is skipped with a plain message, unless
 * `QMP_REQUIRE_QEMU=1`, under which it fails.
 */
import { describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import type { Scope } from "effect"
import * as Path from "node:path"
import type { QmpAddress } from "../../src/index.js"
import { QemuProcess, QmpClient, QmpEvents } from "../../src/index.js"
import { findOnPath } from "../../src/internal/findOnPath.js"
import { tempDir } from "./os.js"

const binaryName = "qemu-system-x86_64"

/** The QEMU binary, if it is on PATH. */
export const binary: string | undefined = findOnPath(binaryName)

/**
 * `describe` for the real-QEMU suite: runs it when QEMU is installed; otherwise skips it with a plain
 * message, or fails under `QMP_REQUIRE_QEMU=1`.
 */
export const describeQemu = (name: string, body: () => void): void => {
  if (binary !== undefined) {
    describe(name, body)
  } else if (process.env.QMP_REQUIRE_QEMU === "1") {
    describe(name, () => {
      it("requires qemu-system-x86_64", () => {
        throw new Error(
          `QMP_REQUIRE_QEMU=1 but ${binaryName} is not on PATH: install it (apt-get install qemu-system-x86)`
        )
      })
    })
  } else {
    console.warn(
      `Skipping "${name}": ${binaryName} is not on PATH. Install qemu-system-x86 to run the real-QEMU suite ` +
        `(set QMP_REQUIRE_QEMU=1 to make its absence a failure).`
    )
    describe.skip(name, body)
  }
}

export interface Qemu {
  readonly pid: number
  readonly address: QmpAddress.QmpAddress
  /** A directory for files the test creates (blockdev-create targets, ...). */
  readonly dir: string
  /** Sends a signal to QEMU, by its PID. */
  readonly signal: (signal: NodeJS.Signals) => Effect.Effect<void>
  /** Waits for QEMU to exit; gives its exit code, or the signal that ended it. */
  readonly exited: Effect.Effect<number | NodeJS.Signals>
  /** What QEMU wrote to stderr so far. */
  readonly stderr: Effect.Effect<string>
}

export interface StartOptions {
  readonly tcp?: boolean | undefined
  readonly args?: ReadonlyArray<string> | undefined
  readonly client?: QmpClient.Options | undefined
}

export interface Session {
  readonly qemu: Qemu
  readonly qmp: QmpClient.Service
  readonly events: QmpEvents.Service
  /** The client and its registry as services, for what takes them from the context (`Jobs`, ...). */
  readonly context: Context.Context<QmpClient.QmpClient | QmpEvents.QmpEvents>
}

/** A fresh QEMU and a client connected to it (with its own `QmpEvents`), for the current scope. */
export const session = (options: StartOptions = {}): Effect.Effect<Session, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = yield* tempDir()
    const context = yield* Layer.build(QemuProcess.layer({
      qmp: options.tcp ? "tcp" : "unix",
      args: options.args,
      client: options.client
    }))
    const process = Context.get(context, QemuProcess.QemuProcess)
    return {
      qemu: {
        pid: process.pid,
        address: process.address,
        dir,
        signal: (signal) => Effect.sync(() => globalThis.process.kill(process.pid, signal)),
        exited: process.exited,
        stderr: process.stderr
      },
      qmp: Context.get(context, QmpClient.QmpClient),
      events: Context.get(context, QmpEvents.QmpEvents),
      context: Context.pick(QmpClient.QmpClient, QmpEvents.QmpEvents)(context)
    }
  })

/**
 * A session whose QEMU has a second QMP socket, `second`, for another client (QEMU serves one client
 * per socket): the session's client holds the first, and both hear every event.
 */
export const sessionWithSecondSocket: Effect.Effect<Session & { readonly second: string }, unknown, Scope.Scope> =
  Effect.gen(function*() {
    const second = Path.join(yield* tempDir("effect-qmp-second-"), "second.sock")
    const started = yield* session({ args: [...QemuProcess.defaultArgs, "-qmp", `unix:${second},server=on,wait=off`] })
    return { ...started, second }
  })

/**
 * A session whose QEMU has a pretty monitor too (`-mon chardev=...,mode=control,pretty=on`), at
 * `pretty`: QEMU writes each message there over many lines.
 */
export const sessionWithPrettySocket: Effect.Effect<Session & { readonly pretty: string }, unknown, Scope.Scope> =
  Effect.gen(function*() {
    const pretty = Path.join(yield* tempDir("effect-qmp-pretty-"), "pretty.sock")
    const started = yield* session({
      args: [
        ...QemuProcess.defaultArgs,
        "-chardev",
        `socket,id=pretty,path=${pretty},server=on,wait=off`,
        "-mon",
        "chardev=pretty,mode=control,pretty=on"
      ]
    })
    return { ...started, pretty }
  })
