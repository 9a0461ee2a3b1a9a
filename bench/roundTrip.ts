/**
 * Round trips against a real QEMU: how close `QmpClient.execute` comes to a raw `net` ping-pong.
 *
 * One QEMU (`-machine none`) is started with two QMP sockets. On socket A, `QmpClient` runs
 * `execute("query-status")`; on socket B, a raw client writes `{"execute": "query-status", "id": N}`
 * and parses the reply line with `JSON.parse`, nothing else. Both run in this one process, in
 * rounds that alternate raw and client, so that a change in the machine's load falls on both alike;
 * QEMU's own time per command is in both.
 *
 * - sequential: one command at a time, the next written when the reply of the last has arrived.
 * - concurrent: 100 fibers (for the raw client, 100 commands in flight), each writing its next
 *   command when its last reply arrives.
 *
 * When `qemu-system-x86_64` is not on PATH, the workload says that it skipped, and why.
 *
 *     node --import tsx --expose-gc bench/roundTrip.ts --calls 3000 --rounds 5
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Fs from "node:fs"
import * as net from "node:net"
import * as Os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { QmpClient } from "../src/index.js"
import { findOnPath } from "../src/internal/findOnPath.js"
import { startQemu } from "./qemu.js"
import { formatCount, header, row, summarize } from "./stats.js"
import type { Column } from "./stats.js"
import type { Workload } from "./workload.js"
import { commandLine, isMain, peakRssBytes, reportResult, root, runChild } from "./workload.js"

const qemuBinary = "qemu-system-x86_64"

interface Config {
  readonly calls: number
  readonly rounds: number
  readonly concurrency: number
}

/** QEMU with two QMP sockets, for the life of `body`. */
const withQemu = async <A>(body: (a: string, b: string) => Promise<A>): Promise<A> => {
  const dir = Fs.mkdtempSync(path.join(Os.tmpdir(), "effect-qmp-bench-"))
  const a = path.join(dir, "a.sock")
  const b = path.join(dir, "b.sock")
  const qemu = await startQemu(qemuBinary, [a, b])
  try {
    return await body(a, b)
  } finally {
    qemu.stop()
    Fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** A raw QMP client: greeting read, negotiated; `pingPong` runs `calls` query-status round trips. */
const rawClient = (socketPath: string) =>
  new Promise<{ readonly pingPong: (calls: number, inFlight: number) => Promise<number>; readonly close: () => void }>(
    (resolve, reject) => {
      const socket = net.createConnection({ path: socketPath })
      socket.once("error", reject)
      let pending = ""
      let onMessage: (message: Record<string, unknown>) => void = () => {
        socket.write("{\"execute\": \"qmp_capabilities\"}\n")
        onMessage = () => {
          onMessage = () => {}
          resolve({ pingPong, close: () => socket.destroy() })
        }
      }
      socket.on("data", (chunk: Buffer) => {
        pending += chunk.toString("utf8")
        for (let newline = pending.indexOf("\n"); newline !== -1; newline = pending.indexOf("\n")) {
          const line = pending.slice(0, newline)
          pending = pending.slice(newline + 1)
          onMessage(JSON.parse(line))
        }
      })
      let id = 0
      const pingPong = (calls: number, inFlight: number): Promise<number> =>
        new Promise((done) => {
          let written = 0
          let answered = 0
          const start = performance.now()
          const send = () => {
            written++
            socket.write(`{"execute": "query-status", "id": ${++id}}\n`)
          }
          onMessage = (message) => {
            if (message.event !== undefined) return
            answered++
            if (answered === calls) {
              done(calls / ((performance.now() - start) / 1000))
            } else if (written < calls) {
              send()
            }
          }
          for (let i = 0; i < Math.min(inFlight, calls); i++) send()
        })
    }
  )

/** `calls` round trips through `QmpClient.execute`, `concurrency` fibers at once; round trips per second. */
const clientRounds = (client: QmpClient.Service, calls: number, concurrency: number): Effect.Effect<number, unknown> =>
  Effect.gen(function*() {
    const start = performance.now()
    const perFiber = Math.ceil(calls / concurrency)
    yield* Effect.forEach(
      Array.from({ length: concurrency }, (_, i) => Math.min(perFiber, calls - i * perFiber)),
      (share) =>
        Effect.gen(function*() {
          for (let i = 0; i < share; i++) yield* client.execute("query-status")
        }),
      { concurrency: "unbounded", discard: true }
    )
    return calls / ((performance.now() - start) / 1000)
  })

interface Figures {
  readonly rawSequential: Array<number>
  readonly clientSequential: Array<number>
  readonly rawConcurrent: Array<number>
  readonly clientConcurrent: Array<number>
}

/** In the child: the rounds, against one QEMU. */
const main = async (): Promise<void> => {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: {
      calls: { type: "string", default: "3000" },
      rounds: { type: "string", default: "5" },
      concurrency: { type: "string", default: "100" }
    }
  })
  const config: Config = {
    calls: Number(values.calls),
    rounds: Number(values.rounds),
    concurrency: Number(values.concurrency)
  }
  const figures: Figures = { rawSequential: [], clientSequential: [], rawConcurrent: [], clientConcurrent: [] }
  await withQemu(async (a, b) => {
    const raw = await rawClient(b)
    await Effect.runPromise(
      Effect.gen(function*() {
        const client = yield* QmpClient.QmpClient
        // Warm-up: both paths JIT-compiled before the first timed round.
        yield* clientRounds(client, Math.min(500, config.calls), 1)
        yield* Effect.promise(() => raw.pingPong(Math.min(500, config.calls), 1))
        for (let round = 0; round < config.rounds; round++) {
          figures.rawSequential.push(yield* Effect.promise(() => raw.pingPong(config.calls, 1)))
          figures.clientSequential.push(yield* clientRounds(client, config.calls, 1))
          figures.rawConcurrent.push(yield* Effect.promise(() => raw.pingPong(config.calls * 4, config.concurrency)))
          figures.clientConcurrent.push(yield* clientRounds(client, config.calls * 4, config.concurrency))
        }
      }).pipe(Effect.provide(Layer.fresh(QmpClient.layer({ path: a }))))
    )
    raw.close()
  })
  reportResult({
    rates: [],
    peakRssBytes: peakRssBytes(),
    baseRssBytes: 0,
    extra: Object.fromEntries(
      Object.entries(figures).flatMap(([key, list]: [string, Array<number>]) =>
        list.map((value, i) => [`${key}.${i}`, value])
      )
    )
  })
}

