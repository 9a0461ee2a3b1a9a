/**
 * `QmpEvents.publishAll` alone, no socket.
 *
 * A single fiber publishes N events in batches (1 000 by default) to a fresh registry. Events cycle
 * through ten realistic names with realistic data, built in the timed loop as fresh objects (as a
 * socket's `JSON.parse` would give them). Listener i names event name i % 10, so it accepts 10% of
 * the events; the registry's default listener is registered as always (sliding, 10 000) and nobody
 * reads it. How the listeners are read (`--drain`):
 *
 * - `take`: each listener has its own fiber taking (`yield* listener.take` in a loop) its share;
 *   the clock runs from the first `publishAll` to the last `take`, so the readers' cost is in.
 * - `batch`: the same, but each step takes one event (waiting if need be) then `listener.clear`s the
 *   rest: every pending event in one step (not in the default run).
 * - `stream`: the same through `Stream.runDrain(Stream.take(listener.stream, share))` (slow: see the
 *   `bench/README.md`; not in the default run).
 * - `none`: nobody reads; each listener is bounded (`--capacity`, sliding), so this is dispatch alone.
 *
 * `index.ts` runs it once per configuration, each in a fresh child process; to run one by hand:
 *
 *     node --import tsx --expose-gc bench/publish.ts --listeners 100 --drain take --events 100000 --runs 3
 */
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import type { EventListener, QmpError } from "../src/index.js"
import { QmpEvents, QmpMessage } from "../src/index.js"
import { formatCount, formatMiB, formatRange, header, row, summarize } from "./stats.js"
import type { Column } from "./stats.js"
import type { Workload } from "./workload.js"
import { collectGarbage, commandLine, isMain, peakRssBytes, reportResult, root, runChild } from "./workload.js"

type Drain = "take" | "batch" | "stream" | "none"

interface Config {
  readonly listeners: number
  readonly drain: Drain
  readonly events: number
  readonly batch: number
  readonly runs: number
  readonly warmup: number
  readonly capacity: number
}

type Data = Readonly<Record<string, unknown>> | undefined

/** Ten event names with the data QEMU 7.2 sends with them (STOP and RESUME carry none). */
const kinds: ReadonlyArray<{ readonly name: string; readonly data: (i: number) => Data }> = [
  { name: "JOB_STATUS_CHANGE", data: () => ({ id: "job1", status: "running" }) },
  {
    name: "BLOCK_JOB_COMPLETED",
    data: () => ({ type: "backup", device: "job1", len: 1073741824, offset: 1073741824, speed: 0 })
  },
  { name: "STOP", data: () => undefined },
  { name: "RESUME", data: () => undefined },
  { name: "MIGRATION_PASS", data: (i) => ({ pass: i }) },
  { name: "BALLOON_CHANGE", data: () => ({ actual: 4294967296 }) },
  { name: "RTC_CHANGE", data: () => ({ offset: 0, "qom-path": "/machine/unattached/device[8]" }) },
  {
    name: "BLOCK_JOB_READY",
    data: () => ({ type: "mirror", device: "job2", len: 2147483648, offset: 2147483648, speed: 0 })
  },
  { name: "MIGRATION", data: () => ({ status: "active" }) },
  { name: "SHUTDOWN", data: () => ({ guest: true, reason: "guest-shutdown" }) }
]

/** Events `first` to `first + size - 1` of the sequence, as fresh objects. */
const makeBatch = (first: number, size: number, now: number): Array<QmpMessage.QmpEvent> => {
  const batch: Array<QmpMessage.QmpEvent> = []
  for (let i = first; i < first + size; i++) {
    const kind = kinds[i % kinds.length]
    batch.push(QmpMessage.makeEvent(kind.name, kind.data(i), now))
  }
  return batch
}

/** How many of the first `events` events have kind `k`. */
const share = (events: number, k: number): number => k < events ? Math.floor((events - 1 - k) / kinds.length) + 1 : 0

const read = (
  listener: EventListener.EventListener,
  count: number,
  drain: Exclude<Drain, "none">
): Effect.Effect<void, QmpError.ListenerClosed> => {
  switch (drain) {
    case "take":
      // Not `Effect.repeatN`: it yields to the scheduler between two repetitions (about 1.4 µs each here).
      return Effect.gen(function*() {
        for (let taken = 0; taken < count; taken++) yield* listener.take
      })
    case "batch":
      return Effect.gen(function*() {
        for (let taken = 0; taken < count;) {
          yield* listener.take
          taken += 1 + (yield* listener.clear).length
        }
      })
    case "stream":
      return Stream.runDrain(Stream.take(listener.stream, count))
  }
}

/** One run: a fresh registry and listeners, `events` events published; its rate in events/s. */
const runOnce = (config: Config, events: number): Effect.Effect<number> =>
  Effect.scoped(Effect.gen(function*() {
    const registry = yield* QmpEvents.make
    const readers: Array<Fiber.Fiber<void, QmpError.ListenerClosed>> = []
    for (let i = 0; i < config.listeners; i++) {
      const k = i % kinds.length
      const options = config.drain === "none" ? { capacity: config.capacity } : {}
      const listener = yield* registry.listenerUnknown(kinds[k].name, undefined, options)
      if (config.drain !== "none") {
        readers.push(yield* Effect.forkScoped(read(listener, share(events, k), config.drain)))
      }
    }
    // Let every reader reach its first `take` before the clock starts.
    yield* Effect.yieldNow()
    const start = performance.now()
    for (let first = 0; first < events; first += config.batch) {
      yield* registry.publishAll(makeBatch(first, Math.min(config.batch, events - first), Date.now()))
    }
    yield* Effect.orDie(Fiber.joinAll(readers))
    return events / ((performance.now() - start) / 1000)
  }))

