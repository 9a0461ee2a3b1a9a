/**
 * End to end, from a QMP server's socket to the listeners of `QmpClient`.
 *
 * The blast server (`blastServer.ts`) answers `x-blast {"count": N}` with N events in QEMU 7.2's wire
 * format (ten names, realistic data, 70 to 190 bytes each), written as fast as the socket takes them,
 * then the command's `return`. Six clients read a blast (`--mode`):
 *
 * - `discard`: `net`, bytes counted and dropped, nothing parsed: how fast the server and the kernel
 *   deliver. If this is far above the others, the server is not what limits them.
 * - `raw`: the raw Node limit: `net`, each chunk decoded and split on newlines, each line `JSON.parse`d,
 *   events counted. No checks, no queues, no Effect.
 * - `default`: `QmpClient` into the registry's default listener (sliding, 10 000), which nobody reads.
 *   The clock runs from sending `x-blast` to `execute` returning: an event that came before a reply is
 *   in the registry.
 * - `listener`: the same with one more listener (all events, unbounded: its queue holds what the reader
 *   has not taken yet), read by a fiber with a plain `for` loop of `yield* listener.take`. The clock
 *   runs until that fiber has taken all N (and `execute` has returned).
 * - `names`: `QmpClient` with 100 more listeners, listener i naming the i % 10-th of the ten names (each
 *   accepts 10% of the events), unbounded, and nobody reads them: what a daemon with many narrow
 *   listeners pays. The clock is the `default` client's.
 * - `typed`: the same 100 listeners, typed (`listener(name)` rather than `listenerUnknown(name)`): each
 *   event's data is checked against QEMU 7.2's Schema for its name, once, before it reaches them.
 *
 * Every client first negotiates (greeting, `qmp_capabilities`). Warm (`--warmup N/10`, the default), it
 * runs a warm-up blast on a connection of its own, then times one blast on a fresh connection (and, for
 * `QmpClient`, a fresh registry); cold (`--warmup 0`), it times the first blast of the process, as a
 * CLI or a short script would. Each figure comes from a fresh process, so JIT state and heap are the
 * run's own and peak RSS is that configuration's.
 *
 * The server runs in a process of its own, started once per workload and shared by every run. On a
 * 2-core machine that is the honest choice: QEMU is another process too, so its writes never cost the
 * client's thread anything; in the client's process the server's `write` calls, its `drain` waits and
 * the kernel's copy of every byte would share the one JavaScript thread and be counted against the
 * client. In its own process the server needs a few percent of the second core (the return of
 * `x-blast` carries its CPU time, printed beside each figure).
 *
 * `index.ts` runs it; to run one measurement by hand (it starts a server of its own without `--socket`):
 *
 *     node --import tsx --expose-gc bench/endToEnd.ts --mode default --events 1000000
 */
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as net from "node:net"
import * as path from "node:path"
import { PerformanceObserver } from "node:perf_hooks"
import { StringDecoder } from "node:string_decoder"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import type { EventListener } from "../src/index.js"
import { QmpClient, QmpEvents } from "../src/index.js"
import * as BlastServer from "./blastServer.js"
import { formatCount, formatMiB, formatRange, header, row, summarize } from "./stats.js"
import type { Column } from "./stats.js"
import type { Workload } from "./workload.js"
import { collectGarbage, commandLine, isMain, peakRssBytes, reportResult, root, runChild } from "./workload.js"

type Mode = "discard" | "raw" | "default" | "listener" | "names" | "typed"

const modes: ReadonlyArray<Mode> = ["discard", "raw", "default", "listener", "names", "typed"]

/** Listeners of the `names` client: listener i names the i % 10-th of the blast's ten event names. */
const namedListeners = 100

interface Config {
  readonly mode: Mode
  readonly events: number
  readonly warmup: number
  readonly runs: number
  readonly socket: string | undefined
}

/** One timed blast: its rate, and the server's CPU time over its wall time during the blast. */
interface Measurement {
  readonly rate: number
  readonly serverBusy: number
}

/**
 * A measurement with the client's own CPU time per event (all its threads: GC helpers count) and the
 * share of the wall time spent in garbage collection pauses, both from connecting to closing.
 */
