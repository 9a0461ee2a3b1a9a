/**
 * The `qmp` tool, built and run as a child process: against a real QEMU (skipped plainly without
 * one, unless QMP_REQUIRE_QEMU=1), its demo on the built-in server, and bad input.
 *
 * QEMU serves one client per QMP socket, so each QEMU here has two: the fixture's client holds the
 * first, the tool connects to the second (`second.sock`), and both hear every event.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import type { Result } from "../support/cli.js"
import { buildCli, run, start } from "../support/cli.js"
import { isAlive, tempDir } from "../support/os.js"
import { describeQemu, sessionWithSecondSocket } from "../support/qemu.js"

const buildTimeout = 120_000

const digest = (text: string) => Crypto.createHash("sha256").update(text).digest("hex")

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..", "..")

/** stdout as JSON lines. */
const jsonLines = (result: Result): Array<any> =>
  result.stdout.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line))

/** A failure as the tool must report it: one line on stderr, nothing on stdout, no stack trace. */
const expectOneLineError = (result: Result, code: number, pattern: RegExp) => {
  expect(result.code).toBe(code)
  expect(result.stdout).toBe("")
  expect(result.stderr).toMatch(/^qmp: [^\n]+\n$/)
  expect(result.stderr).toMatch(pattern)
  expect(result.stderr).not.toMatch(/\n\s+at /)
}

/** The tool logs this on stderr under --verbose once it is connected (its listener is registered before). */
const connected = "Connected to QEMU"

