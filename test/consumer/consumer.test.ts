/**
 * effect-qmp as a user gets it: `npm pack`, then the README's install line (the tarball in place of
 * `effect-qmp`) in a fresh app outside the repository, a strict NodeNext typecheck of the README's
 * library examples there, each example run (on a QEMU started as the README says, on a `qemu-ga`
 * where the example talks to the guest agent, or on QmpTestServer where the example uses it), and the
 * `qmp` bin run from the installed package. Then
 * an app on effect 4: npm refuses effect-qmp (a peer conflict), and with `--legacy-peer-deps` the
 * bundled `qmp` still works there.
 *
 * Run by `npm run test:consumer` (and CI), not by `npm test`: it takes a minute or two, and needs the
 * npm registry or a warm npm cache. Without QEMU, the parts that need it skip with a plain message
 * (they fail instead under QMP_REQUIRE_QEMU=1).
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { findOnPath } from "../../src/internal/findOnPath.js"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "../..")
const readme = Fs.readFileSync(Path.join(root, "README.md"), "utf8")
const manifest = JSON.parse(Fs.readFileSync(Path.join(root, "package.json"), "utf8")) as {
  readonly devDependencies: Record<string, string>
}

const work = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-qmp-consumer-"))

interface Result {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs a command to its end (no shell), with the npm cache of the user running the tests. */
const run = (
  command: string,
  args: ReadonlyArray<string>,
  cwd: string,
  env: Record<string, string> = {},
  timeout = 240_000
): Result => {
  const result = ChildProcess.spawnSync(command, args, {
    cwd,
    encoding: "utf8",
    timeout,
    env: { ...process.env, npm_config_update_notifier: "false", ...env }
  })
  if (result.error !== undefined) throw result.error
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

const expectSuccess = (result: Result, what: string): Result => {
  expect(result.status, `${what} failed:\n${result.stdout}\n${result.stderr}`).toBe(0)
  return result
}

/** `npm install` with the cache as it is (the registry only for what it lacks), and no audit. */
const npmInstall = (cwd: string, args: ReadonlyArray<string>): Result =>
  run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", ...args], cwd)

/** A fresh app: an ESM package.json in a directory of its own. */
const makeApp = (name: string): string => {
  const dir = Path.join(work, name)
  Fs.mkdirSync(dir)
  Fs.writeFileSync(Path.join(dir, "package.json"), JSON.stringify({ name, private: true, type: "module" }, null, 2))
  return dir
}

// -----------------------------------------------------------------------------
// What the README says
// -----------------------------------------------------------------------------

/** The install line of the README's Install section, as words. */
const installLine = (): ReadonlyArray<string> => {
  const line = readme.split("\n").find((line) => line.startsWith("npm install effect-qmp "))
  if (line === undefined) throw new Error("README.md has no line `npm install effect-qmp ...`")
  return line.trim().split(/\s+/)
}

interface Example {
  /** The README section it is in. */
  readonly section: string
  readonly code: string
}

/** The README's library examples: the TypeScript blocks that import effect-qmp. */
const examples: ReadonlyArray<Example> = (() => {
  const found: Array<Example> = []
  let section = ""
  const block = /^```ts\n([\s\S]*?)^```$/gm
  const headings = [...readme.matchAll(/^#{2,3} (.+)$/gm)]
  for (const match of readme.matchAll(block)) {
    section = headings.filter((heading) => heading.index! < match.index!).pop()?.[1] ?? section
    if (/from "effect-qmp(\/[^"]*)?"/.test(match[1])) found.push({ section, code: match[1] })
  }
  return found
})()

/** What each example must print: a pattern per README section, in the order of its examples. */
const expectedOutput: Record<string, ReadonlyArray<RegExp>> = {
  "Five lines": [/^STOP\n$/],
  "Connect to your QEMU": [
    /^\{ major: \d+, minor: \d+, micro: \d+ \}\n\{ status: 'running', [^\n]*\}\nSTOP RESUME\n$/,
    /^\d+ \{ status: 'running', [^\n]*\}\n$/
  ],
  "Typed commands and events": [/^true running\ncreated\n$/],
  "The guest agent": [/^\{\}\n\d+\.\d+\.\d+\n$/],
  "Many VMs: `QmpFleet`": [/^STOP RESUME\nConnected\n$/],
  "Test without QEMU": [/^\{ pong: true \}\n\{ echo: 'hi' \}\n$/]
}

/** The README's command that starts a QEMU with a QMP socket at /tmp/qmp.sock. */
const qemuCommand = (): ReadonlyArray<string> => {
  const line = readme.split("\n").find((line) =>
    line.startsWith("qemu-system-x86_64 ") && line.includes("/tmp/qmp.sock")
  )
  if (line === undefined) throw new Error("README.md has no qemu-system-x86_64 command line with /tmp/qmp.sock")
  return line.replace(/\s*&\s*$/, "").trim().split(/\s+/)
}

const qemuBinary = findOnPath("qemu-system-x86_64")

/** `it` for what needs QEMU: skipped plainly without it, or failing under QMP_REQUIRE_QEMU=1. */
const itQemu = (name: string, body: () => void) => {
  if (qemuBinary !== undefined) return it(name, body)
  if (process.env.QMP_REQUIRE_QEMU === "1") {
    return it(name, () => {
      throw new Error("QMP_REQUIRE_QEMU=1 but qemu-system-x86_64 is not on PATH (apt-get install qemu-system-x86)")
    })
  }
  console.warn(`Skipping "${name}": qemu-system-x86_64 is not on PATH (install qemu-system-x86 to run it).`)
  return it.skip(name, body)
}

/** `qemu-ga`, on PATH or where Debian puts it. */
const agentBinary = findOnPath("qemu-ga") ?? (Fs.existsSync("/usr/sbin/qemu-ga") ? "/usr/sbin/qemu-ga" : undefined)

/** `it` for what needs the guest agent: skipped plainly without it, or failing under QMP_REQUIRE_QEMU=1. */
const itAgent = (name: string, body: () => void) => {
  if (agentBinary !== undefined) return it(name, body)
  if (process.env.QMP_REQUIRE_QEMU === "1") {
    return it(name, () => {
      throw new Error("QMP_REQUIRE_QEMU=1 but qemu-ga is not installed (apt-get install qemu-guest-agent)")
    })
  }
  console.warn(`Skipping "${name}": qemu-ga is not installed (install qemu-guest-agent to run it).`)
  return it.skip(name, body)
}

// -----------------------------------------------------------------------------
// The package, a QEMU, a guest agent
// -----------------------------------------------------------------------------

let tarball: string
/** The socket of the QEMU the examples use, in place of the README's /tmp/qmp.sock. */
const socket = Path.join(work, "qmp.sock")
let qemu: ChildProcess.ChildProcess | undefined
/** The socket of the guest agent, in place of the README's /tmp/qga.sock. */
const agentSocket = Path.join(work, "qga.sock")
let agent: ChildProcess.ChildProcess | undefined

beforeAll(() => {
  // npm pack runs `prepare` (npm run build): the tarball holds what this tree builds.
  const packed = expectSuccess(run("npm", ["pack", "--pack-destination", work, "--silent"], root), "npm pack")
  tarball = Path.join(work, packed.stdout.trim().split("\n").pop()!)
  expect(Fs.existsSync(tarball), tarball).toBe(true)

  if (qemuBinary !== undefined) {
    const [binary, ...args] = qemuCommand().map((word) => word.replace("/tmp/qmp.sock", socket))
    qemu = ChildProcess.spawn(binary, args, { stdio: "ignore" })
    const deadline = Date.now() + 10_000
    while (!Fs.existsSync(socket) && Date.now() < deadline) ChildProcess.spawnSync("sleep", ["0.05"])
    expect(Fs.existsSync(socket), "QEMU did not create its QMP socket").toBe(true)
  }

  if (agentBinary !== undefined) {
    // Every command blocked but the harmless ones (run as root, guest-shutdown would stop the machine).
    const allowed = ["guest-ping", "guest-sync", "guest-sync-delimited", "guest-info"]
    const blocked = run(agentBinary, ["-b", "help"], work).stdout.split("\n")
      .map((line) => line.trim()).filter((name) => name !== "" && !allowed.includes(name))
    const state = Path.join(work, "qga-state")
    Fs.mkdirSync(state)
    agent = ChildProcess.spawn(agentBinary, [
      "--method",
      "unix-listen",
      "--path",
      agentSocket,
      "-t",
      state,
      "-b",
      blocked.join(",")
    ], { stdio: "ignore" })
    const deadline = Date.now() + 10_000
    while (!Fs.existsSync(agentSocket) && Date.now() < deadline) ChildProcess.spawnSync("sleep", ["0.05"])
    expect(Fs.existsSync(agentSocket), "qemu-ga did not create its socket").toBe(true)
  }
})

afterAll(() => {
  qemu?.kill("SIGKILL")
  agent?.kill("SIGKILL")
  Fs.rmSync(work, { recursive: true, force: true })
})

// -----------------------------------------------------------------------------
// An app on effect 3, installed as the README says
// -----------------------------------------------------------------------------

describe("an app installing effect-qmp as the README says", () => {
  let app: string

  beforeAll(() => {
    app = makeApp("app")
    const [, , ...packages] = installLine()
    const line = packages.map((name) => name === "effect-qmp" ? tarball : name)
    expect(line).toContain(tarball)
    const tools = ["typescript", "@types/node"].map((name) => `${name}@${manifest.devDependencies[name]}`)
    expectSuccess(npmInstall(app, [...line, ...tools]), "npm install (the README's line)")
  })

  it("gets the tarball itself, and one copy of Effect shared with the app", () => {
    const installed = Path.join(app, "node_modules", "effect-qmp")
    expect(Fs.lstatSync(installed).isSymbolicLink()).toBe(false)
    expect(Fs.existsSync(Path.join(installed, "dist", "index.js"))).toBe(true)
    expect(Fs.existsSync(Path.join(installed, "node_modules"))).toBe(false)
    const dependencies = JSON.parse(Fs.readFileSync(Path.join(app, "package.json"), "utf8")).dependencies
    expect(dependencies["effect-qmp"]).toMatch(/^file:.*\.tgz$/)
    const tree = JSON.parse(expectSuccess(run("npm", ["ls", "effect", "--all", "--json"], app), "npm ls").stdout)
    const versions = new Set<string>()
    const walk = (node: { version?: string; dependencies?: Record<string, any> }, name: string) => {
      if (name === "effect" && node.version !== undefined) versions.add(node.version)
      for (const [child, value] of Object.entries(node.dependencies ?? {})) walk(value, child)
    }
    walk(tree, "")
    expect([...versions]).toHaveLength(1)
    expect([...versions][0]).toMatch(/^3\./)
  })

  it("has every README library example", () => {
    expect(examples.map((example) => example.section)).toEqual(
      Object.entries(expectedOutput).flatMap(([section, outputs]) => outputs.map(() => section))
    )
  })

  it("typechecks the README's library examples, and a client typed by a module from qmp codegen (tsc, NodeNext, strict, the libraries' declarations too)", () => {
    const src = Path.join(app, "src")
    Fs.mkdirSync(src)
    examples.forEach((example, i) => Fs.writeFileSync(Path.join(src, `example${i + 1}.ts`), example.code))
    // The README's way to a module of one's own QEMU, here from a saved reply: its code imports the
    // installed package's QmpSchema, and types a client that knows its commands and no others.
    const fixture = Path.join(root, "test", "fixtures", "small-qemu.json")
    const codegen = ["--no-install", "qmp", "codegen", "--from", fixture, "--qemu", "0.1.0", "--out", "src/small"]
    expectSuccess(run("npx", codegen, app), "npx qmp codegen")
    Fs.writeFileSync(
      Path.join(src, "typed.ts"),
      [
        `import { Effect } from "effect"`,
        `import { QmpClient, QmpEvents } from "effect-qmp"`,
        `import { module } from "./small/index.js"`,
        `import type { QueryMachineReturn } from "./small/index.js"`,
        `export const program = Effect.gen(function*() {`,
        `  const qmp = yield* QmpClient.typed(module)`,
        `  const machine: QueryMachineReturn = yield* qmp.execute("query-machine")`,
        `  const state: "idle" | "busy" | "legacy" = machine.state`,
        `  yield* qmp.execute("device-del", { id: "d0" })`,
        `  // @ts-expect-error QEMU 7.2's command, not this QEMU's`,
        `  yield* qmp.execute("query-status")`,
        `  const events = yield* QmpEvents.typed(module)`,
        `  const changed = yield* events.listener("DEVICE_CHANGED")`,
        `  return [state, (yield* changed.take).data.state] as const`,
        `})`
      ].join("\n")
    )
    Fs.writeFileSync(
      Path.join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          types: ["node"],
          skipLibCheck: false,
          outDir: "out"
        },
        include: ["src"]
      })
    )
    const tsc = Path.join(app, "node_modules", "typescript", "bin", "tsc")
    expectSuccess(run(process.execPath, [tsc, "-p", app], app), "tsc")
  })

  examples.forEach((example, i) => {
    const expected = expectedOutput[example.section]?.[
      examples.slice(0, i).filter((e) => e.section === example.section).length
    ]
    const needsQemu = /QmpClient\.layer\(|QemuProcess\.layer\(|QmpFleet\.layer\(/.test(example.code)
    const needsAgent = /GuestAgent\.layer\(/.test(example.code)
    const test = needsQemu ? itQemu : needsAgent ? itAgent : it
    test(`runs the README's example ${i + 1} (${example.section})`, () => {
      const file = Path.join(app, "out", `example${i + 1}.js`)
      const source = Fs.readFileSync(file, "utf8").replaceAll("/tmp/qmp.sock", socket)
        .replaceAll("/tmp/qga.sock", agentSocket)
      Fs.writeFileSync(file, source)
      const result = expectSuccess(run(process.execPath, [file], app, {}, 60_000), `example ${i + 1}`)
      expect(result.stdout).toMatch(expected ?? /[\s\S]*/)
    })
  })

  it("npx qmp --help runs the bundled qmp of the installed package", () => {
    const result = expectSuccess(run("npx", ["--no-install", "qmp", "--help"], app), "npx qmp --help")
    expect(result.stdout).toMatch(/Talk to QEMU over QMP[\s\S]*exec[\s\S]*events[\s\S]*wait[\s\S]*shell[\s\S]*demo/)
    expect(result.stderr).toBe("")
  })

  itQemu("npx qmp exec query-status, and wait -- stop, on a real QEMU", () => {
    const env = { QMP_SOCKET: socket }
    const status = expectSuccess(run("npx", ["--no-install", "qmp", "exec", "query-status"], app, env), "qmp exec")
    expect(JSON.parse(status.stdout)).toMatchObject({ status: "running" })
    const stop = expectSuccess(
      run("npx", ["--no-install", "qmp", "wait", "--name", "STOP", "--", "stop"], app, env),
      "qmp wait"
    )
    expect(JSON.parse(stop.stdout)).toMatchObject({ event: "STOP" })
    expectSuccess(run("npx", ["--no-install", "qmp", "exec", "cont"], app, env), "qmp exec cont")
  })
})

// -----------------------------------------------------------------------------
// An app on effect 4
// -----------------------------------------------------------------------------

describe("an app on effect 4", () => {
  let app: string

  beforeAll(() => {
    app = makeApp("app-effect4")
    expectSuccess(npmInstall(app, ["effect@4.1.0"]), "npm install effect@4.1.0")
  })

  it("npm refuses effect-qmp: a peer conflict, not a crash later", () => {
    const result = npmInstall(app, [tarball])
    expect(result.status).not.toBe(0)
    expect(result.stderr).toContain("ERESOLVE")
    expect(result.stderr).toMatch(/peer effect@"\^3\./)
  })

  it("with --legacy-peer-deps, the bundled qmp works beside effect 4", () => {
    expectSuccess(npmInstall(app, ["--legacy-peer-deps", tarball]), "npm install --legacy-peer-deps")
    const effect = JSON.parse(Fs.readFileSync(Path.join(app, "node_modules", "effect", "package.json"), "utf8"))
    expect(effect.version).toMatch(/^4\./)
    const help = expectSuccess(run("npx", ["--no-install", "qmp", "--help"], app), "npx qmp --help")
    expect(help.stdout).toContain("Talk to QEMU over QMP")
    if (qemuBinary !== undefined) {
      const status = expectSuccess(
        run("npx", ["--no-install", "qmp", "exec", "query-status"], app, { QMP_SOCKET: socket }),
        "qmp exec"
      )
      expect(JSON.parse(status.stdout)).toMatchObject({ running: true })
    }
  })
})