interface Timed extends Measurement {
  readonly cpuPerEvent: number
  readonly gcShare: number
}

interface BlastReturn {
  readonly count: number
  readonly "cpu-us": number
  readonly "wall-us": number
}

const serverBusy = (result: BlastReturn): number => result["cpu-us"] / Math.max(1, result["wall-us"])

/** The end of the return line of blast `id`: the only line that ends so. */
const returnSuffix = (id: string): string => `"id": "${id}"}\r\n`

let blastCounter = 0

// ---------------------------------------------------------------------------------------------------
// The raw clients: plain `net`, no Effect.

/** Connects, reads the greeting and negotiates, with a plain string line reader; then detaches it. */
const rawConnect = (socketPath: string): Promise<net.Socket> =>
  new Promise((resolve, reject) => {
    const socket = net.createConnection({ path: socketPath })
    socket.once("error", reject)
    let pending = ""
    let greeted = false
    const onData = (chunk: Buffer) => {
      pending += chunk.toString("utf8")
      for (let newline = pending.indexOf("\n"); newline !== -1; newline = pending.indexOf("\n")) {
        const message = JSON.parse(pending.slice(0, newline)) as Record<string, unknown>
        pending = pending.slice(newline + 1)
        if (!greeted) {
          greeted = true
          socket.write("{\"execute\": \"qmp_capabilities\", \"id\": \"negotiate\"}\n")
        } else if (message.id === "negotiate") {
          socket.off("data", onData)
          socket.off("error", reject)
          resolve(socket)
        }
      }
    }
    socket.on("data", onData)
  })

/**
 * One blast read by the raw Node limit: each chunk decoded (a `StringDecoder`, so that a character
 * split across chunks stays whole), split on newlines, each line parsed, events counted.
 */
const rawParseBlast = (socket: net.Socket, events: number): Promise<Measurement> =>
  new Promise((resolve, reject) => {
    const id = `blast-${++blastCounter}`
    const decoder = new StringDecoder("utf8")
    let pending = ""
    let count = 0
    let start = 0
    const onData = (chunk: Buffer) => {
      const text = pending + decoder.write(chunk)
      let from = 0
      for (let newline = text.indexOf("\n"); newline !== -1; newline = text.indexOf("\n", from)) {
        const message = JSON.parse(text.slice(from, newline))
        from = newline + 1
        if (message.event !== undefined) {
          count++
        } else if (message.id === id) {
          const elapsed = performance.now() - start
          socket.off("data", onData)
          if (count !== events) reject(new Error(`raw: ${count} events instead of ${events}`))
          else resolve({ rate: events / (elapsed / 1000), serverBusy: serverBusy(message.return) })
          return
        }
      }
      pending = text.slice(from)
    }
    socket.on("data", onData)
    start = performance.now()
    socket.write(`{"execute": "x-blast", "arguments": {"count": ${events}}, "id": "${id}"}\n`)
  })

/**
 * One blast read by a client that only counts bytes and watches the end of each chunk for the
 * return line: the rate at which the server and the kernel deliver, with no parsing at all.
 */
const rawDiscardBlast = (socket: net.Socket, events: number): Promise<Measurement> =>
  new Promise((resolve) => {
    const id = `blast-${++blastCounter}`
    const suffix = Buffer.from(returnSuffix(id))
    let tail = Buffer.alloc(0)
    let start = 0
    const onData = (chunk: Buffer) => {
      // The return line is short: the last 256 bytes hold it whole.
      tail = Buffer.concat([tail, chunk.subarray(Math.max(0, chunk.length - 256))]).subarray(-256)
      if (tail.length < suffix.length || !tail.subarray(tail.length - suffix.length).equals(suffix)) return
      const elapsed = performance.now() - start
      socket.off("data", onData)
      const text = tail.toString("latin1")
      const line = text.slice(text.lastIndexOf("\n", text.length - 3) + 1)
      resolve({ rate: events / (elapsed / 1000), serverBusy: serverBusy(JSON.parse(line).return) })
    }
    socket.on("data", onData)
    start = performance.now()
    socket.write(`{"execute": "x-blast", "arguments": {"count": ${events}}, "id": "${id}"}\n`)
  })