describeQemu("qmp against real QEMU", () => {
  beforeAll(() => void buildCli(), buildTimeout)

  describe.concurrent("each test with a QEMU of its own, side by side", () => {
    it.scopedLive("exec query-status prints the return as one line of JSON when piped", () =>
      Effect.gen(function*() {
        const { second } = yield* sessionWithSecondSocket
        const result = yield* run(["exec", "--socket", second, "query-status"])
        expect(result.stderr).toBe("")
        expect(result.code).toBe(0)
        expect(result.stdout.split("\n")).toHaveLength(2) // one line and its newline
        expect(JSON.parse(result.stdout)).toMatchObject({ status: "running", running: true })
      }))

    it.scopedLive("exec sends key=value arguments (with --args, and key:=string), and takes QMP_SOCKET", () =>
      Effect.gen(function*() {
        const { qmp, second } = yield* sessionWithSecondSocket
        const env = { QMP_SOCKET: second }
        const added = yield* run(
          [
            "exec",
            "blockdev-add",
            "driver=null-co",
            "node-name=n1",
            "size=1048576",
            "--args",
            "{\"read-zeroes\":true}"
          ],
          { env }
        )
        expect(added.stderr).toBe("")
        expect(added.code).toBe(0)
        expect(JSON.parse(added.stdout)).toEqual({})
        const nodes = (yield* qmp.execute("query-named-block-nodes")) as ReadonlyArray<Record<string, any>>
        expect(nodes.find((node) => node["node-name"] === "n1")).toMatchObject({
          drv: "null-co",
          image: { "virtual-size": 1048576 }
        })
        // A secret's data must be a string: data=1234 would send a number.
        const secret = yield* run(["exec", "object-add", "qom-type=secret", "id=s1", "data:=1234"], { env })
        expect(secret.stderr).toBe("")
        expect(secret.code).toBe(0)
      }))

    it.scopedLive("exec of an unknown command: exit 1, CommandNotFound on stderr", () =>
      Effect.gen(function*() {
        const { second } = yield* sessionWithSecondSocket
        const result = yield* run(["exec", "--socket", second, "no-such-command"])
        expectOneLineError(result, 1, /CommandNotFound: The command no-such-command has not been found/)
      }))

    it.scopedLive("schema check: QEMU 7.2's built-in module is this QEMU's exactly (exit 0); a saved reply of another is not (exit 1)", () =>
      Effect.gen(function*() {
        const { second } = yield* sessionWithSecondSocket
        const same = yield* run(["schema", "check", "--socket", second])
        expect(same.stderr).toBe("")
        expect(same.code).toBe(0)
        expect(same.stdout).toBe("This QEMU's schema is QEMU 7.2.22's module's, exactly.\n")
        const fixture = Path.join(root, "test", "fixtures", "small-qemu.json")
        const other = yield* run(["schema", "check", "--socket", second, "--from", fixture])
        expect(other.code).toBe(1)
        expect(other.stdout).toContain(`Commands of the saved reply ${fixture} that this QEMU lacks (5): device-add,`)
        expect(other.stdout).toMatch(
          /^Commands this QEMU has that the saved reply .* lacks \(run them with executeUnknown\) \(216\)/m
        )
        expect(other.stdout.trimEnd().split("\n").at(-1)).toMatch(/^Not compatible/)
        expect(other.stderr).toMatch(/^qmp: this QEMU differs from the saved reply/)
      }))

    it.scopedLive("codegen --out writes the module of the QEMU it asks: the committed QEMU 7.2 module's types", () =>
      Effect.gen(function*() {
        const { second } = yield* sessionWithSecondSocket
        const out = Path.join(yield* tempDir(), "qemu")
        const result = yield* run(["codegen", "--socket", second, "--out", out])
        expect(result.stderr).toBe("")
        expect(result.code).toBe(0)
        expect(result.stdout).toContain("QEMU 7.2.22: 216 commands and 52 events, written to")
        const committed = Path.join(root, "src", "qemu", "v7_2")
        // The same files but for the runtime's import: the package's, for a user's project.
        const read = (directory: string, file: string) =>
          Fs.readFileSync(Path.join(directory, file), "utf8").replace(`"../../QmpSchema.js"`, `"effect-qmp/QmpSchema"`)
        for (const file of ["types.ts", "schemas.ts", "index.ts", "introspection.ts"]) {
          // Compared by hash: the diff of a 200 KB line would drown the report.
          expect(digest(read(out, file)), file).toBe(digest(read(committed, file)))
        }
        expect(Fs.readFileSync(Path.join(out, "schemas.ts"), "utf8")).toContain(`from "effect-qmp/QmpSchema"`)
      }))

    it.scopedLive("events --name STOP --count 1 prints the STOP another client caused, and exits 0", () =>
      Effect.gen(function*() {
        const { qmp, second } = yield* sessionWithSecondSocket
        const events = yield* start(["events", "--socket", second, "--name", "STOP", "--count", "1", "--verbose"])
        yield* events.stderrShows(connected)
        yield* qmp.execute("stop")
        const result = yield* events.result
        expect(result.code).toBe(0)
        const lines = jsonLines(result)
        expect(lines).toHaveLength(1)
        expect(lines[0]).toMatchObject({ event: "STOP", timestamp: { seconds: expect.any(Number) } })
      }))

    it.scopedLive("events prints each event it accepts, in order, and exits 0 when the connection ends", () =>
      Effect.gen(function*() {
        const { qmp, second } = yield* sessionWithSecondSocket
        const events = yield* start(["events", "--socket", second, "--name", "STOP", "--name", "SHUTDOWN", "-v"])
        yield* events.stderrShows(connected)
        yield* qmp.execute("stop")
        yield* qmp.execute("cont") // RESUME: not asked for
        yield* qmp.execute("quit")
        const result = yield* events.result
        expect(result.code).toBe(0)
        expect(jsonLines(result).map((event) => event.event)).toEqual(["STOP", "SHUTDOWN"])
      }))

    it.scopedLive("wait with a timeout and nothing happening: exit 2 and a clear message", () =>
      Effect.gen(function*() {
        const { second } = yield* sessionWithSecondSocket
        const result = yield* run(["wait", "--socket", second, "--name", "STOP", "--timeout", "500ms"])
        expectOneLineError(result, 2, /^qmp: timed out: no STOP event within 500ms\n$/)
      }))

    it.scopedLive("wait without a timeout prints the event another client caused", () =>
      Effect.gen(function*() {
        const { qmp, second } = yield* sessionWithSecondSocket
        const wait = yield* start(["wait", "--socket", second, "--name", "RESUME", "--verbose"])
        yield* wait.stderrShows(connected)
        yield* qmp.execute("stop")
        yield* qmp.execute("cont")
        const result = yield* wait.result
        expect(result.code).toBe(0)
        expect(jsonLines(result)).toEqual([expect.objectContaining({ event: "RESUME" })])
      }))

    it.scopedLive("wait exits 3 when the connection ends before the event", () =>
      Effect.gen(function*() {
        const { qmp, second } = yield* sessionWithSecondSocket
        const wait = yield* start(["wait", "--socket", second, "--name", "STOP", "--verbose"])
        yield* wait.stderrShows(connected)
        yield* qmp.execute("quit")
        const result = yield* wait.result
        expect(result.code).toBe(3)
        expect(result.stdout).toBe("")
        expect(result.stderr).toMatch(/\nqmp: the connection ended before a STOP event came \([^\n]+\)\n$/)
      }))

    it.scopedLive("wait --name STOP -- stop catches the STOP that QEMU sends before stop's return", () =>
      Effect.gen(function*() {
        const { qmp, second } = yield* sessionWithSecondSocket
        const result = yield* run(["wait", "--socket", second, "--name", "STOP", "--verbose", "--", "stop"])
        expect(result.code).toBe(0)
        expect(jsonLines(result)).toEqual([expect.objectContaining({ event: "STOP" })])
        // The wire, as --verbose shows it: the event came first, then the return of stop.
        const stop = result.stderr.indexOf("-> {\"execute\":\"stop\"")
        const event = result.stderr.indexOf("\"event\": \"STOP\"")
        const reply = result.stderr.indexOf("\"return\": {}", stop)
        expect(stop).toBeGreaterThan(0)
        expect(event).toBeGreaterThan(stop)
        expect(reply).toBeGreaterThan(event)
        expect(yield* qmp.execute("query-status")).toMatchObject({ status: "paused" })
      }))

    // The demo bounds its own waits (the job 15 s, QEMU's exit 5 s) and fails when one runs out: exit 0
    // says it came to the end within them.
    it.live("demo runs to the end within 20 s, exits 0, and leaves no QEMU running", () =>
      Effect.gen(function*() {
        const result = yield* run(["demo"], { timeout: 60_000 })
        expect(result.stderr).toBe("")
        expect(result.code).toBe(0)
        expect(result.stdout).toMatch(/^Peer: QEMU \d+\.\d+\.\d+ \(pid \d+\)/m)
        for (let step = 1; step <= 6; step++) expect(result.stdout).toContain(`\n${step}/6  `)
        expect(result.stdout).toMatch(/\] 100% {2}16\.0\/16\.0 MiB {2}concluded/)
        expect(result.stdout).toMatch(/QEMU exited \(code 0\)/)
        for (const line of result.stdout.split("\n")) expect(line.length).toBeLessThanOrEqual(80)
        // Only the history table shortens what it shows (long event data), to stay within 80 columns.
        const [before, after] = result.stdout.split("\n5/6  ")
        expect(before).not.toContain("…")
        expect(after.split("\n6/6  ")[1]).not.toContain("…")
        const pid = Number(/\(pid (\d+)\)/.exec(result.stdout)?.[1])
        expect(pid).toBeGreaterThan(0)
        expect(isAlive(pid)).toBe(false)
      }), 60_000)
  })
})

