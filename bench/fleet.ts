/**
 * A fleet of 1,000 VMs in one `QmpFleet`, served from another process (`fleetServer.ts`: each VM's
 * socket greets as QEMU 7.2 and answers as it does). Four figures:
 *
 * - connect: the time to connect all of them (`client(vm)` for every VM at once).
 * - memory: RSS per idle connection, `(RSS after the connects and a GC − RSS before) / VMs`; before
 *   is measured after a warm-up fleet of 20 VMs was connected and let go, so that the code the
 *   connects run is compiled already, and what is measured is the connections.
 * - events: 100 of the VMs each send `events` events as fast as their sockets take them (`x-blast`),
 *   all at once, read through `fleet.all`; against one plain `net` process (`fleetRaw.ts`) reading
 *   the same 100 sockets, in alternating rounds, the first of each a warm-up.
 * - latency: `query-status` on one VM, one call after the other, while 99 others each send 2,000
 *   events a second (`x-rate`) and `fleet.all` is read; and the same without the load.
 *
 * The library runs as a build emits it (`--lib`: an esbuild bundle of `src/index.ts` that the
 * workload makes first), not through tsx: tsx keeps function names with `Object.defineProperty`,
 * which gives each named closure a property store (some 15 KiB per VM here) that built code has not.
 * Without `--lib`, the sources run through tsx.
 *
 *     node --import tsx --expose-gc bench/fleet.ts --vms 1000 --busy 100 --events 20000 --rounds 4
 */
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as esbuild from "esbuild"
import { spawn as spawnProcess } from "node:child_process"
import * as path from "node:path"
import * as readline from "node:readline"
import { fileURLToPath, pathToFileURL } from "node:url"
import { parseArgs } from "node:util"
import type * as Library from "../src/index.js"
import * as FleetServer from "./fleetServer.js"
import { formatCount, formatSeconds, header, row, summarize } from "./stats.js"
import type { Column } from "./stats.js"
import type { Workload } from "./workload.js"
import { collectGarbage, commandLine, isMain, peakRssBytes, reportResult, root, runChild } from "./workload.js"

interface Config {
  readonly vms: number
  readonly busy: number
  readonly events: number
  readonly rounds: number
  readonly perSecond: number
  readonly calls: number
}

/** The raw reader in a process of its own: `round()` runs one blast of every socket and gives its rate. */
const startRaw = async (dir: string, config: Config) => {
  const script = path.join("bench", "fleetRaw.ts")
  const child = spawnProcess(process.execPath, [
    "--import",
    "tsx",
    script,
    "--dir",
    dir,
    "--vms",
    String(config.busy),
    "--events",
    String(config.events)
  ], { cwd: root, stdio: ["pipe", "pipe", "inherit"] })
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  const next = async (): Promise<Record<string, number>> => {
    const line = await lines.next()
    if (line.done === true) throw new Error("the raw reader exited")
    return JSON.parse(line.value) as Record<string, number>
  }
  await next()
  return {
    round: async (): Promise<number> => {
      child.stdin.write("run\n")
      return (await next()).rate
    },
    close: () => child.stdin.end()
  }
}

/** RSS after three full collections. */
const settledRss = (): number => {
  for (let i = 0; i < 3; i++) collectGarbage()
  return process.memoryUsage().rss
}

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]

