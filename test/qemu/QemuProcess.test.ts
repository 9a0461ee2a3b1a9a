/**
 * QemuProcess on real QEMU: a QEMU for a scope, gone after it, even when the scope is interrupted;
 * errors for a missing binary and bad arguments; Unix and TCP.
 */
import { NodeContext } from "@effect/platform-node"
import { assert, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Schedule } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { QemuProcess, QmpClient, QmpEvents } from "../../src/index.js"
import { backup, nullNodes } from "../support/blockdev.js"
import { isAlive } from "../support/os.js"
import { describeQemu } from "../support/qemu.js"

describeQemu("QemuProcess", () => {
  it.live("a QEMU for a scope: running inside it, gone with its directory after it", () =>
    Effect.gen(function*() {
      const seen = yield* Effect.gen(function*() {
        const qemu = yield* QemuProcess.QemuProcess
        const qmp = yield* QmpClient.QmpClient
        const events = yield* QmpEvents.QmpEvents
        expect(isAlive(qemu.pid)).toBe(true)
        assert("path" in qemu.address)
        expect(Fs.existsSync(qemu.address.path)).toBe(true)
        expect(yield* qmp.execute("query-status")).toMatchObject({ status: "running" })
        const stops = yield* events.listener("STOP")
        yield* qmp.execute("stop")
        expect((yield* stops.take).event).toBe("STOP")
        return { pid: qemu.pid, dir: Path.dirname(qemu.address.path) }
      }).pipe(Effect.scoped, Effect.provide(QemuProcess.layer()))
      expect(isAlive(seen.pid)).toBe(false)
      expect(Fs.existsSync(seen.dir)).toBe(false)
    }))

  it.live("closing the scope quits QEMU over QMP: the registry hears SHUTDOWN host-qmp-quit", () =>
    Effect.gen(function*() {
      const events = yield* QmpEvents.QmpEvents
      const pid = yield* Effect.gen(function*() {
        const qemu = yield* QemuProcess.make()
        return qemu.pid
      }).pipe(Effect.scoped)
      expect(isAlive(pid)).toBe(false)
      const history = yield* events.events.history
      expect(history.map((e) => e.event)).toEqual(["SHUTDOWN"])
      expect(history[0].data).toEqual({ guest: false, reason: "host-qmp-quit" })
    }).pipe(Effect.provide(NodeContext.layer), Effect.provide(QmpEvents.layer)))

  it.live("an interrupted scope leaves no QEMU", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<number>()
      const fiber = yield* Effect.gen(function*() {
        const qemu = yield* QemuProcess.QemuProcess
        yield* Deferred.succeed(started, qemu.pid)
        return yield* Effect.never
      }).pipe(Effect.provide(QemuProcess.layer()), Effect.fork)
      const pid = yield* Deferred.await(started)
      expect(isAlive(pid)).toBe(true)
      yield* Fiber.interrupt(fiber)
      expect(isAlive(pid)).toBe(false)
    }))

  it.live("a scope interrupted while QEMU is starting leaves no QEMU", () =>
    Effect.gen(function*() {
      // Interrupt at many points of the start: no QEMU may survive any of them.
      for (const delay of [0, 5, 20, 50, 100]) {
        const fiber = yield* Effect.fork(Layer.build(QemuProcess.layer()).pipe(Effect.scoped))
        yield* Effect.sleep(`${delay} millis`)
        yield* Fiber.interrupt(fiber)
      }
      const leftovers = Fs.readdirSync("/proc").filter((entry) => {
        if (!/^\d+$/.test(entry)) return false
        try {
          const cmdline = Fs.readFileSync(`/proc/${entry}/cmdline`, "utf8")
          return cmdline.startsWith("qemu-system-x86_64") && Number(entry) !== process.pid &&
            Fs.readFileSync(`/proc/${entry}/stat`, "utf8").split(" ")[3] === String(process.pid)
        } catch {
          return false
        }
      })
      expect(leftovers).toEqual([])
    }))

  it.live("a QEMU stopped by SIGSTOP ignores quit and SIGTERM: SIGKILL ends it after stopTimeout", () =>
    Effect.gen(function*() {
      const pid = yield* Effect.gen(function*() {
        const qemu = yield* QemuProcess.QemuProcess
        process.kill(qemu.pid, "SIGSTOP")
        return qemu.pid
      }).pipe(Effect.scoped, Effect.provide(QemuProcess.layer({ stopTimeout: "200 millis" })))
      expect(isAlive(pid)).toBe(false)
    }))

  it.live("a missing binary fails with QemuProcessError NotFound and a hint", () =>
    Effect.gen(function*() {
      const error = yield* Layer.build(QemuProcess.layer({ binary: "qemu-system-does-not-exist" })).pipe(
        Effect.scoped,
        Effect.flip
      )
      assert(error._tag === "QemuProcessError")
      expect(error.reason).toBe("NotFound")
      expect(error.message).toContain("qemu-system-does-not-exist")
      expect(error.message).toContain("apt-get install qemu-system-x86")
    }))

  it.live("a bad -machine fails with QemuProcessError ExitedEarly carrying QEMU's stderr", () =>
    Effect.gen(function*() {
      const exit = yield* Layer.build(
        QemuProcess.layer({ args: ["-machine", "no-such-machine", "-display", "none", "-nodefaults"] })
      ).pipe(Effect.scoped, Effect.exit)
      assert(Exit.isFailure(exit))
      const error = yield* Effect.flip(exit)
      assert(error._tag === "QemuProcessError")
      expect(error.reason).toBe("ExitedEarly")
      expect(error.stderr).toContain("unsupported machine type")
      expect(error.message).toContain("unsupported machine type")
    }))

  it.live("TCP on a free port of 127.0.0.1", () =>
    Effect.gen(function*() {
      const pid = yield* Effect.gen(function*() {
        const qemu = yield* QemuProcess.QemuProcess
        const qmp = yield* QmpClient.QmpClient
        assert("port" in qemu.address)
        expect(qemu.address.host).toBe("127.0.0.1")
        expect(qmp.address).toEqual(qemu.address)
        expect(yield* qmp.execute("query-status")).toMatchObject({ status: "running" })
        return qemu.pid
      }).pipe(Effect.scoped, Effect.provide(QemuProcess.layer({ qmp: "tcp" })))
      expect(isAlive(pid)).toBe(false)
    }))

  it.live("stderr gives the tail of what QEMU wrote", () =>
    Effect.gen(function*() {
      const qemu = yield* QemuProcess.QemuProcess
      const qmp = yield* QmpClient.QmpClient
      // A backup onto a null-co node makes QEMU warn about the target's block size on stderr.
      yield* backup(qmp, "j", yield* nullNodes(qmp))
      const stderr = yield* qemu.stderr.pipe(
        Effect.filterOrFail((text) => text.length > 0),
        Effect.retry(Schedule.spaced("20 millis"))
      )
      expect(stderr.length).toBeGreaterThan(0)
    }).pipe(Effect.scoped, Effect.provide(QemuProcess.layer())))
})
