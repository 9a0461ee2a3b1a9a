/**
 * What a workload is, and how its configurations run: each in a fresh child process, so that the
 * peak RSS reported for a configuration is that configuration's alone (`maxRSS` is a high-water mark
 * of the whole process, and a heap grown by one configuration is not given back before the next).
 *
 * A workload is a module under `bench/` that is both the description `index.ts` runs (`Workload`)
 * and, started as a script, the child that measures one configuration and reports it with
 * `reportResult` (one JSON line on stdout).
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

/** The repository's root: children run there, and commands are printed relative to it. */
export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

/** Options of the whole run (`npm run bench -- --quick`). */
export interface Options {
  readonly quick: boolean
}

/** A workload: its title and how to run all its configurations, printing as results come in. */
export interface Workload {
  readonly title: string
  readonly run: (options: Options, print: (line: string) => void) => Promise<void>
}

/** What a child reports about one configuration. */
export interface Result {
  /** One figure per measured run (events/s for the publish workload). */
  readonly rates: ReadonlyArray<number>
  /** `process.resourceUsage().maxRSS`, in bytes, when the child is done. */
  readonly peakRssBytes: number
  /** RSS once the modules are loaded, before the first (warm-up) run. */
  readonly baseRssBytes: number
  /** Figures that only this workload prints. */
  readonly extra: Readonly<Record<string, number>>
}

/** Node flags of every child: TypeScript through tsx, and `gc()` so that each run starts from a collected heap. */
const nodeFlags = ["--import", "tsx", "--expose-gc"]

/** The command that runs `script` (relative to the root) with `args`, as a user would type it. */
export const commandLine = (script: string, args: ReadonlyArray<string>): string =>
  ["node", ...nodeFlags, script, ...args].join(" ")

/** Runs a workload's script in a child process and returns what it reported. */
export const runChild = (script: string, args: ReadonlyArray<string>): Promise<Result> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeFlags, script, ...args], {
      cwd: root,
      stdio: ["ignore", "pipe", "inherit"]
    })
    let stdout = ""
    child.stdout.setEncoding("utf8")
    child.stdout.on("data", (data: string) => {
      stdout += data
    })
    child.on("error", reject)
    child.on("close", (code, signal) => {
      const last = stdout.trim().split("\n").pop() ?? ""
      if (code !== 0) {
        reject(new Error(`${commandLine(script, args)} exited with ${signal ?? code}`))
        return
      }
      try {
        resolve(JSON.parse(last) as Result)
      } catch {
        reject(new Error(`${commandLine(script, args)} printed no result: ${JSON.stringify(last)}`))
      }
    })
  })

/** In a child: reports its result to the parent (the last line of stdout). */
export const reportResult = (result: Result): void => {
  process.stdout.write(JSON.stringify(result) + "\n")
}

/** In a child: the process's peak RSS so far, in bytes. */
export const peakRssBytes = (): number => process.resourceUsage().maxRSS * 1024

/** `true` when the module at `url` is the script that node was started with (not an import). */
export const isMain = (url: string): boolean =>
  process.argv[1] !== undefined && url === pathToFileURL(path.resolve(process.argv[1])).href

/**
 * Node 24's `gc()` takes options (Node 20's does not, and collects nothing when given some). Its
 * "last-resort" flavor is the collection V8 makes under memory pressure: it also shrinks a young
 * generation that a burst of allocation grew, which V8 otherwise keeps at its largest (128 MiB after
 * 1 000 connects at once on Node 24, against 32 MiB on Node 20, where the young generation grows
 * less). That size is the process's, not what the objects measured hold.
 */
const gcTakesOptions = Number(process.versions.node.split(".")[0]) >= 24

/** Collects garbage, as thoroughly as the runtime can, if node was started with `--expose-gc`. */
export const collectGarbage = (): void => {
  const gc = (globalThis as { gc?: (options?: object) => void }).gc
  if (gc === undefined) return
  if (gcTakesOptions) gc({ type: "major", execution: "sync", flavor: "last-resort" })
  else gc()
}

/** A benchmark's server running in a child process, with a temporary directory of its own. */
export interface ChildServer {
  readonly dir: string
  /** The server's process id. */
  readonly pid: number
  /** Stops the server and removes its directory. */
  readonly close: () => Promise<void>
}

/**
 * Starts `script` (relative to the root) in a child process with the arguments `args` gives for a
 * fresh temporary directory, and waits for its first line on stdout (it prints one when it listens).
 * Closing its standard input stops it: it cannot outlive this process either way.
 */
export const spawnServer = (script: string, args: (dir: string) => ReadonlyArray<string>): Promise<ChildServer> =>
  new Promise((resolve, reject) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-qmp-bench-"))
    const child = spawn(process.execPath, ["--import", "tsx", script, ...args(dir)], {
      cwd: root,
      stdio: ["pipe", "pipe", "inherit"]
    })
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
    const close = async () => {
      child.stdin.end()
      await exited
      fs.rmSync(dir, { recursive: true, force: true })
    }
    let output = ""
    child.stdout.setEncoding("utf8")
    child.stdout.on("data", (text: string) => {
      output += text
      if (output.includes("\n")) resolve({ dir, pid: child.pid!, close })
    })
    child.once("error", reject)
    child.once("exit", (code) => {
      fs.rmSync(dir, { recursive: true, force: true })
      reject(new Error(`${script} exited with ${code} before it listened`))
    })
  })
