/**
 * A small fixture for the real-QEMU suite: starts `qemu-system-x86_64 -machine none` with a QMP
 * socket (Unix, or TCP on 127.0.0.1 with a free port) in a fresh temporary directory, waits until the
 * socket listens (read from /proc/net, since a probe connection would take QEMU's only client slot),
 * and kills the process by its PID when the scope closes. (The next issue brings
 * `QemuProcess`, which will replace this.)
 *
 * Without `qemu-system-x86_64` on PATH the suite is skipped with a plain message, unless
 * `QMP_REQUIRE_QEMU=1`, under which it fails.
 */
import { describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import type { Scope } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import type { QmpError } from "../../src/index.js"
import { QmpClient, QmpEvents } from "../../src/index.js"

const binaryName = "qemu-system-x86_64"

const findOnPath = (name: string): string | undefined => {
  for (const dir of (process.env.PATH ?? "").split(Path.delimiter)) {
    if (dir === "") continue
    const candidate = Path.join(dir, name)
    try {
      Fs.accessSync(candidate, Fs.constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}

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
  readonly address: QmpError.QmpAddress
  /** The temporary directory, for files the test creates (blockdev-create targets, ...). */
  readonly dir: string
  /** Sends a signal to QEMU, by its PID. */
  readonly signal: (signal: NodeJS.Signals) => Effect.Effect<void>
  /** Waits for QEMU to exit; gives its exit code, or the signal that ended it. */
  readonly exited: Effect.Effect<number | NodeJS.Signals>
  /** What QEMU wrote to stderr so far. */
  readonly stderr: () => string
}

export interface StartOptions {
  readonly tcp?: boolean | undefined
  readonly args?: ReadonlyArray<string> | undefined
}

const freePort: Effect.Effect<number> = Effect.async((resume) => {
  const probe = Net.createServer().listen(0, "127.0.0.1", () => {
    const { port } = probe.address() as Net.AddressInfo
    probe.close(() => resume(Effect.succeed(port)))
  })
})

/** `true` once something listens on 127.0.0.1:`port` (read from /proc: a probe connection would take QEMU's slot). */
const listening = (port: number): boolean => {
  const hex = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`
  try {
    return Fs.readFileSync("/proc/net/tcp", "utf8").split("\n").some((line) => {
      const fields = line.trim().split(/\s+/)
      return fields[1] === hex && fields[3] === "0A"
    })
  } catch {
    return false
  }
}

/**
 * `true` once a Unix socket listens at `path`. QEMU binds the socket file a moment before it listens,
 * so the file's existence is not enough; /proc/net/unix has the listening flag (`00010000`).
 */
const unixListening = (path: string): boolean => {
  if (!Fs.existsSync(path)) return false
  try {
    return Fs.readFileSync("/proc/net/unix", "utf8").split("\n").some((line) => {
      const fields = line.trim().split(/\s+/)
      return fields[7] === path && fields[3] === "00010000"
    })
  } catch {
    return true // no /proc: the file's existence is the best we know
  }
}

/** Starts QEMU for the current scope. */
export const start = (options: StartOptions = {}): Effect.Effect<Qemu, Error, Scope.Scope> =>
  Effect.gen(function*() {
    if (binary === undefined) return yield* Effect.fail(new Error(`${binaryName} is not on PATH`))
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-qmp-qemu-"))),
      (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
    )
    const port = options.tcp ? yield* freePort : 0
    const address: QmpError.QmpAddress = options.tcp ?
      { host: "127.0.0.1", port } :
      { path: Path.join(dir, "qmp.sock") }
    const qmpArg = "path" in address ?
      `unix:${address.path.replaceAll(",", ",,")},server=on,wait=off` :
      `tcp:127.0.0.1:${port},server=on,wait=off`
    const args = [
      ...(options.args ?? ["-machine", "none", "-display", "none", "-nodefaults"]),
      "-qmp",
      qmpArg
    ]

    let stderr = ""
    let exit: number | NodeJS.Signals | undefined
    const exitWaiters = new Set<(code: number | NodeJS.Signals) => void>()
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const child = ChildProcess.spawn(binary, args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] })
        child.stderr.setEncoding("utf8")
        child.stderr.on("data", (text: string) => {
          stderr += text
        })
        child.on("error", (error) => {
          stderr += String(error)
        })
        child.on("exit", (code, signal) => {
          exit = code ?? signal ?? -1
          for (const waiter of exitWaiters) waiter(exit)
        })
        return child
      }),
      (child) =>
        Effect.async<void>((resume) => {
          if (exit !== undefined) return resume(Effect.void)
          exitWaiters.add(() => resume(Effect.void))
          try {
            if (child.pid !== undefined) process.kill(child.pid, "SIGKILL")
          } catch {
            // exited in the meantime: its exit event is on its way
          }
        })
    )

    const exited = Effect.async<number | NodeJS.Signals>((resume) => {
      if (exit !== undefined) return resume(Effect.succeed(exit))
      const waiter = (code: number | NodeJS.Signals) => resume(Effect.succeed(code))
      exitWaiters.add(waiter)
      return Effect.sync(() => exitWaiters.delete(waiter))
    })

    // Wait for the QMP socket, racing QEMU's exit.
    const deadline = Date.now() + 10_000
    for (;;) {
      if (exit !== undefined) {
        return yield* Effect.fail(new Error(`QEMU exited early (${exit}): ${stderr.trim()}`))
      }
      if ("path" in address ? unixListening(address.path) : listening(port)) break
      if (Date.now() > deadline) {
        return yield* Effect.fail(new Error(`QEMU's QMP socket did not appear: ${stderr.trim()}`))
      }
      yield* Effect.sleep("5 millis")
    }

    const pid = child.pid!
    return {
      pid,
      address,
      dir,
      signal: (signal) => Effect.sync(() => process.kill(pid, signal)),
      exited,
      stderr: () => stderr
    } satisfies Qemu
  })

export interface Session {
  readonly qemu: Qemu
  readonly qmp: QmpClient.Service
  readonly events: QmpEvents.Service
}

/** A fresh QEMU and a client connected to it (with its own `QmpEvents`), for the current scope. */
export const session = (
  options: StartOptions & { readonly client?: QmpClient.Options } = {}
): Effect.Effect<Session, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const qemu = yield* start(options)
    const context = yield* Layer.build(QmpClient.layer(qemu.address, options.client))
    return {
      qemu,
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
