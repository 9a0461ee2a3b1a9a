/**
 * `qmp shell`, built and run as a child process against real QEMU: as a script (stdin not a
 * terminal), and on a real pseudo-terminal driven through tmux (send-keys / capture-pane).
 *
 * Each QEMU has two QMP sockets: the fixture's client holds the first (and makes events happen),
 * the shell connects to the second.
 */
import { assert, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { buildCli, run } from "../support/cli.js"
import { isAlive, tempDir } from "../support/os.js"
import { describeQemu, sessionWithSecondSocket } from "../support/qemu.js"

/** A QEMU with a second QMP socket for the shell, and a directory for its history files. */
const qemu = Effect.gen(function*() {
  const started = yield* sessionWithSecondSocket
  return { ...started, dir: yield* tempDir("effect-qmp-shell-") }
})

/** Runs `qmp shell` with `input` on its stdin (a pipe, not a terminal). */
const script = (socket: string, input: string, ...options: Array<string>) =>
  run(["shell", "--socket", socket, ...options], { input })

const hasTmux = ChildProcess.spawnSync("tmux", ["-V"]).status === 0

/**
 * A terminal running `command` in tmux, for the current scope: waiting for the screen to show
 * something, and typing keys.
 */
const terminal = (command: string) =>
  Effect.gen(function*() {
    const name = `qmp-shell-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`
    const tmux = (...args: Array<string>) => ChildProcess.execFileSync("tmux", args, { encoding: "utf8" })
    yield* Effect.acquireRelease(
      Effect.sync(() => tmux("new-session", "-d", "-s", name, "-x", "120", "-y", "40", command)),
      () => Effect.sync(() => ChildProcess.spawnSync("tmux", ["kill-session", "-t", name]))
    )
    const screen = () => tmux("capture-pane", "-t", name, "-p")
    return {
      /** Waits until the screen satisfies `ok` (10 s at most), and gives it. */
      until: (ok: (text: string) => boolean, what: string) =>
        Effect.sync(screen).pipe(
          Effect.filterOrFail(ok, () => new Error(`the screen never showed ${what}:\n${screen()}`)),
          Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("10 seconds")))
        ),
      keys: (...keys: Array<string>) => Effect.sync(() => tmux("send-keys", "-t", name, ...keys))
    }
  })

/** The shell on `socket` in a terminal, followed by its exit status (`EXITED n`). */
const shellIn = (socket: string, history: string, ...options: Array<string>) =>
  terminal(
    `${process.execPath} ${buildCli()} shell --socket ${socket} --history ${history} ${
      options.join(" ")
    }; echo "EXITED $?"; sleep 60`
  )

/** The last line that is not empty: where the cursor is. */
const lastLine = (text: string) => text.trimEnd().split("\n").at(-1) ?? ""