const runRaw = async (mode: "discard" | "raw", socketPath: string, events: number): Promise<Measurement> => {
  const socket = await rawConnect(socketPath)
  try {
    return await (mode === "raw" ? rawParseBlast(socket, events) : rawDiscardBlast(socket, events))
  } finally {
    socket.destroy()
  }
}

// ---------------------------------------------------------------------------------------------------
// QmpClient.

const runClient = (
  mode: "default" | "listener" | "names" | "typed",
  socketPath: string,
  events: number
): Promise<Measurement> =>
  Effect.runPromise(
    Effect.gen(function*() {
      const client = yield* QmpClient.QmpClient
      const registry = yield* QmpEvents.QmpEvents
      let reader: Fiber.Fiber<void, unknown> | undefined
      if (mode === "listener") {
        const listener = yield* registry.listener()
        // A plain loop: `Effect.repeat`/`forever` yield to the scheduler between repetitions.
        reader = yield* Effect.fork(Effect.gen(function*() {
          for (let taken = 0; taken < events; taken++) yield* listener.take
        }))
        // Let the reader reach its first `take` before the clock starts.
        yield* Effect.yieldNow()
      }
      if (mode === "names") {
        const names = BlastServer.eventNames
        for (let i = 0; i < namedListeners; i++) yield* registry.listenerUnknown(names[i % names.length])
      }
      if (mode === "typed") {
        // The same names, typed by QEMU 7.2's module: each event's data is checked against its Schema
        // (once, whatever the number of listeners naming it) before it reaches them.
        const names = BlastServer.eventNames as ReadonlyArray<keyof EventListener.DefaultEvents & string>
        for (let i = 0; i < namedListeners; i++) yield* registry.listener(names[i % names.length])
      }
      const start = performance.now()
      const result = (yield* client.executeUnknown("x-blast", { count: events })) as BlastReturn
      if (reader !== undefined) yield* Fiber.join(reader)
      const elapsed = performance.now() - start
      // The default listener kept the newest 10 000 and counted the rest as dropped: all N reached it.
      const dropped = yield* registry.events.dropped
      const expected = Math.max(0, events - QmpEvents.defaultListenerCapacity)
      if (dropped !== expected) {
        return yield* Effect.die(new Error(`default listener: ${dropped} dropped instead of ${expected}`))
      }
      return { rate: events / (elapsed / 1000), serverBusy: serverBusy(result) }
    }).pipe(
      Effect.scoped,
      Effect.provide(QmpClient.layer({ path: socketPath }, { commandTimeout: "10 minutes" }))
    )
  )

const measure = async (config: Config, socketPath: string, events: number): Promise<Timed> => {
  let gc = 0
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gc += entry.duration
  })
  observer.observe({ entryTypes: ["gc"] })
  // Connecting and negotiating are in: they cost the same few hundred microseconds in every mode.
  const cpu = process.cpuUsage()
  const start = performance.now()
  const measurement = await (config.mode === "discard" || config.mode === "raw" ?
    runRaw(config.mode, socketPath, events) :
    runClient(config.mode, socketPath, events))
  const used = process.cpuUsage(cpu)
  const elapsed = performance.now() - start
  // GC entries are delivered asynchronously: let the last ones in.
  await new Promise((resolve) => setImmediate(resolve))
  observer.disconnect()
  return { ...measurement, cpuPerEvent: (used.user + used.system) / events, gcShare: gc / elapsed }
}