const script = path.relative(root, fileURLToPath(import.meta.url))

const columns: ReadonlyArray<Column> = [
  { header: "round trips", width: 22 },
  { header: "raw net/s: median", width: 17, align: "right" },
  { header: "QmpClient/s: median", width: 19, align: "right" },
  { header: "ratio: median (min–max)", width: 23 }
]

/** The round-trip workload, as `index.ts` runs it. */
export const workload: Workload = {
  title: "round trips on real QEMU: QmpClient.execute against a raw net ping-pong",
  run: async (options, print) => {
    if (findOnPath(qemuBinary) === undefined) {
      print(`skipped: ${qemuBinary} is not on PATH (apt-get install qemu-system-x86 to run this workload)`)
      return
    }
    const args = ["--calls", options.quick ? "1000" : "3000", "--rounds", options.quick ? "3" : "5"]
    print("One QEMU with two QMP sockets: QmpClient on one, a raw net client (write, JSON.parse the reply) on the")
    print(`other, in one process, in alternating rounds. query-status each time; ${args[1]} sequential round trips`)
    print(`a round, and ${Number(args[1]) * 4} with 100 in flight (100 fibers for QmpClient).`)
    print("")
    const result = await runChild(script, args)
    const series = (key: string): Array<number> =>
      Object.entries(result.extra).filter(([name]) => name.startsWith(`${key}.`)).map(([, value]) => value)
    for (const line of header(columns)) print(line)
    for (const [label, kind] of [["sequential", "Sequential"], ["100 concurrent", "Concurrent"]] as const) {
      const raw = series(`raw${kind}`)
      const client = series(`client${kind}`)
      const ratios = client.map((rate, i) => rate / raw[i])
      const r = summarize(ratios)
      print(row(columns, [
        label,
        formatCount(summarize(raw).median),
        formatCount(summarize(client).median),
        `${r.median.toFixed(2)} (${r.min.toFixed(2)}–${r.max.toFixed(2)})`
      ]))
    }
    print("")
    print(`ratio: each round's QmpClient rate over that round's raw rate. Command: ${commandLine(script, args)}`)
  }
}

if (isMain(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(error)
    process.exit(1)
  })
}