const main = async (): Promise<void> => {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: {
      vms: { type: "string", default: "1000" },
      busy: { type: "string", default: "100" },
      events: { type: "string", default: "20000" },
      rounds: { type: "string", default: "4" },
      "per-second": { type: "string", default: "2000" },
      calls: { type: "string", default: "2000" },
      lib: { type: "string" }
    }
  })
  const { QmpFleet } = (await import(
    values.lib === undefined ? "../src/index.js" : pathToFileURL(path.resolve(values.lib)).href
  )) as typeof Library
  const config: Config = {
    vms: Number(values.vms),
    busy: Number(values.busy),
    events: Number(values.events),
    rounds: Number(values.rounds),
    perSecond: Number(values["per-second"]),
    calls: Number(values.calls)
  }
  const server = await FleetServer.spawn(config.vms)
  const raw = await startRaw(server.dir, config)
  const extra: Record<string, number> = {}
  const resolve = (vm: string) => Effect.succeed({ path: FleetServer.socketOf(server.dir, Number(vm)) })
  const vms = Array.from({ length: config.vms }, (_, i) => String(i))

  const program = Effect.gen(function*() {
    // Warm-up: the code of a connect, compiled before the baseline.
    yield* Effect.scoped(Effect.gen(function*() {
      const warm = yield* QmpFleet.make({ resolve })
      yield* Effect.forEach(vms.slice(0, 20), warm.client, { concurrency: "unbounded", discard: true })
    }))
    const fleet = yield* QmpFleet.make({ resolve, idleTimeToLive: "1 hour" })
    const held = yield* Scope.make()
    const before = settledRss()
    const started = performance.now()
    const clients = yield* Effect.forEach(vms, (vm) => Scope.extend(fleet.client(vm), held), {
      concurrency: "unbounded"
    })
    extra.connectMs = performance.now() - started
    const after = settledRss()
    extra.rssBefore = before
    extra.rssAfter = after
    extra.bytesPerConnection = (after - before) / config.vms

    // fleet.all, counted as it is read.
    let seen = 0
    let target = Infinity
    let reached: (() => void) | undefined
    yield* fleet.all.pipe(
      Stream.runForEachChunk((chunk) =>
        Effect.sync(() => {
          seen += chunk.length
          if (seen >= target && reached !== undefined) reached()
        })
      ),
      Effect.forkScoped
    )
    const fleetRound = Effect.gen(function*() {
      seen = 0
      target = config.busy * config.events
      const all = Effect.async<void>((resume) => {
        reached = () => resume(Effect.void)
        if (seen >= target) resume(Effect.void)
      })
      const start = performance.now()
      yield* Effect.forEach(
        clients.slice(0, config.busy),
        (client) => client.executeUnknown("x-blast", { count: config.events }),
        { concurrency: "unbounded", discard: true }
      )
      yield* all
      reached = undefined
      return target / ((performance.now() - start) / 1000)
    })
    for (let round = 0; round < config.rounds; round++) {
      extra[`raw.${round}`] = yield* Effect.promise(() => raw.round())
      extra[`fleet.${round}`] = yield* fleetRound
    }

    // Latency of one VM's commands, alone, then with 99 others sending events.
    const latencies = (count: number) =>
      Effect.gen(function*() {
        const times: Array<number> = []
        for (let i = 0; i < count; i++) {
          const start = performance.now()
          yield* clients[0].executeUnknown("query-status")
          times.push(performance.now() - start)
        }
        return times.sort((a, b) => a - b)
      })
    const rate = (perSecond: number) =>
      Effect.forEach(
        clients.slice(1, config.busy),
        (client) => client.executeUnknown("x-rate", { "per-second": perSecond }),
        { concurrency: "unbounded", discard: true }
      )
    yield* latencies(200)
    const quiet = yield* latencies(config.calls)
    seen = 0
    yield* rate(config.perSecond)
    yield* Effect.sleep("1 second")
    const loadStart = performance.now()
    const seenStart = seen
    const loaded = yield* latencies(config.calls)
    extra.loadedEventsPerSecond = (seen - seenStart) / ((performance.now() - loadStart) / 1000)
    yield* rate(0)
    extra.quietP50 = percentile(quiet, 50)
    extra.quietP99 = percentile(quiet, 99)
    extra.loadedP50 = percentile(loaded, 50)
    extra.loadedP99 = percentile(loaded, 99)
    extra.loadedMax = loaded[loaded.length - 1]
  })
  try {
    await Effect.runPromise(Effect.scoped(program))
  } finally {
    raw.close()
    await server.close()
  }
  reportResult({ rates: [], peakRssBytes: peakRssBytes(), baseRssBytes: 0, extra })
}

