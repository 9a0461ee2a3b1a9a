/**
 * `qmp exec --agent` and `qmp shell --agent` on a real `qemu-ga`, built and run as child processes.
 */
import { beforeAll, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { describeAgent, startAgent } from "../support/agent.js"
import { buildCli, run } from "../support/cli.js"

describeAgent("qmp --agent on a real qemu-ga", () => {
  beforeAll(() => void buildCli(), 120_000)

  it.scopedLive("exec --agent guest-ping, guest-info, and a blocked command", () =>
    Effect.gen(function*() {
      const { path } = yield* startAgent
      const ping = yield* run(["exec", "--agent", "--socket", path, "guest-ping"])
      expect(ping).toMatchObject({ code: 0, stdout: "{}\n", stderr: "" })
      const info = yield* run(["exec", "--agent", "--socket", path, "guest-info"])
      expect(info.code).toBe(0)
      expect(JSON.parse(info.stdout).version).toMatch(/^7\.2\./)
      const shutdown = yield* run(["exec", "--agent", "--socket", path, "guest-shutdown"])
      expect(shutdown).toMatchObject({
        code: 1,
        stdout: "",
        stderr: "qmp: guest-shutdown: CommandNotFound: Command guest-shutdown has been disabled\n"
      })
    }))

  it.scopedLive("shell --agent reads a script: one JSON line per result", () =>
    Effect.gen(function*() {
      const { path } = yield* startAgent
      const result = yield* run(["shell", "--agent", "--socket", path], {
        input: "guest-ping\nguest-sync id=12\nguest-nope\n"
      })
      expect(result.stdout.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line))).toEqual([
        {},
        12,
        { error: { class: "CommandNotFound", desc: "The command guest-nope has not been found" } }
      ])
      expect(result.code).toBe(1)
    }))
})
