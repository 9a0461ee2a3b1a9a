/**
 * A pretty monitor of a real QEMU (`-mon chardev=...,mode=control,pretty=on`), where each message
 * spans many lines: the client reads it (the framer is chosen from the greeting), `maxMessageBytes`
 * bounds a message rather than a line, and the `qmp` tool works on it as on any monitor.
 */
import { beforeAll, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { buildCli, run, start } from "../support/cli.js"
import { clientOf } from "../support/connect.js"
import { describeQemu, sessionWithPrettySocket } from "../support/qemu.js"

describeQemu("a pretty monitor of real QEMU", () => {
  beforeAll(() => void buildCli(), 120_000)

  it.scopedLive("execute and events: replies, errors and STOP read whole, over many lines", () =>
    Effect.gen(function*() {
      const { pretty } = yield* sessionWithPrettySocket
      const { client, events } = yield* clientOf({ path: pretty })
      expect(client.greeting.QMP.capabilities).toContain("oob")
      expect(yield* client.execute("query-status")).toEqual({ status: "running", singlestep: false, running: true })
      const stops = yield* events.listener("STOP")
      expect(yield* client.execute("stop")).toEqual({})
      expect((yield* stops.take).event).toBe("STOP")
      expect(yield* client.execute("query-jobs")).toEqual([])
      const refused = yield* Effect.flip(client.executeUnknown("no-such-command"))
      expect(refused).toMatchObject({ _tag: "QmpExecuteError", errorClass: "CommandNotFound" })
      expect(yield* client.execute("human-monitor-command", { "command-line": "info status" }))
        .toBe("VM status: paused\r\n")
      // The schema, some 200 KB compact, is a message of many thousand lines here.
      const schema = (yield* client.execute("query-qmp-schema")) as ReadonlyArray<unknown>
      expect(schema.length).toBeGreaterThan(1000)
      yield* client.execute("cont")
    }))

  it.scopedLive("maxMessageBytes bounds a message, not a line", () =>
    Effect.gen(function*() {
      const { pretty } = yield* sessionWithPrettySocket
      // Every line of the schema is short; the message is not.
      const { client } = yield* clientOf({ path: pretty }, { maxMessageBytes: 64 * 1024 })
      const error = yield* Effect.flip(client.execute("query-qmp-schema"))
      expect(error).toMatchObject({ _tag: "QmpProtocolError", reason: "MessageTooLarge" })
      expect((yield* client.closed).reason).toBe("ProtocolError")
    }))

  it.scopedLive("the qmp tool: exec, wait and events", () =>
    Effect.gen(function*() {
      const { pretty, qmp } = yield* sessionWithPrettySocket
      const exec = yield* run(["exec", "--socket", pretty, "query-status"])
      expect(exec.code).toBe(0)
      expect(JSON.parse(exec.stdout)).toEqual({ status: "running", singlestep: false, running: true })
      const wait = yield* run(["wait", "--socket", pretty, "--name", "STOP", "--", "stop"])
      expect(wait.code).toBe(0)
      expect(JSON.parse(wait.stdout)).toMatchObject({ event: "STOP" })
      const listening = yield* start(["events", "--verbose", "--socket", pretty, "--name", "RESUME", "--count", "1"])
      // Its listener is registered before it connects: once connected, it hears the RESUME that the
      // fixture's own client causes.
      yield* listening.stderrShows("Connected to QEMU")
      yield* qmp.execute("cont")
      const events = yield* listening.result
      expect(events.code).toBe(0)
      expect(JSON.parse(events.stdout)).toMatchObject({ event: "RESUME" })
    }))
})
