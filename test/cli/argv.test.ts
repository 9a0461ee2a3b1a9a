/**
 * The quick parser of `qmp` (src/bin/argv.ts) against @effect/cli: for every command line it
 * accepts, it gives exactly the configuration that @effect/cli gives; what it declines goes to
 * @effect/cli, so declining is always safe. The README's command lines must take the quick way.
 */
import * as CliCommand from "@effect/cli/Command"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import * as Argv from "../../src/bin/argv.js"
import * as Cli from "../../src/bin/cli.js"

type Outcome =
  | { readonly _tag: "Ran"; readonly command: string; readonly config: unknown }
  | { readonly _tag: "NotRun" }

/** What @effect/cli makes of `args`: the command it runs and its configuration, or nothing (help, errors). */
const viaEffectCli = (args: ReadonlyArray<string>): Outcome => {
  let outcome: Outcome = { _tag: "NotRun" }
  const capture = (command: string) => (config: unknown) =>
    Effect.sync(() => {
      outcome = { _tag: "Ran", command, config }
    })
  const command = Cli.makeCommand({
    exec: capture("exec"),
    events: capture("events"),
    wait: capture("wait"),
    shell: capture("shell"),
    demo: capture("demo"),
    codegen: capture("codegen"),
    schemaCheck: capture("schemaCheck"),
    jobRun: capture("jobRun"),
    jobWatch: capture("jobWatch")
  })
  const silent = { ...globalThis.console, log: () => {}, error: () => {}, info: () => {}, warn: () => {} }
  CliCommand.run(command, { name: "qmp", version: "0.0.0" })(["node", "qmp", ...args]).pipe(
    Effect.withConsole({
      ...Effect.runSync(Effect.console),
      unsafe: silent,
      log: () => Effect.void,
      error: () => Effect.void,
      info: () => Effect.void,
      warn: () => Effect.void
    }),
    Effect.provide(NodeContext.layer),
    Effect.ignore,
    Effect.runSync
  )
  return outcome
}

/** Options (and their Option values) as plain JSON, so that the two parsers' results compare by value. */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value))

const expectSame = (args: ReadonlyArray<string>) => {
  const quick = Argv.parse(["node", "qmp", ...args])
  if (quick === undefined) return false
  const full = viaEffectCli(args)
  expect(full, JSON.stringify(args)).toEqual({ _tag: "Ran", command: quick.command, config: expect.anything() })
  expect(full._tag === "Ran" && plain(full.config), JSON.stringify(args)).toEqual(plain(quick.config))
  return true
}

describe("the quick parser of qmp", () => {
  const readme: ReadonlyArray<ReadonlyArray<string>> = [
    ["exec", "query-status"],
    ["exec", "--socket", "/tmp/qmp.sock", "query-status"],
    ["exec", "-s", "/tmp/qmp.sock", "--connect-timeout", "30s", "query-status"],
    ["exec", "blockdev-add", "driver=null-co", "node-name=src", "size=16777216"],
    ["exec", "human-monitor-command", "command-line=info status"],
    ["exec", "no-such-command"],
    ["exec", "--tcp", "127.0.0.1:4444", "--timeout", "5s", "--oob", "x-test"],
    ["exec", "blockdev-add", "--args", "{\"driver\":\"null-co\"}", "node-name=n1", "-v"],
    ["exec", "object-add", "qom-type=secret", "id=s1", "data:=1234"],
    ["exec", "--agent", "guest-ping"],
    ["exec", "--agent", "--socket", "/tmp/qga.sock", "guest-exec", "path=/bin/true"],
    ["events", "--name", "STOP", "--name", "RESUME", "--count", "2"],
    ["events", "--format", "pretty", "--timeout", "5s"],
    ["events", "--match", "id=j1", "--match", "status=concluded", "--verbose"],
    ["events"],
    ["wait", "--name", "STOP", "--", "stop"],
    ["wait", "--name", "RESUME", "--timeout", "2s"],
    [
      "wait",
      "--name",
      "JOB_STATUS_CHANGE",
      "--match",
      "id=j2",
      "--match",
      "status=concluded",
      "--",
      "blockdev-backup",
      "job-id=j2",
      "device=src",
      "target=tgt",
      "sync=full",
      "speed=8388608"
    ],
    ["wait", "--verbose", "--name", "STOP", "--", "stop"],
    ["wait", "--name", "STOP", "stop"]
  ]
  for (const args of readme) {
    it(`takes the quick way, with @effect/cli's result: qmp ${args.join(" ")}`, () => {
      expect(expectSame(args)).toBe(true)
    })
  }

  const declined: ReadonlyArray<ReadonlyArray<string>> = [
    [],
    ["--help"],
    ["exec"],
    ["exec", "--help"],
    ["exec", "query-status", "-h"],
    ["exec", "--socket=/tmp/qmp.sock", "query-status"],
    ["exec", "query-status", "--bogus"],
    ["exec", "--verbose", "yes", "query-status"],
    // @effect/cli takes `--socket wait` out first, then reads "no" as the value of --oob.
    ["exec", "a.b=1", "--oob", "--socket", "wait", "no"],
    ["exec", "--socket", "a", "--socket", "b", "query-status"],
    ["events", "--count", "two"],
    ["events", "--count", "0"],
    ["exec", "--timeout", "soon", "query-status"],
    ["exec", "--connect-timeout", "1x", "query-status"],
    ["exec", "--tcp", "localhost", "query-status"],
    ["exec", "-s", "", "query-status"],
    ["events", "--format", "xml"],
    ["events", "--name", ""],
    ["wait", "--name", " STOP"],
    ["wait", "--name", "STOP", "--match", "id=j1 "],
    ["events", "extra"],
    ["wait"],
    ["wait", "--name", "STOP", "--", "human-monitor-command", "--help"],
    ["shell"],
    ["demo"],
    ["EXEC", "query-status"]
  ]
  for (const args of declined) {
    it(`leaves to @effect/cli: qmp ${args.join(" ")}`, () => {
      expect(Argv.parse(["node", "qmp", ...args])).toBeUndefined()
    })
  }

  it("gives @effect/cli's configuration for every command line it accepts (random command lines)", () => {
    const words = [
      "--socket",
      "-s",
      "--connect-timeout",
      "--tcp",
      "--verbose",
      "-v",
      "--args",
      "--timeout",
      "--oob",
      "--agent",
      "--name",
      "--match",
      "--count",
      "--format",
      "--history",
      "--server",
      "--help",
      "-h",
      "--version",
      "--bogus",
      "--",
      "-",
      "--socket=/tmp/x",
      "-vx",
      " --oob",
      "/tmp/q.sock",
      "localhost:4444",
      "query-status",
      "stop",
      "driver=null-co",
      "id:=123",
      "a.b=1",
      "{\"a\":1}",
      "5s",
      "1x",
      "localhost",
      "3",
      "0",
      "007",
      "1e2",
      "-1",
      "json",
      "pretty",
      "true",
      "no",
      "YES",
      "",
      " ",
      "STOP",
      " STOP",
      "exec",
      "events",
      "wait"
    ]
    const commandLine = fc.tuple(
      fc.constantFrom("exec", "events", "wait"),
      fc.array(fc.constantFrom(...words), { maxLength: 8 })
    )
    let quick = 0
    fc.assert(
      fc.property(commandLine, ([command, tokens]) => {
        if (expectSame([command, ...tokens])) quick++
      }),
      { numRuns: 3000 }
    )
    // The property says nothing if the quick parser declined everything.
    expect(quick).toBeGreaterThan(100)
  }, 120_000)
})
