/**
 * Running the built `qmp` tool as a child process.
 *
 * The CLI is compiled once with `tsconfig.build.json` (as `npm run build` does) into
 * `node_modules/.cache/effect-qmp/cli-<hash of the sources>/dist`, and reused while the sources are
 * unchanged: a run of the suite pays the build (a few seconds) only after an edit, and every process
 * starts on plain Node (no TypeScript loader: about half the start-up time of tsx). Test files that
 * build at once race safely: each builds into a directory of its own, renamed into place.
 */
import { Effect } from "effect"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "../..")

const sourceFiles = (dir: string): Array<string> =>
  Fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = Path.join(dir, entry.name)
    return entry.isDirectory() ? sourceFiles(path) : entry.name.endsWith(".ts") ? [path] : []
  })

const sourceHash = (): string => {
  const hash = Crypto.createHash("sha256")
  const files = [
    ...sourceFiles(Path.join(root, "src")).sort(),
    ...["package.json", "tsconfig.json", "tsconfig.build.json"].map((name) => Path.join(root, name))
  ]
  for (const file of files) {
    hash.update(Path.relative(root, file)).update("\0").update(Fs.readFileSync(file)).update("\0")
  }
  return hash.digest("hex").slice(0, 16)
}

let built: string | undefined

/**
 * Builds the CLI if its sources changed since the last build, and gives the path of `qmp.js`.
 * Synchronous: call it from `beforeAll` (with a timeout of a minute: tsc takes a few seconds).
 */
export const buildCli = (): string => {
  if (built !== undefined) return built
  const cache = Path.join(root, "node_modules", ".cache", "effect-qmp")
  const target = Path.join(cache, `cli-${sourceHash()}`)
  const entry = Path.join(target, "dist", "bin", "qmp.js")
  if (!Fs.existsSync(entry)) {
    Fs.mkdirSync(cache, { recursive: true })
    const work = Fs.mkdtempSync(Path.join(cache, "building-"))
    const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
    const result = ChildProcess.spawnSync(
      process.execPath,
      [tsc, "-p", Path.join(root, "tsconfig.build.json"), "--outDir", Path.join(work, "dist")],
      { cwd: root, encoding: "utf8" }
    )
    if (!Fs.existsSync(Path.join(work, "dist", "bin", "qmp.js"))) {
      throw new Error(`building the CLI failed:\n${result.stdout}${result.stderr}`)
    }
    if (result.status !== 0) {
      // tsc emits despite type errors; `npm run typecheck` is where those fail.
      console.warn(`tsc reported errors while building the CLI for the tests:\n${result.stdout}`)
    }
    // Inside node_modules, the nearest package.json decides the module system: ESM, as the package.
    const { version } = JSON.parse(Fs.readFileSync(Path.join(root, "package.json"), "utf8")) as { version: string }
    Fs.writeFileSync(Path.join(work, "package.json"), JSON.stringify({ type: "module", version }))
    try {
      Fs.renameSync(work, target)
    } catch {
      // Another test file built the same sources first.
      Fs.rmSync(work, { recursive: true, force: true })
    }
    // Builds of older sources, left by earlier runs.
    for (const name of Fs.readdirSync(cache)) {
      const path = Path.join(cache, name)
      if (path !== target && name.startsWith("cli-") && Date.now() - Fs.statSync(path).mtimeMs > 3_600_000) {
        Fs.rmSync(path, { recursive: true, force: true })
      }
    }
  }
  built = entry
  return entry
}

export interface Result {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

export interface RunOptions {
  /** Extra environment variables (QMP_SOCKET, ...); QMP_SOCKET and QMP_TCP are unset otherwise. */
  readonly env?: Record<string, string> | undefined
  /** Called with each chunk of stderr as it comes. */
  readonly onStderr?: ((chunk: string) => void) | undefined
  /** Kill the process after this long (default 30 s). */
  readonly timeout?: number | undefined
  /** Written to its stdin (a pipe, not a terminal), which is then closed; without it, stdin is empty. */
  readonly input?: string | undefined
}

/** A running `qmp` process. */
export interface Running {
  readonly pid: number
  /** Waits until stderr has shown `text`. */
  readonly stderrShows: (text: string) => Effect.Effect<void>
  /** Waits for the exit. */
  readonly result: Effect.Effect<Result>
}

/**
 * Starts `qmp` with `args`, for the current scope: the process is killed if it is still running when
 * the scope closes.
 */
export const start = (args: ReadonlyArray<string>, options: RunOptions = {}) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const env: Record<string, string | undefined> = { ...process.env, QMP_SOCKET: undefined, QMP_TCP: undefined }
      delete env.QMP_SOCKET
      delete env.QMP_TCP
      const child = ChildProcess.spawn(process.execPath, [buildCli(), ...args], {
        env: { ...env, ...options.env },
        stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"]
      })
      if (options.input !== undefined) child.stdin!.end(options.input)
      let stdout = ""
      let stderr = ""
      const stderrWaiters: Array<{ text: string; resume: () => void }> = []
      child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
      child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
        stderr += chunk
        options.onStderr?.(chunk)
        for (const waiter of stderrWaiters.filter((w) => stderr.includes(w.text))) {
          stderrWaiters.splice(stderrWaiters.indexOf(waiter), 1)
          waiter.resume()
        }
      })
      const killer = setTimeout(() => child.kill("SIGKILL"), options.timeout ?? 30_000)
      const exit = new Promise<Result>((resolve) =>
        child.on("close", (code, signal) => {
          clearTimeout(killer)
          resolve({ code, signal, stdout, stderr })
        })
      )
      const running: Running = {
        pid: child.pid!,
        stderrShows: (text) =>
          Effect.async<void>((resume) => {
            if (stderr.includes(text)) return resume(Effect.void)
            stderrWaiters.push({ text, resume: () => resume(Effect.void) })
          }),
        result: Effect.promise(() => exit)
      }
      return { child, running }
    }),
    ({ child }) =>
      Effect.sync(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
      })
  ).pipe(Effect.map(({ running }) => running))

/** Runs `qmp` with `args` to its exit. */
export const run = (args: ReadonlyArray<string>, options: RunOptions = {}): Effect.Effect<Result> =>
  Effect.scoped(Effect.flatMap(start(args, options), (running) => running.result))
