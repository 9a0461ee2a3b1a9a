/**
 * Bundles the `qmp` executable with esbuild into `dist/bin/`: `qmp.js`, the entry, and its chunks in
 * `dist/bin/chunks/`. The bundle has its own copy of every dependency (effect, @effect/platform,
 * @effect/platform-node, @effect/cli): it imports nothing but Node's own modules, so it runs beside
 * an application on any version of Effect, and it starts fast. `npm run build` runs it after tsc.
 *
 * ESM, minified, tree-shaken, and split: each module that `src/bin` imports dynamically (`exec`,
 * `events`, `wait`, `shell`, `demo`, and `cli.ts` with `@effect/cli` behind it) is a chunk of its own,
 * read when that command runs, with the code that commands share in shared chunks. (One file with the
 * same dynamic imports evaluates each module lazily too, but Node still has to parse all of it: that
 * cost `qmp exec` about a quarter of its start-up time.)
 *
 * The build fails if the bundle would load the `effect` barrel (which evaluates every module of
 * effect), or import or `require` at run time anything but Node's own modules.
 *
 *   tsx scripts/bundle.ts [OUTDIR]   (default: dist/bin, replacing what tsc emitted there)
 */
import * as esbuild from "esbuild"
import * as Fs from "node:fs"
import { builtinModules } from "node:module"
import * as Path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")

/** One file of the bundle, with paths relative to the bundle's directory. */
export interface Output {
  /** The source file whose module this file is, for the entry and each dynamically imported module. */
  readonly entryPoint: string | undefined
  readonly bytes: number
  /** The source files in it, relative to the repository. */
  readonly inputs: ReadonlyArray<string>
  /** What it imports: Node's modules (external), and other files of the bundle. */
  readonly imports: ReadonlyArray<{ readonly path: string; readonly kind: string; readonly external: boolean }>
}

/** What was bundled. */
export interface Bundle {
  /** The executable: `OUTDIR/qmp.js`. */
  readonly entry: string
  /** Every file written, by its path relative to OUTDIR. */
  readonly outputs: Readonly<Record<string, Output>>
  /** The source files in the bundle, relative to the repository. */
  readonly inputs: ReadonlyArray<string>
}

const nodeModules = new Set([...builtinModules, ...builtinModules.map((name) => `node:${name}`)])

/**
 * `ws`, as a module that has nothing in it. `@effect/platform-node` imports it for WebSockets, which
 * `qmp` never opens; bundled, its CommonJS code would `require` Node's modules, which an ESM bundle
 * cannot do.
 */
const withoutWebSockets: esbuild.Plugin = {
  name: "without-websockets",
  setup(build) {
    build.onResolve({ filter: /^ws$/ }, () => ({ path: "ws", namespace: "without-websockets" }))
    build.onLoad({ filter: /.*/, namespace: "without-websockets" }, () => ({
      contents: "export const WebSocket = undefined\nexport const WebSocketServer = undefined\nexport default {}\n",
      loader: "js"
    }))
  }
}

/** Bundles `src/bin/qmp.ts` into `outdir` (emptied first): `qmp.js`, executable, and `chunks/`. */
export const bundle = async (outdir: string): Promise<Bundle> => {
  Fs.rmSync(outdir, { recursive: true, force: true })
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: { qmp: "src/bin/qmp.ts" },
    outdir,
    chunkNames: "chunks/[name]-[hash]",
    bundle: true,
    splitting: true,
    platform: "node",
    format: "esm",
    target: "node20",
    minify: true,
    metafile: true,
    logLevel: "warning",
    plugins: [withoutWebSockets]
  })
  const outputs = Object.entries(result.metafile.outputs)
  const inputs = [...new Set(outputs.flatMap(([, output]) => Object.keys(output.inputs)))].sort()
  const barrel = inputs.filter((input) => /node_modules\/effect\/dist\/esm\/index\.js$/.test(input))
  if (barrel.length > 0) throw new Error(`the bundle includes the effect barrel (${barrel.join(", ")})`)
  const foreign = outputs.flatMap(([, output]) =>
    output.imports.filter((entry) =>
      entry.kind === "require-call" || (entry.external === true && !nodeModules.has(entry.path))
    )
  )
  if (foreign.length > 0) {
    const list = [...new Set(foreign.map((entry) => `${entry.path} (${entry.kind})`))].join(", ")
    throw new Error(`the bundle would load at run time what it must carry, or require() in ESM: ${list}`)
  }
  const entry = Path.join(outdir, "qmp.js")
  Fs.chmodSync(entry, 0o755)
  const relative = (path: string) => Path.relative(outdir, Path.resolve(root, path))
  const files = Object.fromEntries(outputs.map(([path, output]): [string, Output] => [relative(path), {
    entryPoint: output.entryPoint,
    bytes: output.bytes,
    inputs: Object.keys(output.inputs),
    imports: output.imports.map((entry) => ({
      path: entry.external === true ? entry.path : relative(entry.path),
      kind: entry.kind,
      external: entry.external === true
    }))
  }]))
  return { entry, outputs: files, inputs }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(Path.resolve(process.argv[1])).href) {
  // tsc compiled src/bin too (the CLI tests run that build): the package ships the bundle alone.
  const outdir = Path.resolve(root, process.argv[2] ?? Path.join("dist", "bin"))
  const built = await bundle(outdir)
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`
  const files = Object.values(built.outputs)
  const total = files.reduce((sum, file) => sum + file.bytes, 0)
  console.log(
    `${Path.relative(root, built.entry)}: ${kib(total)} in ${files.length} files (entry ${
      kib(built.outputs["qmp.js"]?.bytes ?? 0)
    }), ` +
      `${built.inputs.length} modules`
  )
}
