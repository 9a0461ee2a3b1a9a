/**
 * The `qmp` executable as it ships: the esbuild bundle of `scripts/bundle.ts`, copied out of the
 * repository (so that nothing can be found in a node_modules) and run there. It must carry its own
 * dependencies, and `qmp exec` must not load the code of the other commands, nor `@effect/cli`.
 * (The other CLI tests run the same sources compiled by tsc; this file checks what bundling adds.)
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { bundle } from "../../scripts/bundle.js"
import type { Bundle } from "../../scripts/bundle.js"
import { QemuProcess } from "../../src/index.js"
import { describeQemu, session } from "../support/qemu.js"

/** A package directory outside the repository: `package.json` and the bundle in `dist/bin`. */
const home = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-qmp-bundle-"))
const outdir = Path.join(home, "dist", "bin")
let built: Bundle

beforeAll(async () => {
  built = await bundle(outdir)
  Fs.writeFileSync(Path.join(home, "package.json"), JSON.stringify({ type: "module", version: "9.8.7" }))
  return () => Fs.rmSync(home, { recursive: true, force: true })
}, 60_000)

interface Result {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the bundled `qmp` with `args`, from a directory with no node_modules above it. */
const qmp = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Effect.Effect<Result> =>
  Effect.async<Result>((resume) => {
    const child = ChildProcess.execFile(
      process.execPath,
      [built.entry, ...args],
      { cwd: home, env: { PATH: process.env.PATH ?? "", ...env }, timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : null
        resume(Effect.succeed({ code, stdout, stderr }))
      }
    )
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/**
 * The source files in the files that `qmp.js` reads when it starts (its static imports), and when it
 * then runs the dynamically imported module `entryPoint` (with that module's static imports).
 */
const loadedWith = (entryPoint: string): ReadonlyArray<string> => {
  const seen = new Set<string>()
  const visit = (file: string) => {
    if (seen.has(file)) return
    seen.add(file)
    for (const entry of built.outputs[file].imports) {
      if (!entry.external && entry.kind === "import-statement") visit(entry.path)
    }
  }
  visit("qmp.js")
  const chunk = Object.keys(built.outputs).find((file) => built.outputs[file].entryPoint === entryPoint)
  expect(chunk, entryPoint).toBeDefined()
  visit(chunk!)
  return [...seen].flatMap((file) => built.outputs[file].inputs)
}

describe("the bundled qmp", () => {
  it("imports nothing but Node's own modules", () => {
    for (const [file, output] of Object.entries(built.outputs)) {
      for (const entry of output.imports) {
        if (entry.external) expect(entry.path, file).toMatch(/^node:|^[a-z_]+$/)
        expect(entry.kind, `${file}: ${entry.path}`).not.toBe("require-call")
      }
    }
    expect(built.inputs).not.toContain("node_modules/effect/dist/esm/index.js")
  })

  for (const command of ["exec", "events", "wait"]) {
    it(`qmp ${command} loads neither @effect/cli nor the code of the other commands (jobs included), nor the test server, nor QEMU's schema`, () => {
      const inputs = loadedWith(`src/bin/${command}.ts`)
      expect(inputs).toContain(`src/bin/${command}.ts`)
      expect(inputs).toContain("src/QmpClient.ts")
      for (const input of inputs) {
        expect(input).not.toMatch(
          /@effect\/cli|@effect\/printer|src\/bin\/(cli|shell|demo|codegen|schema|job|progress)\.ts|src\/testing\/|src\/qemu\/|src\/codegen\/|src\/SchemaCheck\.ts|src\/Jobs\.ts|src\/internal\/jobs\.ts/
        )
        if (input.startsWith("src/bin/") && /\/(exec|events|wait)\.ts$/.test(input)) {
          expect(input).toBe(`src/bin/${command}.ts`)
        }
      }
    })
  }

  it.live("qmp --help: the help, as plain text when piped, with the package's version", () =>
    Effect.gen(function*() {
      const result = yield* qmp(["--help"])
      expect(result.stderr).toBe("")
      expect(result.code).toBe(0)
      expect(result.stdout).toMatch(/qmp 9\.8\.7[\s\S]*exec[\s\S]*events[\s\S]*wait[\s\S]*shell[\s\S]*demo/)
      expect(result.stdout).not.toContain("\u001b[")
    }))

  it.live("errors are one line on stderr, on the quick way and through @effect/cli alike", () =>
    Effect.gen(function*() {
      const missing = yield* qmp(["exec", "--socket", "/nonexistent/qmp.sock", "query-status"])
      expect(missing.code).toBe(1)
      expect(missing.stderr).toMatch(
        /^qmp: Cannot connect to QMP at unix:\/nonexistent\/qmp\.sock: no such socket[^\n]*\n$/
      )
      const bogus = yield* qmp(["exec", "query-status", "--bogus"], { QMP_SOCKET: "/nonexistent/qmp.sock" })
      expect(bogus.code).toBe(1)
      expect(bogus.stderr).toBe("qmp: unknown option \"--bogus\" (npx qmp exec --help lists what it takes)\n")
      const unknown = yield* qmp(["frobnicate"])
      expect(unknown.code).toBe(1)
      expect(unknown.stderr).toMatch(
        /^qmp: unknown command "frobnicate": use one of exec, events, wait, shell, [^\n]*\n$/
      )
    }))

  it.live(
    "demo --server builtin runs to the end (the test server and the demo are in the bundle)",
    () =>
      Effect.gen(function*() {
        const result = yield* qmp(["demo", "--server", "builtin"])
        expect(result.stderr).toBe("")
        expect(result.code).toBe(0)
        expect(result.stdout).toMatch(/\] 100% {2}16\.0\/16\.0 MiB {2}concluded/)
      }),
    60_000
  )
})

describeQemu("the bundled qmp against real QEMU", () => {
  it.scopedLive("exec, wait -- stop, and shell reading a script", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-qmp-bundle-qemu-"))),
        (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
      )
      const second = Path.join(dir, "second.sock")
      yield* session({ args: [...QemuProcess.defaultArgs, "-qmp", `unix:${second},server=on,wait=off`] })
      const env = { QMP_SOCKET: second }
      const status = yield* qmp(["exec", "query-status"], env)
      expect(status.stderr).toBe("")
      expect(JSON.parse(status.stdout)).toMatchObject({ status: "running", running: true })
      const stop = yield* qmp(["wait", "--name", "STOP", "--", "stop"], env)
      expect(stop.code).toBe(0)
      expect(JSON.parse(stop.stdout)).toMatchObject({ event: "STOP" })
      const shell = yield* Effect.async<Result>((resume) => {
        const child = ChildProcess.execFile(
          process.execPath,
          [built.entry, "shell"],
          { cwd: home, env: { PATH: process.env.PATH ?? "", ...env }, timeout: 30_000 },
          (error, stdout, stderr) =>
            resume(Effect.succeed({ code: error === null ? 0 : Number(error.code), stdout, stderr }))
        )
        child.stdin?.end("query-status\ncont\n")
      })
      expect(shell.code).toBe(0)
      expect(shell.stdout.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line))).toEqual([
        { status: "paused", singlestep: false, running: false },
        {}
      ])
    }), 60_000)
})
