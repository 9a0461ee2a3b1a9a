/**
 * QmpClient against a real QEMU over TCP on 127.0.0.1, on a free port.
 */
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { describeQemu, session } from "../support/qemu.js"

describeQemu("QmpClient on real QEMU (TCP)", () => {
  it.scopedLive("greets, negotiates, executes, and delivers events over TCP", () =>
    Effect.gen(function*() {
      const { events, qemu, qmp } = yield* session({ tcp: true })
      expect(qmp.address).toEqual({ host: "127.0.0.1", port: (qemu.address as { port: number }).port })
      expect(qmp.greeting.QMP.capabilities).toContain("oob")
      expect(yield* qmp.execute("query-status")).toMatchObject({ status: "running" })
      const listener = yield* events.listener(["STOP", "RESUME"])
      yield* qmp.execute("stop")
      yield* qmp.execute("cont")
      expect((yield* listener.take).event).toBe("STOP")
      expect((yield* listener.take).event).toBe("RESUME")
      expect(yield* Effect.flip(qmp.executeUnknown("no-such-command"))).toMatchObject({ errorClass: "CommandNotFound" })
      expect(yield* qmp.executeOob("query-yank")).toBeInstanceOf(Array)
      const schema = yield* qmp.execute("query-qmp-schema")
      expect((schema as ReadonlyArray<unknown>).length).toBeGreaterThan(1000)
    }))

  it.scopedLive("quit over TCP succeeds and ends the listeners", () =>
    Effect.gen(function*() {
      const { events, qemu, qmp } = yield* session({ tcp: true })
      const listener = yield* events.listener("SHUTDOWN")
      expect(yield* qmp.execute("quit")).toEqual({})
      expect((yield* listener.take).data).toEqual({ guest: false, reason: "host-qmp-quit" })
      expect(yield* Effect.flip(listener.take)).toMatchObject({ _tag: "QmpDisconnected" })
      expect(yield* qemu.exited).toBe(0)
    }))
})