const script = path.relative(root, fileURLToPath(import.meta.url))

const KiB = 1024

/** The library as a build emits it, bundled into `node_modules/.cache` (where it finds `effect`). */
const buildLibrary = async (): Promise<string> => {
  const outfile = path.join(root, "node_modules", ".cache", "effect-qmp-bench", "index.js")
  await esbuild.build({
    entryPoints: [path.join(root, "src", "index.ts")],
    outfile,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    logLevel: "warning"
  })
  return path.relative(root, outfile)
}

/** The fleet workload, as `index.ts` runs it. */
export const workload: Workload = {
  title: "a fleet of 1 000 VMs served from another process",
  run: async (options, print) => {
    const args = [
      "--lib",
      await buildLibrary(),
      "--vms",
      "1000",
      "--busy",
      "100",
      "--events",
      options.quick ? "5000" : "20000",
      "--rounds",
      options.quick ? "3" : "5",
      "--calls",
      options.quick ? "1000" : "2000"
    ]
    print("1 000 VM sockets in one server process (greeting and replies as QEMU 7.2), one QmpFleet holding all")
    print(`of them. Events: 100 VMs each blast ${args[7]} events at once, read through fleet.all, against one`)
    print("raw net process (split + JSON.parse) reading the same 100 sockets, in alternating rounds, the first a")
    print("warm-up. Latency: query-status on one VM, one after the other, alone and while 99 others send")
    print("2 000 events/s each. The library runs as built (an esbuild bundle of src/index.ts), not through tsx.")
    print("")
    const result = await runChild(script, args)
    const x = result.extra
    const series = (key: string): Array<number> =>
      Object.entries(x).filter(([name]) => name.startsWith(`${key}.`)).map(([, value]) => value)
    const raw = series("raw").slice(1)
    const fleet = series("fleet").slice(1)
    const ratios = summarize(fleet.map((rate, i) => rate / raw[i]))
    const columns: ReadonlyArray<Column> = [
      { header: "figure", width: 52 },
      { header: "measured", width: 36 },
      { header: "goal", width: 10 }
    ]
    for (const line of header(columns)) print(line)
    print(row(columns, ["time to connect 1 000 VMs", formatSeconds(x.connectMs), "report"]))
    print(row(columns, [
      "RSS per idle connection",
      `${(x.bytesPerConnection / KiB).toFixed(1)} KiB (${Math.round(x.rssBefore / KiB / KiB)} → ${
        Math.round(x.rssAfter / KiB / KiB)
      } MiB)`,
      "≤ 64 KiB"
    ]))
    print(row(columns, [
      "events/s, 100 busy VMs: fleet.all / raw net (warm)",
      `${ratios.median.toFixed(2)} (${ratios.min.toFixed(2)}–${ratios.max.toFixed(2)})`,
      "≥ 0.6"
    ]))
    print(row(columns, ["  fleet.all events/s: median", formatCount(summarize(fleet).median), ""]))
    print(row(columns, ["  raw net events/s: median", formatCount(summarize(raw).median), ""]))
    print(row(columns, [
      "execute p99, 99 VMs × 2 000 events/s",
      `${x.loadedP99.toFixed(2)} ms (p50 ${x.loadedP50.toFixed(2)}, max ${x.loadedMax.toFixed(1)})`,
      "< 5 ms"
    ]))
    print(row(columns, [
      "  events/s read meanwhile (fleet.all)",
      formatCount(x.loadedEventsPerSecond),
      ""
    ]))
    print(row(columns, [
      "execute p99, no load",
      `${x.quietP99.toFixed(2)} ms (p50 ${x.quietP50.toFixed(2)})`,
      ""
    ]))
    print("")
    print(
      `peak RSS of the fleet process: ${Math.round(result.peakRssBytes / KiB / KiB)} MiB. Command: ${
        commandLine(script, args)
      }`
    )
  }
}

if (isMain(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(error)
    process.exit(1)
  })
}