describeQemu("qmp shell", () => {
  beforeAll(() => void buildCli(), 120_000)

  it.scopedLive("reading a script from stdin: one JSON line per command, going on after a failure, exit 1", () =>
    Effect.gen(function*() {
      const { second } = yield* qemu
      const result = yield* script(
        second,
        [
          "query-status",
          "no-such-command",
          "",
          "# a comment",
          "stop",
          "{\"execute\": \"query-status\"}",
          "blockdev-add driver=null-co node-name=n0 size=1048576",
          "query-named-block-nodes flat=true"
        ].join("\n") + "\n"
      )
      const lines = result.stdout.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line))
      expect(lines).toHaveLength(6)
      expect(lines[0]).toMatchObject({ status: "running" })
      expect(lines[1]).toEqual({
        error: { class: "CommandNotFound", desc: "The command no-such-command has not been found" }
      })
      expect(lines[2]).toEqual({})
      expect(lines[3]).toMatchObject({ status: "paused" })
      expect(lines[4]).toEqual({})
      expect(lines[5].map((node: { "node-name": string }) => node["node-name"])).toContain("n0")
      expect(result.code).toBe(1)
      expect(result.stderr).toBe("qmp: 1 command failed\n")
    }))

  it.scopedLive("the shell ends when the connection does, even with its input still open", () =>
    Effect.gen(function*() {
      const { qemu: vm, second } = yield* qemu
      const child = ChildProcess.spawn(process.execPath, [buildCli(), "shell", "--socket", second], {
        stdio: ["pipe", "pipe", "pipe"]
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
      let stdout = ""
      const firstLine = Effect.async<void>((resume) => {
        child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
          stdout += chunk
          if (stdout.includes("\n")) resume(Effect.void)
        })
      })
      const exited = Effect.async<number | null>((resume) => {
        child.on("close", (code) => resume(Effect.succeed(code)))
      })
      child.stdin.write("query-status\n") // and the input stays open
      yield* firstLine
      yield* vm.signal("SIGKILL")
      expect(yield* exited).toBe(1)
      const lines = stdout.trim().split("\n").map((line) => JSON.parse(line))
      expect(lines[0]).toMatchObject({ status: "running" })
      expect(lines[1]).toMatchObject({ error: { class: "QmpDisconnected" } })
    }))

  it.scopedLive("a script whose commands all succeed exits 0", () =>
    Effect.gen(function*() {
      const { second } = yield* qemu
      const result = yield* script(second, "query-status\nstop\ncont\n")
      expect(result.stdout.trim().split("\n")).toHaveLength(3)
      expect(result.code).toBe(0)
      expect(result.stderr).toBe("")
    }))

  it.scopedLive("a script: quotes, a transaction over several lines, values typed by the schema; --hmp", () =>
    Effect.gen(function*() {
      const { second } = yield* qemu
      const result = yield* script(
        second,
        [
          "blockdev-add driver=null-co node-name=n0 size=1048576",
          "transaction(",
          "block-dirty-bitmap-add node=n0 name=b0",
          "block-dirty-bitmap-add node=n0 name=b1",
          ")",
          "object-add qom-type=secret id=s1 data=1234",
          `human-monitor-command command-line="info status"`,
          `x a="unterminated`
        ].join("\n") + "\n"
      )
      expect(result.stdout.trim().split("\n").map((line) => JSON.parse(line))).toEqual([
        {},
        {},
        {},
        "VM status: running\r\n",
        { error: { class: "InvalidInput", desc: "unterminated double quote" } }
      ])
      expect(result.code).toBe(1)
      const hmp = yield* script(second, "info status\nstop\ninfo status\n", "--hmp")
      expect(hmp.stdout.trim().split("\n").map((line) => JSON.parse(line))).toEqual([
        "VM status: running\r\n",
        "",
        "VM status: paused\r\n"
      ])
      expect(hmp.code).toBe(0)
    }))

  describe.runIf(hasTmux || process.env.QMP_REQUIRE_QEMU === "1")("on a terminal (tmux)", () => {
    it.scopedLive(
      "prompt, Tab completion, an event printed while a line is typed, Ctrl-D leaving QEMU running",
      () =>
        Effect.gen(function*() {
          assert(hasTmux, "tmux is needed for the terminal test: apt-get install tmux")
          const { dir, qemu: vm, qmp, second } = yield* qemu
          const history = Path.join(dir, "history")
          const { keys, until } = yield* shellIn(second, history)

          yield* until((text) => text.includes("Connected to QEMU 7.") && lastLine(text) === "(QEMU)", "the prompt")

          // Tab completes a command name...
          yield* keys("query-versi", "Tab")
          yield* until((text) => lastLine(text) === "(QEMU) query-version", "query-version completed")
          yield* keys("Enter")
          yield* until((text) => text.includes("\"qemu\"") && lastLine(text) === "(QEMU)", "the pretty return")

          // ...and an argument name.
          yield* keys("blockdev-add dri", "Tab")
          yield* until((text) => lastLine(text) === "(QEMU) blockdev-add driver=", "driver= completed")

          // An event arrives while the line is being typed: printed above it, the line kept.
          yield* qmp.execute("stop")
          const withEvent = yield* until((text) => /STOP/.test(text), "the STOP event")
          yield* until((text) => lastLine(text) === "(QEMU) blockdev-add driver=", "the typed line, kept")
          const rows = withEvent.trimEnd().split("\n")
          expect(rows.findIndex((row) => row.includes("STOP"))).toBeLessThan(rows.length - 1)

          // Finish the line: it runs with what was typed before the event.
          yield* keys("null-co node-name=n1 size=1048576", "Enter")
          yield* until((text) => lastLine(text) === "(QEMU)" && text.includes("{}"), "blockdev-add's return")

          // An error in red words: class and description.
          yield* keys("no-such-command", "Enter")
          yield* until(
            (text) => text.includes("CommandNotFound: The command no-such-command has not been found"),
            "error"
          )

          // Ctrl-D leaves the shell; QEMU keeps running, and the history was kept.
          yield* keys("C-d")
          yield* until((text) => text.includes("EXITED 0"), "the shell's exit")
          expect(isAlive(vm.pid)).toBe(true)
          expect(yield* qmp.execute("query-status")).toMatchObject({ status: "paused" })
          expect(Fs.readFileSync(history, "utf8").split("\n")).toEqual(
            expect.arrayContaining(["query-version", "blockdev-add driver=null-co node-name=n1 size=1048576"])
          )
        }),
      60_000
    )

    it.scopedLive(
      "the history of an earlier session comes back with Up; quit asks first: no keeps QEMU, yes quits it",
      () =>
        Effect.gen(function*() {
          assert(hasTmux, "tmux is needed for the terminal test: apt-get install tmux")
          const { dir, qemu: vm, second } = yield* qemu
          Fs.writeFileSync(`${dir}/h`, "query-kvm\nquery-name\n")
          const { keys, until } = yield* shellIn(second, `${dir}/h`)
          yield* until((text) => text.includes("Connected to QEMU"), "the prompt")
          yield* keys("Up")
          yield* until((text) => text.trimEnd().endsWith("(QEMU) query-name"), "the last line of the earlier session")
          yield* keys("Up")
          yield* until((text) => text.trimEnd().endsWith("(QEMU) query-kvm"), "the line before it")
          yield* keys("C-u")
          yield* keys("quit", "Enter")
          yield* until((text) => text.includes("[y/N]"), "the question")
          yield* keys("n", "Enter")
          yield* until((text) => text.trimEnd().endsWith("(QEMU)"), "the prompt again")
          expect(isAlive(vm.pid)).toBe(true)
          yield* keys("quit", "Enter")
          yield* until((text) => text.split("[y/N]").length === 3, "the question again")
          yield* keys("y", "Enter")
          yield* until((text) => text.includes("EXITED 0"), "the shell's exit")
          expect(yield* vm.exited).toBe(0)
        }),
      60_000
    )

    it.scopedLive(
      "Ctrl-D at quit's question answers no and leaves the shell; QEMU keeps running",
      () =>
        Effect.gen(function*() {
          assert(hasTmux, "tmux is needed for the terminal test: apt-get install tmux")
          const { dir, qemu: vm, qmp, second } = yield* qemu
          const { keys, until } = yield* shellIn(second, `${dir}/h`)
          yield* until((text) => text.includes("Connected to QEMU"), "the prompt")
          yield* keys("quit", "Enter")
          yield* until((text) => text.includes("[y/N]"), "the question")
          yield* keys("C-d")
          yield* until((text) => text.includes("EXITED 0"), "the shell's exit")
          expect(isAlive(vm.pid)).toBe(true)
          expect(yield* qmp.execute("query-status")).toMatchObject({ status: "running" })
        }),
      60_000
    )

    it.scopedLive(
      "quoted values, string replies as text, values typed by the schema, Tab through variants, dotted keys and " +
        "enum values, and a reply printed below its command's events",
      () =>
        Effect.gen(function*() {
          assert(hasTmux, "tmux is needed for the terminal test: apt-get install tmux")
          const { dir, qmp, second } = yield* qemu
          const { keys, until } = yield* shellIn(second, `${dir}/h`)
          yield* until((text) => lastLine(text) === "(QEMU)", "the prompt")

          // A quoted value with a space in it; HMP's text printed as text, not as a JSON string.
          yield* keys(`human-monitor-command command-line="info status"`, "Enter")
          yield* until((text) => text.includes("\nVM status: running\n") && lastLine(text) === "(QEMU)", "the text")
          yield* keys(`human-monitor-command command-line='info version'`, "Enter")
          yield* until((text) => /\n7\.2\.\d+[^\n]*\n\(QEMU\)\s*$/.test(text), "the version, as text")

          // A value the schema says is a string, though it looks like a number: a secret's data (QEMU
          // refuses a number there), in the variant that qom-type chose.
          yield* keys("object-add qom-type=secret id=s1 data=1234", "Enter")
          yield* until((text) => lastLine(text) === "(QEMU)" && text.includes("{}"), "object-add's return")
          expect(yield* qmp.execute("qom-list", { path: "/objects" })).toContainEqual(
            expect.objectContaining({ name: "s1" })
          )

          // Tab: a variant's member, an enum value, a dotted member of an alternate's object branch.
          yield* keys("C-l", "blockdev-add driver=null-co read-z", "Tab")
          yield* until((text) => lastLine(text) === "(QEMU) blockdev-add driver=null-co read-zeroes=", "read-zeroes=")
          yield* keys("t", "Tab")
          yield* until((text) => lastLine(text) === "(QEMU) blockdev-add driver=null-co read-zeroes=true", "true")
          yield* keys("C-u", "blockdev-add driver=qcow2 file.driver=file file.filen", "Tab")
          yield* until((text) => lastLine(text).endsWith("file.driver=file file.filename="), "file.filename=")
          yield* keys("C-u", "blockdev-add driver=qcow2 file.driver=file file.aio=io_", "Tab")
          yield* until((text) => lastLine(text).endsWith("file.aio=io_uring"), "the enum value io_uring")
          yield* keys("C-u")

          // The reply lands where its command was typed, below the event it caused: no "(QEMU) {}".
          yield* keys("C-l")
          yield* until((text) => text.trim() === "(QEMU)", "a clear screen")
          yield* keys("stop", "Enter")
          const screen = yield* until((text) => lastLine(text) === "(QEMU)" && text.includes("STOP"), "stop's event")
          const rows = screen.trimEnd().split("\n").map((row) => row.trimEnd())
          const typed = rows.indexOf("(QEMU) stop")
          expect(typed).toBeGreaterThanOrEqual(0)
          expect(rows[typed + 1]).toMatch(/STOP$/)
          expect(rows[typed + 2]).toBe("{}")
          expect(rows[typed + 3]).toBe("(QEMU)")
          expect(rows.some((row) => row.startsWith("(QEMU) {}"))).toBe(false)
          yield* keys("C-d")
          yield* until((text) => text.includes("EXITED 0"), "the shell's exit")
        }),
      60_000
    )

    it.scopedLive(
      "transaction( ... ) sends its lines as one transaction; --log keeps a transcript",
      () =>
        Effect.gen(function*() {
          assert(hasTmux, "tmux is needed for the terminal test: apt-get install tmux")
          const { dir, qmp, second } = yield* qemu
          yield* qmp.execute("blockdev-add", { driver: "null-co", "node-name": "n0", size: 1048576 })
          const log = Path.join(dir, "log")
          const { keys, until } = yield* shellIn(second, `${dir}/h`, "--log", log)
          yield* until((text) => lastLine(text) === "(QEMU)", "the prompt")
          yield* keys("transaction(", "Enter")
          yield* until((text) => lastLine(text) === "TRANS>", "the transaction's prompt")
          yield* keys("block-dirty-bitmap-add node=n0 name=b0", "Enter")
          yield* until((text) => lastLine(text) === "TRANS>", "the next action")
          yield* keys("block-dirty-bitmap-add node=n0 name=b1 persistent=false", "Enter", ")", "Enter")
          yield* until((text) => lastLine(text) === "(QEMU)" && text.includes("{}"), "the transaction's return")
          const nodes = yield* qmp.execute("query-named-block-nodes")
          const bitmaps = nodes.find((node) => node["node-name"] === "n0")?.["dirty-bitmaps"]?.map((b) => b.name)
          expect(bitmaps?.sort()).toEqual(["b0", "b1"])
          // A one-line transaction, and a failing one: QEMU's error, all or nothing.
          yield* keys("transaction( block-dirty-bitmap-add node=n0 name=b0 )", "Enter")
          yield* until((text) => text.includes("GenericError: Bitmap already exists: b0"), "the refusal")
          yield* keys("C-d")
          yield* until((text) => text.includes("EXITED 0"), "the shell's exit")
          const transcript = Fs.readFileSync(log, "utf8").trim().split("\n").map((line) => JSON.parse(line))
          expect(transcript).toEqual([
            {
              execute: "transaction",
              arguments: {
                actions: [
                  { type: "block-dirty-bitmap-add", data: { node: "n0", name: "b0" } },
                  { type: "block-dirty-bitmap-add", data: { node: "n0", name: "b1", persistent: false } }
                ]
              }
            },
            { return: {} },
            {
              execute: "transaction",
              arguments: { actions: [{ type: "block-dirty-bitmap-add", data: { node: "n0", name: "b0" } }] }
            },
            { error: { class: "GenericError", desc: "Bitmap already exists: b0" } }
          ])
        }),
      60_000
    )

    it.scopedLive(
      "a socket another client holds: after a second without a greeting, a line says why and how long qmp waits",
      () =>
        Effect.gen(function*() {
          assert(hasTmux, "tmux is needed for the terminal test: apt-get install tmux")
          // The session's own client holds QEMU's first socket: QEMU greets nobody else there.
          const { qemu: vm } = yield* qemu
          const held = "path" in vm.address ? vm.address.path : assert.fail("a Unix socket")
          const { until } = yield* terminal(
            `${process.execPath} ${buildCli()} exec -s ${held} --connect-timeout 4s query-status; ` +
              `echo "EXITED $?"; sleep 60`
          )
          const notice = yield* until((text) => text.includes("Waiting up to"), "the notice")
          const joined = notice.replace(/\n/g, "")
          expect(joined).toContain(`qmp: no greeting from unix:${held} yet: another client probably holds this socket`)
          expect(joined).toContain("Waiting up to 4s in all (--connect-timeout).")
          expect(notice).not.toContain("EXITED")
          const end = yield* until((text) => text.includes("EXITED"), "qmp's exit")
          expect(end).toContain("EXITED 1")
          expect(end.replace(/\n/g, "")).toMatch(/qmp: .*greet/i)
        }),
      60_000
    )

    it.scopedLive(
      "--hmp: HMP command lines, Tab from HMP's help, events above, quit asks first",
      () =>
        Effect.gen(function*() {
          assert(hasTmux, "tmux is needed for the terminal test: apt-get install tmux")
          const { dir, qemu: vm, second } = yield* qemu
          const { keys, until } = yield* shellIn(second, `${dir}/h`, "--hmp")
          yield* until((text) => text.includes("the human monitor of QEMU 7.") && lastLine(text) === "(HMP)", "prompt")
          yield* keys("info statu", "Tab")
          yield* until((text) => lastLine(text) === "(HMP) info status", "info status completed")
          yield* keys("Enter")
          yield* until((text) => text.includes("VM status: running") && lastLine(text) === "(HMP)", "the status")
          yield* keys("stop", "Enter")
          yield* until((text) => /STOP\s*\n\(HMP\)\s*$/.test(text), "the STOP event, then the prompt")
          yield* keys("info status", "Enter")
          yield* until((text) => text.includes("VM status: paused"), "paused")
          yield* keys("no-such-thing", "Enter")
          yield* until((text) => text.includes("unknown command: 'no-such-thing'"), "HMP's own error text")
          yield* keys("quit", "Enter")
          yield* until((text) => text.includes("[y/N]"), "the question")
          yield* keys("y", "Enter")
          yield* until((text) => text.includes("EXITED 0"), "the shell's exit")
          expect(yield* vm.exited).toBe(0)
        }),
      60_000
    )
  })
})
