/**
 * `qmp job run` and `qmp job watch`, built and run as child processes against real QEMU: the tool
 * connects to a second QMP socket, while the test's own client holds the first (see qmp.test.ts).
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Result } from "../support/cli.js"
import { buildCli, run, start } from "../support/cli.js"
import { describeQemu, sessionWithSecondSocket } from "../support/qemu.js"

const MiB = 1024 * 1024

/** The last line of stdout: the final bar. */
const lastLine = (result: Result): string => result.stdout.trimEnd().split("\n").at(-1) ?? ""

const expectOneLineError = (result: Result, message: string) => {
  expect(result.code).toBe(1)
  expect(result.stdout).toBe("")
  expect(result.stderr).toBe(`qmp: ${message}\n`)
}

/** Two `null-co` nodes of `size`, and a `blkdebug` node whose reads fail, over the test's own client. */
const vm = (size: number) =>
  Effect.gen(function*() {
    const session = yield* sessionWithSecondSocket
    const { qmp } = session
    for (const node of ["src", "tgt"]) {
      yield* qmp.execute("blockdev-add", { driver: "null-co", "node-name": node, size })
    }
    yield* qmp.execute("blockdev-add", {
      driver: "blkdebug",
      "node-name": "bad",
      image: { driver: "null-co", size },
      "inject-error": [{ event: "none", iotype: "read", errno: 5, immediately: true }]
    })
    return session
  })

describeQemu("qmp job against real QEMU", () => {
  beforeAll(() => void buildCli(), 120_000)

  describe.concurrent("each test with a QEMU of its own", () => {
    it.scopedLive("job run follows a backup to its end: a progress bar, exit 0, no job left", () =>
      Effect.gen(function*() {
        const { qmp, second } = yield* vm(4 * MiB)
        const result = yield* run([
          "job",
          "run",
          "--socket",
          second,
          "blockdev-backup",
          "device=src",
          "target=tgt",
          "sync=full",
          `speed=${8 * MiB}`
        ])
        expect(result.stderr).toBe("")
        expect(result.code).toBe(0)
        expect(lastLine(result)).toMatch(
          /^\[#{30}\] 100% {2}job-[0-9a-z]{6} {2}backup( {2}4\.0\/4\.0 MiB)? {2}concluded$/
        )
        expect(yield* qmp.execute("query-jobs")).toEqual([])
      }))

    it.scopedLive("job run of a job that fails, or that QEMU refuses: exit 1 and QEMU's error on stderr", () =>
      Effect.gen(function*() {
        const { qmp, second } = yield* vm(MiB)
        const env = { QMP_SOCKET: second }
        const failed = yield* run(
          ["job", "run", "blockdev-backup", "device=bad", "target=tgt", "sync=full", "job-id=e1"],
          { env }
        )
        expectOneLineError(failed, "Job 'e1' (backup) failed: Input/output error")
        const refused = yield* run(["job", "run", "blockdev-backup", "device=nope", "target=tgt", "sync=full"], { env })
        expectOneLineError(refused, "blockdev-backup: GenericError: Cannot find device='nope' nor node-name='nope'")
        expect(yield* qmp.execute("query-jobs")).toEqual([])
      }))

    it.scopedLive("Ctrl-C during job run cancels the job in QEMU, and exits 130", () =>
      Effect.gen(function*() {
        const { qmp, second } = yield* vm(1024 * MiB)
        const job = yield* start([
          "job",
          "run",
          "--verbose",
          "--socket",
          second,
          "blockdev-backup",
          "device=src",
          "target=tgt",
          "sync=full",
          "speed=65536",
          "job-id=slow"
        ])
        yield* job.stderrShows("<- {\"return\": {}, \"id\": \"qmp-2\"}") // blockdev-backup returned
        expect(yield* qmp.execute("query-jobs")).toMatchObject([{ id: "slow", status: "running" }])
        process.kill(job.pid, "SIGINT")
        const result = yield* job.result
        expect(result.code).toBe(130)
        expect(result.stderr).toContain("-> {\"execute\":\"job-cancel\",\"arguments\":{\"id\":\"slow\"}")
        expect(yield* qmp.execute("query-jobs")).toEqual([])
      }))

    it.scopedLive("job watch draws a job another client started until it concludes: exit 0", () =>
      Effect.gen(function*() {
        const { qmp, second } = yield* vm(1024 * MiB)
        yield* qmp.execute("blockdev-backup", {
          "job-id": "w1",
          device: "src",
          target: "tgt",
          sync: "full",
          speed: 65536
        })
        const watch = yield* start(["job", "watch", "--verbose", "--socket", second, "w1"])
        // Its watch and its first progress read both run query-jobs (qmp-2 and qmp-3, after
        // qmp_capabilities): once both were answered, it follows the job. Then let the job run at full speed.
        yield* watch.stderrShows("\"id\": \"qmp-3\"}")
        yield* qmp.execute("block-job-set-speed", { device: "w1", speed: 0 })
        const result = yield* watch.result
        expect(result.stderr.split("\n").filter((line) => !line.startsWith("debug"))).toEqual([""])
        expect(result.code).toBe(0)
        expect(result.stdout).toMatch(/^\[[#-]{30}\] +\d+% {2}w1 {2}backup {2}[\d.]+\/1024\.0 MiB {2}running$/m)
        expect(lastLine(result)).toBe(`[${"#".repeat(30)}] 100%  w1  backup  1024.0/1024.0 MiB  concluded`)
      }))

    it.scopedLive("job watch of a job that failed and stays: exit 1 with QEMU's error; of no job: exit 1", () =>
      Effect.gen(function*() {
        const { qmp, second } = yield* vm(MiB)
        yield* qmp.execute("blockdev-backup", {
          "job-id": "e2",
          device: "bad",
          target: "tgt",
          sync: "full",
          "auto-dismiss": false
        })
        expectOneLineError(
          yield* run(["job", "watch", "--socket", second, "e2"]),
          "Job 'e2' (backup) failed: Input/output error"
        )
        // Watching leaves the job alone.
        expect(yield* qmp.execute("query-jobs")).toMatchObject([{ id: "e2", status: "concluded" }])
        expectOneLineError(
          yield* run(["job", "watch", "--socket", second, "nope"]),
          "QEMU has no job 'nope' (query-jobs does not list it)"
        )
      }))
  })
})