/** `text` as a RegExp that matches it exactly. */
const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

describe("qmp without QEMU", () => {
  beforeAll(() => void buildCli(), buildTimeout)

  // As above, exit 0 says that the demo came to the end within its own bounds.
  it.live("demo --server builtin runs on the QmpTestServer, exits 0, within 80 columns", () =>
    Effect.gen(function*() {
      const result = yield* run(["demo", "--server", "builtin"], { timeout: 60_000 })
      expect(result.stderr).toBe("")
      expect(result.code).toBe(0)
      expect(result.stdout).toContain("Peer: the built-in QmpTestServer")
      expect(result.stdout).toContain("apt-get install qemu-system-x86")
      expect(result.stdout).toMatch(/\] 100% {2}16\.0\/16\.0 MiB {2}concluded/)
      for (const line of result.stdout.split("\n")) expect(line.length).toBeLessThanOrEqual(80)
      expect(result.stdout.split("\n5/6  ")[0]).not.toContain("…")
    }), 60_000)

  describe.concurrent("--help on every command: a usage line as typed, no boilerplate, examples", () => {
    // Run as `node dist/bin/qmp.js`, as in a clone: the help speaks of `npx qmp`, which works there.
    const commands: ReadonlyArray<[ReadonlyArray<string>, RegExp, number]> = [
      [[], /Talk to QEMU over QMP[\s\S]*COMMANDS[\s\S]*exec[\s\S]*events[\s\S]*wait[\s\S]*job[\s\S]*demo/, 3],
      [["exec"], /Run one QMP command[\s\S]*--args JSON/, 3],
      [["events"], /Print QMP events as they arrive[\s\S]*--count N/, 3],
      [["wait"], /Wait for one matching event[\s\S]*--timeout DURATION/, 3],
      [["shell"], /An interactive QMP shell[\s\S]*--log FILE[\s\S]*--hmp/, 3],
      [["demo"], /Watch the event system at work[\s\S]*--server auto\|qemu\|builtin/, 2],
      [["codegen"], /Generate TypeScript types[\s\S]*--out DIR/, 2],
      [["schema"], /QEMU's QMP schema[\s\S]*COMMANDS[\s\S]*check/, 1],
      [["schema", "check"], /Compare the QEMU's query-qmp-schema[\s\S]*--module FILE/, 3],
      [["job"], /QEMU's jobs[\s\S]*COMMANDS[\s\S]*run[\s\S]*watch/, 2],
      [["job", "run"], /Start a job and follow it to its end[\s\S]*<COMMAND>[\s\S]*--args JSON/, 3],
      [["job", "watch"], /Draw a job's progress bar[\s\S]*<ID>/, 2]
    ]
    for (const [command, pattern, examples] of commands) {
      it.live(`qmp ${[...command, "--help"].join(" ")}`, () =>
        Effect.gen(function*() {
          const result = yield* run([...command, "--help"])
          expect(result.code).toBe(0)
          expect(result.stderr).toBe("")
          expect(result.stdout).toMatch(pattern)
          expect(result.stdout).not.toContain("\u001b[") // plain text when piped
          const words = ["npx qmp", ...command].join(" ")
          expect(result.stdout).toMatch(new RegExp(`^(qmp \\d+\\.\\d+\\.\\d+\\n\\n)?USAGE\\n\\n\\$ ${words} `))
          for (
            const boilerplate of [
              "A user-defined piece of text.",
              "A true or false value.",
              "An integer.",
              "This setting is optional.",
              "may be repeated",
              "One of the following",
              "$ qmp",
              "$ exec"
            ]
          ) {
            expect(result.stdout).not.toContain(boilerplate)
          }
          const [, tail = ""] = result.stdout.split("\nEXAMPLES\n")
          expect(tail.match(/^\$ npx qmp /gm)?.length).toBe(examples)
        }))
    }
    it.live("-h is --help, and qmp alone shows the help of qmp", () =>
      Effect.gen(function*() {
        const [short, long, alone] = yield* Effect.all([
          run(["job", "run", "-h"]),
          run(["job", "run", "--help"]),
          run([])
        ])
        expect(short).toEqual(long)
        expect(alone.code).toBe(0)
        expect(alone.stdout).toBe((yield* run(["--help"])).stdout)
      }))
  })

  describe.concurrent("bad input: one line on stderr, a non-zero exit, never a stack trace", () => {
    /** A Unix socket server that answers like an SSH server: not QMP. */
    const notQmp = Effect.gen(function*() {
      const dir = yield* tempDir("effect-qmp-cli-")
      const path = Path.join(dir, "ssh.sock")
      yield* Effect.acquireRelease(
        Effect.async<Net.Server>((resume) => {
          const server = Net.createServer((socket) => socket.end("SSH-2.0-OpenSSH_9.2\r\n"))
          server.listen(path, () => resume(Effect.succeed(server)))
        }),
        (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
      )
      return path
    })

    it.scopedLive("a missing socket", () =>
      Effect.gen(function*() {
        const result = yield* run(["exec", "--socket", "/nonexistent/qmp.sock", "query-status"])
        expectOneLineError(result, 1, /no such socket/)
      }))

    it.scopedLive("a path that is not a QMP server: a regular file", () =>
      Effect.gen(function*() {
        const file = Path.join(yield* tempDir("effect-qmp-cli-"), "not-a-socket")
        Fs.writeFileSync(file, "hello\n")
        const result = yield* run(["exec", "--socket", file, "query-status"])
        expectOneLineError(result, 1, /Cannot connect to QMP at unix:.*not-a-socket: connection refused/)
      }))

    it.scopedLive("a path that is not a QMP server: a socket that speaks something else", () =>
      Effect.gen(function*() {
        const result = yield* run(["exec", "--socket", yield* notQmp, "query-status"])
        expectOneLineError(result, 1, /not a QMP greeting/)
      }))

    it.scopedLive("--tcp without a port", () =>
      Effect.gen(function*() {
        const result = yield* run(["exec", "--tcp", "localhost", "query-status"])
        expectOneLineError(result, 1, /--tcp: expected HOST:PORT with a port from 1 to 65535, got "localhost"/)
      }))

    it.scopedLive("a malformed key=value (reported before any connection is tried)", () =>
      Effect.gen(function*() {
        const result = yield* run(["exec", "--socket", "/nonexistent/qmp.sock", "blockdev-add", "driver"])
        expectOneLineError(result, 1, /^qmp: expected key=value \(or key:=string\), got "driver"\n$/)
      }))

    it.scopedLive("invalid JSON in --args", () =>
      Effect.gen(function*() {
        const result = yield* run(["exec", "--socket", "/nonexistent/qmp.sock", "blockdev-add", "--args", "{driver:"])
        expectOneLineError(result, 1, /^qmp: --args: invalid JSON \(/)
      }))

    // One wording for an unknown option, wherever it stands and whichever parser sees it first.
    const unknownOptions: ReadonlyArray<[ReadonlyArray<string>, string]> = [
      [["exec", "--socket", "/nonexistent/qmp.sock", "query-status", "--bogus"], "exec"],
      [["exec", "--sockt", "/nonexistent/qmp.sock", "query-status"], "exec"],
      [["events", "--socket", "/nonexistent/qmp.sock", "--bogus"], "events"],
      [["wait", "--name", "STOP", "--bogus"], "wait"],
      [["shell", "--bogus"], "shell"],
      [["demo", "--bogus"], "demo"],
      [["job", "run", "--bogus", "blockdev-backup"], "job run"],
      [["job", "watch", "--bogus"], "job watch"],
      [["schema", "check", "--bogus"], "schema check"]
    ]
    for (const [args, command] of unknownOptions) {
      it.scopedLive(`an unknown option: qmp ${args.join(" ")}`, () =>
        Effect.gen(function*() {
          const result = yield* run(args, { env: { QMP_SOCKET: "" } })
          expectOneLineError(
            result,
            1,
            new RegExp(`^qmp: unknown option "--(bogus|sockt)" \\(npx qmp ${command} --help lists what it takes\\)\\n$`)
          )
        }))
    }

    // One wording for a bad value: `--NAME: expected WHAT, got "VALUE"`.
    const badValues: ReadonlyArray<[ReadonlyArray<string>, string]> = [
      [["events", "--count", "abc"], "--count: expected a whole number from 1, got \"abc\""],
      [["events", "--count", "0"], "--count: expected a whole number from 1, got \"0\""],
      [["events", "--format", "xml"], "--format: expected json or pretty, got \"xml\""],
      [["demo", "--server", "vm"], "--server: expected auto, qemu or builtin, got \"vm\""],
      [
        ["exec", "--timeout", "soon", "query-status"],
        "--timeout: expected a duration such as 500ms, 30s, 2m or 1h, got \"soon\""
      ],
      [
        ["job", "run", "--connect-timeout", "1x", "blockdev-backup"],
        "--connect-timeout: expected a duration such as 500ms, 30s, 2m or 1h, got \"1x\""
      ],
      [["exec", "-s", "", "query-status"], "--socket: expected a path, got \"\""],
      [["shell", "--tcp", "localhost"], "--tcp: expected HOST:PORT with a port from 1 to 65535, got \"localhost\""]
    ]
    for (const [args, message] of badValues) {
      it.scopedLive(`a bad value: qmp ${args.join(" ")}`, () =>
        Effect.gen(function*() {
          expectOneLineError(yield* run(args), 1, new RegExp(`^qmp: ${escape(message)}\\n$`))
        }))
    }

    const missing: ReadonlyArray<[ReadonlyArray<string>, string]> = [
      [["exec"], "missing argument COMMAND (npx qmp exec --help lists what it takes)"],
      [["job", "watch"], "missing argument ID (npx qmp job watch --help lists what it takes)"],
      [
        ["wait", "--socket", "/nonexistent/qmp.sock"],
        "missing option --name (npx qmp wait --help lists what it takes)"
      ],
      [["codegen"], "missing option --out (npx qmp codegen --help lists what it takes)"],
      [["events", "extra"], "unexpected argument \"extra\" (npx qmp events --help lists what it takes)"]
    ]
    for (const [args, message] of missing) {
      it.scopedLive(`missing or extra: qmp ${args.join(" ")}`, () =>
        Effect.gen(function*() {
          expectOneLineError(yield* run(args), 1, new RegExp(`^qmp: ${escape(message)}\\n$`))
        }))
    }

    it.scopedLive("no address at all", () =>
      Effect.gen(function*() {
        const result = yield* run(["exec", "query-status"])
        expectOneLineError(result, 1, /no QMP server given: use --socket PATH or --tcp HOST:PORT, or set QMP_SOCKET/)
      }))

    it.scopedLive("a bad duration, on the quick way in too", () =>
      Effect.gen(function*() {
        const result = yield* run(["wait", "--socket", "/nonexistent/qmp.sock", "--name", "STOP", "--timeout", "soon"])
        expectOneLineError(result, 1, /^qmp: --timeout: expected a duration/)
      }))

    it.scopedLive("an unknown command", () =>
      Effect.gen(function*() {
        const result = yield* run(["frobnicate"])
        expectOneLineError(
          result,
          1,
          /^qmp: unknown command "frobnicate": use one of exec, events, wait, shell, job, demo, codegen, schema\n$/
        )
      }))
  })
})