const parseConfig = (args: ReadonlyArray<string>): Config => {
  const { values } = parseArgs({
    args: [...args],
    strict: true,
    options: {
      mode: { type: "string", default: "default" },
      events: { type: "string", default: "1000000" },
      warmup: { type: "string" },
      runs: { type: "string", default: "1" },
      socket: { type: "string" }
    }
  })
  const count = (name: string, text: string, min: number): number => {
    const n = Number(text)
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${text}`)
    return n
  }
  const mode = values.mode as Mode
  if (!modes.includes(mode)) throw new Error(`--mode must be one of ${modes.join(", ")}, got ${values.mode}`)
  const events = count("events", values.events, 1)
  return {
    mode,
    events,
    warmup: count("warmup", values.warmup ?? String(Math.ceil(events / 10)), 0),
    runs: count("runs", values.runs, 1),
    socket: values.socket
  }
}

/** In the child: measures one configuration (`runs` timed blasts after a warm-up) and reports it. */
const main = async (): Promise<void> => {
  const config = parseConfig(process.argv.slice(2))
  const server = config.socket === undefined ? await BlastServer.spawn() : undefined
  const socketPath = config.socket ?? server!.socketPath
  try {
    const baseRssBytes = process.memoryUsage().rss
    if (config.warmup > 0) await measure(config, socketPath, config.warmup)
    const rates: Array<number> = []
    const busy: Array<number> = []
    const cpu: Array<number> = []
    const gc: Array<number> = []
    for (let run = 0; run < config.runs; run++) {
      collectGarbage()
      const measurement = await measure(config, socketPath, config.events)
      rates.push(measurement.rate)
      busy.push(measurement.serverBusy)
      cpu.push(measurement.cpuPerEvent)
      gc.push(measurement.gcShare)
    }
    reportResult({
      rates,
      peakRssBytes: peakRssBytes(),
      baseRssBytes,
      extra: {
        serverBusy: summarize(busy).median,
        cpuPerEvent: summarize(cpu).median,
        gcShare: summarize(gc).median
      }
    })
  } finally {
    await server?.close()
  }
}

// ---------------------------------------------------------------------------------------------------
// The workload, as `index.ts` runs it.

const script = path.relative(root, fileURLToPath(import.meta.url))

const labels: Record<Mode, string> = {
  discard: "server → discard (no parsing)",
  raw: "raw Node: net+split+JSON.parse",
  default: "QmpClient → default listener",
  listener: "QmpClient → listener, take loop",
  names: `QmpClient → ${namedListeners} named listeners`,
  typed: `QmpClient → ${namedListeners} typed listeners`
}

/** One configuration: a client, the blast's size, and whether a warm-up blast comes first. */
interface Case {
  readonly mode: Mode
  readonly events: number
  readonly warm: boolean
}

const caseKey = (c: Case): string => `${c.mode}/${c.events}/${c.warm ? "warm" : "cold"}`

/** The raw limit a case is compared with: the raw client at the same N, as warm or as cold. */
const rawCase = (c: Case): Case => ({ mode: "raw", events: c.events, warm: c.warm })

const columns: ReadonlyArray<Column> = [
  { header: "client", width: 33 },
  { header: "N", width: 9, align: "right" },
  { header: "", width: 4 },
  { header: "events/s: median (min – max)", width: 34 },
  { header: "ratio to raw", width: 18 },
  { header: "peak RSS", width: 8, align: "right" },
  { header: "CPU/ev", width: 7, align: "right" },
  { header: "GC", width: 4, align: "right" },
  { header: "server", width: 6, align: "right" }
]

interface Collected {
  readonly rates: Array<number | undefined>
  readonly peakRss: Array<number>
  readonly serverBusy: Array<number>
  readonly cpuPerEvent: Array<number>
  readonly gcShare: Array<number>
  failure?: string
}

const fixed2 = (n: number): string => n.toFixed(2)
const percent = (n: number): string => `${(n * 100).toFixed(0)}%`

const ratioCell = (ratios: ReadonlyArray<number>): string => {
  if (ratios.length === 0) return "-"
  const { max, median, min } = summarize(ratios)
  return `${fixed2(median)} (${fixed2(min)}–${fixed2(max)})`
}

/** N events from the blast server, into each client, cold and warmed up; every figure from a fresh process. */
export const workload: Workload = {
  title: "end to end: a QMP socket into QmpClient's listeners",
  run: async (options, print) => {
    const events = options.quick ? 100_000 : 1_000_000
    const namedEvents = options.quick ? 50_000 : 200_000
    const runs = options.quick ? 3 : 5
    const meanBytes = BlastServer.meanEventBytes().toFixed(0)
    const cases: ReadonlyArray<Case> = [
      { mode: "discard", events, warm: true },
      ...([false, true] as const).flatMap((warm) => [
        { mode: "raw" as const, events, warm },
        { mode: "default" as const, events, warm },
        { mode: "listener" as const, events, warm },
        { mode: "raw" as const, events: namedEvents, warm },
        { mode: "names" as const, events: namedEvents, warm },
        { mode: "typed" as const, events: namedEvents, warm }
      ])
    ]
    const server = await BlastServer.spawn()
    try {
      print(`Each figure comes from fresh processes (${runs} per configuration): "cold" times the first blast of the`)
      print("process (as a CLI or a short script runs); \"warm\" times one blast after a warm-up blast of N / 10 on a")
      print("connection of its own. The blast server is a process of its own, shared by all runs; its events are")
      print(
        `QEMU 7.2's wire format, 10 names in turn, ${meanBytes} bytes each on average. Clocks: from writing x-blast`
      )
      print("to its return (discard, raw, default listener, named listeners), or until the listener's reader fiber")
      print("has taken all N. That listener takes all events and is unbounded; the default listener (sliding,")
      print(
        `10 000) is never read. The ${namedListeners} named listeners each name one of the ten names (10% of the events)`
      )
      print("and are unbounded, and nobody reads them. Processes run in rounds, each round one per configuration")
      print("in turn, so that a change in the machine's load falls on every client alike.")
      print("")
      const collected = new Map<string, Collected>(
        cases.map((c) => [caseKey(c), { rates: [], peakRss: [], serverBusy: [], cpuPerEvent: [], gcShare: [] }])
      )
      const commands = new Map<string, string>()
      for (let round = 1; round <= runs; round++) {
        const cells: Array<string> = []
        for (const c of cases) {
          const args = [
            "--mode",
            c.mode,
            "--events",
            String(c.events),
            "--warmup",
            c.warm ? String(c.events / 10) : "0"
          ]
          commands.set(caseKey(c), commandLine(script, args))
          const into = collected.get(caseKey(c))!
          try {
            const result = await runChild(script, [...args, "--socket", server.socketPath])
            into.rates.push(result.rates[0])
            into.peakRss.push(result.peakRssBytes)
            into.serverBusy.push(result.extra.serverBusy)
            into.cpuPerEvent.push(result.extra.cpuPerEvent)
            into.gcShare.push(result.extra.gcShare)
            cells.push(`${caseKey(c)} ${formatCount(result.rates[0])}`)
          } catch (error) {
            process.exitCode = 1
            into.rates.push(undefined)
            into.failure = String(error)
            cells.push(`${caseKey(c)} failed`)
          }
        }
        print(`round ${round}/${runs}: ${cells.join(", ")}`)
      }
      print("")
      for (const line of header(columns)) print(line)
      for (const c of cases) {
        const { cpuPerEvent, failure, gcShare, peakRss, serverBusy } = collected.get(caseKey(c))!
        const all = collected.get(caseKey(c))!.rates
        const rates = all.filter((rate) => rate !== undefined)
        const cells = [labels[c.mode], formatCount(c.events), c.warm ? "warm" : "cold"]
        if (rates.length === 0) {
          print(row(columns, [...cells, `failed: ${failure ?? "no result"}`]))
          continue
        }
        // Each round's ratio, from two processes that ran one after the other.
        const raw = collected.get(caseKey(rawCase(c)))?.rates ?? []
        const ratios = all.flatMap((rate, round) => {
          const limit = raw[round]
          return rate === undefined || limit === undefined ? [] : [rate / limit]
        })
        print(row(columns, [
          ...cells,
          formatRange(summarize(rates)),
          c.mode === "raw" ? "1" : ratioCell(ratios),
          formatMiB(Math.max(...peakRss)),
          `${summarize(cpuPerEvent).median.toFixed(2)} µs`,
          percent(summarize(gcShare).median),
          percent(summarize(serverBusy).median)
        ]))
      }
      print("")
      print("ratio to raw: in each round, the client's rate over the raw limit's at the same N, cold or warm alike;")
      print("the median (min–max) of the rounds. peak RSS: the highest of the client's processes (maxRSS, warm-up")
      print("and tsx included). CPU/ev: the client process's CPU time (all threads) per event, and GC its time in GC")
      print("pauses over the wall time, both from connecting to closing; server: the server's CPU time over the")
      print("blast's wall time. Medians. Commands of one run each (without --socket, a run starts a blast server of")
      print("its own):")
      for (const command of commands.values()) print(`  ${command}`)
    } finally {
      await server.close()
    }
  }
}

if (isMain(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(error)
    process.exit(1)
  })
}
