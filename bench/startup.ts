/**
 * How long `qmp exec query-status` takes from start to exit against a real
 * QEMU, beside `node -e 0` (Node's own start-up, the floor of any Node tool) and socat (a process that
 * connects, negotiates and sends query-status, with no runtime to start), and `qmp --help` (the full
 * command line, through @effect/cli).
 *
 * The `qmp` timed is the bundle that `scripts/bundle.ts` builds from the sources as they are, as
 * `npm run build` would, in a temporary directory. One QEMU (`-machine none`) serves every run; each
 * run is a fresh process that connects, runs its command and exits. The commands run in rounds, one of
 * each in turn, so that a change in the machine's load falls on all of them alike; the figures are the
 * median (min – max) of the rounds' wall times, and "over node" is the median over `node -e 0`'s.
 *
 * Without `qemu-system-x86_64` on PATH the workload says so and skips; without socat, its row does.
 * To run the measuring child by hand (the bundle and QEMU first: see `run` below):
 *
 *     node --import tsx bench/startup.ts --qmp DIST/bin/qmp.js --socket QMP.SOCK --runs 20
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { bundle } from "../scripts/bundle.js"
import { findOnPath } from "../src/internal/findOnPath.js"
import { startQemu } from "./qemu.js"
import { header, row, summarize } from "./stats.js"
import type { Column } from "./stats.js"
import type { Workload } from "./workload.js"
import { commandLine, isMain, peakRssBytes, reportResult, root, runChild } from "./workload.js"

/** What is timed, in the order of each round. */
const commands = ["node", "exec", "help", "socat"] as const
type Command = typeof commands[number]

const labels: Record<Command, string> = {
  node: "node -e 0",
  exec: "qmp exec query-status",
  help: "qmp --help (@effect/cli)",
  socat: "socat (negotiate, query-status)"
}

/** The goal: `qmp exec query-status` at most this much over `node -e 0`, in seconds. */
const goal = 0.15

// ---------------------------------------------------------------------------------------------------
// The child: times the rounds and reports every wall time.

interface Config {
  readonly qmp: string
  readonly socket: string
  readonly runs: number
}

/** Runs one command to its exit and gives its wall time in milliseconds; throws if it failed. */
const timeOne = (command: Command, config: Config, socat: string | undefined): number => {
  const [file, args, input] = command === "node"
    ? [process.execPath, ["-e", "0"], undefined]
    : command === "exec"
    ? [process.execPath, [config.qmp, "exec", "--socket", config.socket, "query-status"], undefined]
    : command === "help"
    ? [process.execPath, [config.qmp, "--help"], undefined]
    : [
      socat!,
      ["-", `UNIX-CONNECT:${config.socket}`],
      "{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"query-status\"}\n"
    ]
  const started = performance.now()
  const result = spawnSync(file, args, { input, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] })
  const elapsed = performance.now() - started
  const expected = command === "help" ? "exec" : command === "node" ? "" : "running"
  if (result.status !== 0 || !result.stdout.includes(expected)) {
    throw new Error(`${labels[command]} failed (${result.status}): ${result.stdout}${result.stderr}`)
  }
  return elapsed
}

const main = (): void => {
  const { values } = parseArgs({
    options: { qmp: { type: "string" }, socket: { type: "string" }, runs: { type: "string", default: "20" } },
    strict: true
  })
  if (values.qmp === undefined || values.socket === undefined) throw new Error("--qmp and --socket are required")
  const config: Config = { qmp: values.qmp, socket: values.socket, runs: Number(values.runs) }
  const socat = findOnPath("socat")
  const times: Record<string, Array<number>> = {}
  for (let round = 0; round < config.runs; round++) {
    for (const command of commands) {
      if (command === "socat" && socat === undefined) continue
      const list = times[command] ?? []
      list.push(timeOne(command, config, socat))
      times[command] = list
    }
  }
  const extra: Record<string, number> = {}
  for (const [command, list] of Object.entries(times)) list.forEach((ms, i) => (extra[`${command}.${i}`] = ms))
  reportResult({ rates: times.exec, peakRssBytes: peakRssBytes(), baseRssBytes: 0, extra })
}

// ---------------------------------------------------------------------------------------------------
// The workload, as `index.ts` runs it.

const script = path.relative(root, fileURLToPath(import.meta.url))

/** Milliseconds as seconds to the millisecond: `0.093 s`. */
const formatSeconds3 = (milliseconds: number): string => `${(milliseconds / 1000).toFixed(3)} s`

/** A difference in milliseconds as signed seconds: `+0.093 s`, `-0.062 s`. */
const signedSeconds = (milliseconds: number): string =>
  `${milliseconds < 0 ? "-" : "+"}${formatSeconds3(Math.abs(milliseconds))}`

const columns: ReadonlyArray<Column> = [
  { header: "command", width: 31 },
  { header: "wall: median (min – max)", width: 28 },
  { header: "over node -e 0", width: 14, align: "right" }
]

/** The start-up of `qmp exec query-status` on a real QEMU. */
export const workload: Workload = {
  title: "start-up: qmp exec query-status on a real QEMU, beside node -e 0 and socat",
  run: async (options, print) => {
    const qemuBinary = findOnPath("qemu-system-x86_64")
    if (qemuBinary === undefined) {
      print("skipped: qemu-system-x86_64 is not on PATH (apt-get install qemu-system-x86 to run this workload).")
      return
    }
    const runs = options.quick ? 10 : 20
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-qmp-bench-startup-"))
    let qemu: { readonly stop: () => void } | undefined
    try {
      const built = await bundle(path.join(dir, "dist", "bin"))
      fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ type: "module", version: "0.0.0-bench" }))
      const socket = path.join(dir, "qmp.sock")
      qemu = await startQemu(qemuBinary, [socket])
      print(`${runs} rounds of one run each: node -e 0, qmp exec query-status, qmp --help, socat. qmp is the bundle`)
      print("of the sources as they are (scripts/bundle.ts, in a temporary directory); one QEMU (-machine none)")
      print("serves every run, each a fresh process that connects, runs its command and exits.")
      if (findOnPath("socat") === undefined) print("socat is not on PATH: its row is skipped.")
      print("")
      const args = ["--qmp", built.entry, "--socket", socket, "--runs", String(runs)]
      const result = await runChild(script, args)
      const times = new Map<string, Array<number>>()
      for (const [key, ms] of Object.entries(result.extra)) {
        const [command] = key.split(".")
        times.set(command, [...(times.get(command) ?? []), ms])
      }
      const node = summarize(times.get("node")!).median
      for (const line of header(columns)) print(line)
      for (const command of commands) {
        const list = times.get(command)
        if (list === undefined) {
          print(row(columns, [labels[command], "skipped"]))
          continue
        }
        const summary = summarize(list)
        const over = command === "node" ? "" : signedSeconds(summary.median - node)
        const range = `${formatSeconds3(summary.median)} (${formatSeconds3(summary.min)} – ${
          formatSeconds3(summary.max)
        })`
        print(row(columns, [labels[command], range, over]))
      }
      const over = summarize(times.get("exec")!).median - node
      print("")
      print(
        `qmp exec query-status over node -e 0: ${signedSeconds(over)}, medians of ${runs} runs each (goal: at most ` +
          `+${goal.toFixed(3)} s: ${over <= goal * 1000 ? "met" : "NOT met"}).`
      )
      print(`The measuring child (its temporary directory is gone after the run): ${commandLine(script, args)}`)
    } finally {
      qemu?.stop()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

if (isMain(import.meta.url)) main()