/** The rate of building the events alone, batch by batch, as the timed loop does. */
const buildRate = (config: Config): number => {
  let sink = 0
  const start = performance.now()
  for (let first = 0; first < config.events; first += config.batch) {
    sink += makeBatch(first, Math.min(config.batch, config.events - first), Date.now()).length
  }
  return sink / ((performance.now() - start) / 1000)
}

const parseConfig = (args: ReadonlyArray<string>): Config => {
  const { values } = parseArgs({
    args: [...args],
    strict: true,
    options: {
      listeners: { type: "string", default: "10" },
      drain: { type: "string", default: "take" },
      events: { type: "string", default: "1000000" },
      batch: { type: "string", default: "1000" },
      runs: { type: "string", default: "5" },
      warmup: { type: "string" },
      capacity: { type: "string", default: "1000" }
    }
  })
  const count = (name: string, text: string, min: number): number => {
    const n = Number(text)
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${text}`)
    return n
  }
  const drain = values.drain
  if (drain !== "take" && drain !== "batch" && drain !== "stream" && drain !== "none") {
    throw new Error(`--drain must be take, batch, stream or none, got ${drain}`)
  }
  const events = count("events", values.events, 1)
  return {
    listeners: count("listeners", values.listeners, 0),
    drain,
    events,
    batch: count("batch", values.batch, 1),
    runs: count("runs", values.runs, 1),
    warmup: count("warmup", values.warmup ?? String(Math.ceil(events / 10)), 0),
    capacity: count("capacity", values.capacity, 1)
  }
}

/** In the child: measures one configuration and reports it. */
const main = async (): Promise<void> => {
  const config = parseConfig(process.argv.slice(2))
  const baseRssBytes = process.memoryUsage().rss
  if (config.warmup > 0) await Effect.runPromise(runOnce(config, config.warmup))
  const rates: Array<number> = []
  for (let run = 0; run < config.runs; run++) {
    collectGarbage()
    rates.push(await Effect.runPromise(runOnce(config, config.events)))
  }
  const peak = peakRssBytes()
  collectGarbage()
  reportResult({ rates, peakRssBytes: peak, baseRssBytes, extra: { buildRate: buildRate(config) } })
}

const script = path.relative(root, fileURLToPath(import.meta.url))

const columns: ReadonlyArray<Column> = [
  { header: "listeners", width: 9, align: "right" },
  { header: "drain", width: 5 },
  { header: "events/s: median (min – max)", width: 33 },
  { header: "peak RSS", width: 8, align: "right" },
  { header: "base RSS", width: 8, align: "right" }
]

/** The configurations: 1, 10 and 100 listeners, read by `take`, then read by nobody. */
export const workload: Workload = {
  title: "publishAll alone (no socket)",
  run: async (options, print) => {
    const events = options.quick ? 100_000 : 1_000_000
    const runs = options.quick ? 3 : 5
    const batch = 1_000
    const warmup = events / 10
    const capacity = 1_000
    print(`N = ${formatCount(events)} events per run in batches of ${formatCount(batch)}; ${runs} runs after a warm-up`)
    print(`run of ${formatCount(warmup)} events, each configuration in a fresh child process (peak RSS is its own).`)
    print("Events cycle through 10 names with realistic data (fresh objects, built in the timed loop); listener i")
    print("names event i % 10, so it accepts 10% of the events; the default listener (sliding, 10 000) is registered")
    print(
      "and never read. drain take: a fiber per listener loops on `yield* listener.take` until it has its share; the"
    )
    print(`clock stops at the last take. drain none: nobody reads, listeners bounded (capacity ${capacity}, sliding).`)
    print("")
    for (const line of header(columns)) print(line)
    const commands: Array<string> = []
    const buildRates: Array<number> = []
    for (const drain of ["take", "none"] as const) {
      for (const listeners of [1, 10, 100]) {
        const args = [
          "--listeners",
          String(listeners),
          "--drain",
          drain,
          "--events",
          String(events),
          "--batch",
          String(batch),
          "--runs",
          String(runs),
          "--warmup",
          String(warmup),
          ...(drain === "none" ? ["--capacity", String(capacity)] : [])
        ]
        commands.push(commandLine(script, args))
        try {
          const result = await runChild(script, args)
          buildRates.push(result.extra.buildRate)
          print(row(columns, [
            String(listeners),
            drain,
            formatRange(summarize(result.rates)),
            formatMiB(result.peakRssBytes),
            formatMiB(result.baseRssBytes)
          ]))
        } catch (error) {
          process.exitCode = 1
          print(row(columns, [String(listeners), drain, `failed: ${String(error)}`]))
        }
      }
    }
    print("")
    if (buildRates.length > 0) {
      print(`Building the events alone (included above): ${formatCount(summarize(buildRates).median)} events/s.`)
    }
    print("base RSS: after loading the modules, before the warm-up run. Commands, in order:")
    for (const command of commands) print(`  ${command}`)
  }
}

if (isMain(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(error)
    process.exit(1)
  })
}
