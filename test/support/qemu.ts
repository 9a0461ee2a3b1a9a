/**
 * The real-QEMU suite's fixture: a QEMU started by `QemuProcess` for the test's scope (Unix socket,
 * or TCP on 127.0.0.1), with its client and registry, plus what tests need to poke at the process.
 *
 * Without `qemu-system-x86_64` on PATH the suite is skipped with a plain message, unless
 * `QMP_REQUIRE_QEMU=1`, under which it fails.
 */
import { describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import type { Scope } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import type { QmpAddress } from "../../src/index.js"
import { QemuProcess, QmpClient, QmpEvents } from "../../src/index.js"
import { findOnPath } from "../../src/internal/findOnPath.js"

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
}

/** A fresh QEMU and a client connected to it (with its own `QmpEvents`), for the current scope. */
export const session = (options: StartOptions = {}): Effect.Effect<Session, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-qmp-test-"))),
      (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
    )
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
      events: Context.get(context, QmpEvents.QmpEvents)
    }
  })

/** Adds two 1 MiB `null-co` nodes, `src-<tag>` and `tgt-<tag>`, for a backup job. */
export const nullNodes = (qmp: QmpClient.Service, tag: string, size = 1024 * 1024) =>
  Effect.gen(function*() {
    yield* qmp.execute("blockdev-add", { driver: "null-co", "node-name": `src-${tag}`, size })
    yield* qmp.execute("blockdev-add", { driver: "null-co", "node-name": `tgt-${tag}`, size })
  })

/** Starts a full backup job from `src-<tag>` to `tgt-<tag>`. */
export const backup = (qmp: QmpClient.Service, jobId: string, tag: string) =>
  qmp.execute("blockdev-backup", { "job-id": jobId, device: `src-${tag}`, target: `tgt-${tag}`, sync: "full" })
