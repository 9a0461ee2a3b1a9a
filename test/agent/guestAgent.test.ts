/**
 * GuestAgent against a real `qemu-ga` 7.2, run on the host over a Unix socket: ping, sync, info, an
 * unknown command, a blocked one, a timeout (the agent stopped by SIGSTOP), and resynchronisation
 * after garbage that a client before left in the agent's parser.
 */
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { GuestAgent } from "../../src/index.js"
import { describeAgent, startAgent } from "../support/agent.js"

describeAgent("GuestAgent on a real qemu-ga", () => {
  it.scopedLive("guest-ping, sync, guest-info", () =>
    Effect.gen(function*() {
      const { path } = yield* startAgent
      const agent = yield* GuestAgent.make({ path })
      expect(yield* agent.execute("guest-ping")).toEqual({})
      yield* agent.sync
      expect(yield* agent.execute("guest-sync", { id: 4242 })).toBe(4242)
      const info = (yield* agent.execute("guest-info")) as {
        readonly version: string
        readonly supported_commands: ReadonlyArray<{ readonly name: string; readonly enabled: boolean }>
      }
      expect(info.version).toMatch(/^7\.2\./)
      const enabled = (name: string) => info.supported_commands.find((c) => c.name === name)?.enabled
      expect(enabled("guest-ping")).toBe(true)
      expect(enabled("guest-shutdown")).toBe(false)
    }))

  it.scopedLive("an unknown command and a blocked one: QEMU's errors, and the connection goes on", () =>
    Effect.gen(function*() {
      const { path } = yield* startAgent
      const agent = yield* GuestAgent.make({ path })
      expect(yield* Effect.flip(agent.execute("guest-nope"))).toMatchObject({
        _tag: "QmpExecuteError",
        errorClass: "CommandNotFound",
        desc: "The command guest-nope has not been found"
      })
      // As root, guest-shutdown would shut this machine down: the agent runs with it disabled.
      expect(yield* Effect.flip(agent.execute("guest-shutdown"))).toMatchObject({
        _tag: "QmpExecuteError",
        errorClass: "CommandNotFound",
        desc: "Command guest-shutdown has been disabled"
      })
      expect(yield* agent.execute("guest-ping")).toEqual({})
    }))

  it.scopedLive("a command that times out; the connection resynchronises, and the next one is answered", () =>
    Effect.gen(function*() {
      const agent$ = yield* startAgent
      const agent = yield* GuestAgent.make({ path: agent$.path })
      // The agent hangs: its answer cannot come in time.
      yield* agent$.signal("SIGSTOP")
      const error = yield* Effect.flip(agent.execute("guest-ping", undefined, { timeout: "200 millis" }))
      expect(error).toMatchObject({ _tag: "QmpTimeoutError", command: "guest-ping" })
      yield* agent$.signal("SIGCONT")
      // The late answer to the ping, the agent's error for our 0xFF, then its 0xFF and the sync:
      // the next command gets its own answer, not any of those.
      expect(yield* agent.execute("guest-sync", { id: 7 })).toBe(7)
      expect(yield* agent.execute("guest-info")).toMatchObject({ version: expect.stringMatching(/^7\.2\./) })
    }))

  it.scopedLive("resynchronisation after garbage: a client before left a command half written", () =>
    Effect.gen(function*() {
      const { leave, path } = yield* startAgent
      // The agent's parser keeps it: without the 0xFF, our sync would be read as the rest of that string.
      yield* leave("{\"execute\": \"guest-ping\", \"arguments\": {\"text\": \"never ended")
      const agent = yield* GuestAgent.make({ path }, { connectTimeout: "10 seconds" })
      expect(yield* agent.execute("guest-ping")).toEqual({})
      // The agent serves one client at a time: this one leaves first.
      yield* agent.disconnect
      yield* leave("[[[[{\"a\": ")
      const again = yield* GuestAgent.make({ path })
      expect(yield* again.execute("guest-sync", { id: 99 })).toBe(99)
    }))
})
