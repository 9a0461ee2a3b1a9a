/**
 * A real QEMU guest agent for tests: `qemu-ga` run on the host over a Unix socket of its own
 * (`--method unix-listen`), for the test's scope, with every command blocked (`-b`) but the harmless
 * ones: as root, `guest-shutdown` would shut the machine down.
 *
 * Without `qemu-ga` (Debian package `qemu-guest-agent`) the suite is skipped with a plain message,
 * unless `QMP_REQUIRE_QEMU=1`, under which it fails.
 */
import { describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Scope } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { findOnPath } from "../../src/internal/findOnPath.js"
import { tempDir } from "./os.js"

/** `qemu-ga`, on PATH or where Debian puts it (`/usr/sbin`, which a non-root PATH may lack). */
export const binary: string | undefined = findOnPath("qemu-ga") ??
  (Fs.existsSync("/usr/sbin/qemu-ga") ? "/usr/sbin/qemu-ga" : undefined)

/** The commands left enabled: the ones that change nothing. */
export const allowed: ReadonlyArray<string> = ["guest-ping", "guest-sync", "guest-sync-delimited", "guest-info"]

/** Every command of this `qemu-ga` but the allowed ones: what `-b` blocks (7.2 has no allow list). */
const blocked = (): ReadonlyArray<string> =>
  ChildProcess.spawnSync(binary!, ["-b", "help"], { encoding: "utf8" }).stdout
    .split("\n")
    .map((line) => line.trim())
    .filter((name) => name !== "" && !allowed.includes(name))

/**
 * `describe` for the real-agent suite: runs it when `qemu-ga` is installed; otherwise skips it with
 * a plain message, or fails under `QMP_REQUIRE_QEMU=1`.
 */
export const describeAgent = (name: string, body: () => void): void => {
  if (binary !== undefined) {
    describe(name, body)
  } else if (process.env.QMP_REQUIRE_QEMU === "1") {
    describe(name, () => {
      it("requires qemu-ga", () => {
        throw new Error("QMP_REQUIRE_QEMU=1 but qemu-ga is not installed (apt-get install qemu-guest-agent)")
      })
    })
  } else {
    console.warn(
      `Skipping "${name}": qemu-ga is not installed. Install qemu-guest-agent to run the guest agent suite ` +
        `(set QMP_REQUIRE_QEMU=1 to make its absence a failure).`
    )
    describe.skip(name, body)
  }
}

export interface Agent {
  /** Its Unix socket. */
  readonly path: string
  readonly pid: number
  /** Sends a signal to the agent (SIGSTOP and SIGCONT make it hang and go on). */
  readonly signal: (signal: NodeJS.Signals) => Effect.Effect<void>
  /**
   * Writes `bytes` from a client of its own, then hangs up, and waits until the agent is done with
   * that client: what a client before ours left behind.
   */
  readonly leave: (bytes: string) => Effect.Effect<void>
}

/**
 * Connects, writes `bytes`, ends, and waits until the agent has closed the connection too: `true`
 * once that is done, `false` if nothing listens yet. The agent serves one client at a time and keeps
 * a backlog of one: a client that does not wait for the agent to be done with the one before may be
 * refused (EAGAIN).
 */
const visit = (path: string, bytes = ""): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = Net.createConnection({ path })
    socket.once("connect", () => socket.end(bytes))
    socket.once("error", () => resolve(false))
    socket.once("close", (hadError) => resolve(!hadError))
  })

/** A `qemu-ga` for the current scope, killed when it closes. */
export const startAgent: Effect.Effect<Agent, never, Scope.Scope> = Effect.gen(function*() {
  const dir = yield* tempDir("effect-qmp-agent-")
  const path = Path.join(dir, "qga.sock")
  const child = yield* Effect.acquireRelease(
    Effect.sync(() =>
      ChildProcess.spawn(binary!, [
        "--method",
        "unix-listen",
        "--path",
        path,
        "-f",
        Path.join(dir, "qga.pid"),
        "-t",
        dir,
        "-b",
        blocked().join(",")
      ], { stdio: "ignore" })
    ),
    (child) =>
      Effect.sync(() => {
        child.kill("SIGCONT")
        child.kill("SIGKILL")
      })
  )
  // The socket accepts once the agent listens.
  yield* Effect.promise(async () => {
    for (let attempt = 0; attempt < 400 && !(await visit(path)); attempt++) {
      await new Promise((resume) => setTimeout(resume, 25))
    }
  })
  return {
    path,
    pid: child.pid!,
    signal: (signal) => Effect.sync(() => void child.kill(signal)),
    leave: (bytes) => Effect.asVoid(Effect.promise(() => visit(path, bytes)))
  }
})
