/**
 * The blast server of the end-to-end benchmark: a QMP server on a Unix socket that greets like QEMU 7.2,
 * accepts `qmp_capabilities`, and on `x-blast {"count": N}` writes N events as fast as the socket takes
 * them, then the command's `return`.
 *
 * The events are what QEMU 7.2 writes (its key order, `": "` and `", "` separators, `\r\n`), cycling
 * through the ten names of `publish.ts` with realistic data and timestamps, 70 to 190 bytes each. They
 * are built once, as one block of `blockEvents` lines in a single `Buffer`; a blast writes that block
 * again and again (a `subarray` of it for the tail) and waits for `drain` whenever `write` says the
 * socket is full. So a blast costs the server a few hundred `write` calls per million events, and the
 * kernel's copy: it runs far ahead of any client that parses (the benchmark measures that, with a client
 * that discards the bytes).
 *
 * The return of `x-blast` carries the server's CPU time and wall time for the blast (`cpu-us`,
 * `wall-us`): how busy the server was while the client read.
 *
 * It runs in a process of its own (see `endToEnd.ts` for why): `spawn()` starts it and returns its
 * socket; run by hand, it listens until its standard input closes (`--remove-dir` names a directory
 * to remove then):
 *
 *     node --import tsx bench/blastServer.ts --socket /tmp/blast.sock
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { isMain, root, spawnServer } from "./workload.js"

/** The greeting of QEMU 7.2 as Debian 12 ships it, byte for byte. */
export const greeting = "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, " +
  "\"package\": \"Debian 1:7.2+dfsg-7+deb12u18+b3\"}, \"capabilities\": [\"oob\"]}}\r\n"

/** Ten event names with the data QEMU 7.2 sends with them (as `publish.ts`; STOP and RESUME carry none). */
const kinds: ReadonlyArray<{ readonly name: string; readonly data: (i: number) => string | undefined }> = [
  { name: "JOB_STATUS_CHANGE", data: () => "{\"status\": \"running\", \"id\": \"backup-drive0\"}" },
  {
    name: "BLOCK_JOB_COMPLETED",
    data: () =>
      "{\"device\": \"backup-drive0\", \"len\": 10737418240, \"offset\": 10737418240, \"speed\": 0, \"type\": \"backup\"}"
  },
  { name: "STOP", data: () => undefined },
  { name: "RESUME", data: () => undefined },
  { name: "MIGRATION_PASS", data: (i) => `{"pass": ${i + 1}}` },
  { name: "BALLOON_CHANGE", data: () => "{\"actual\": 4294967296}" },
  { name: "RTC_CHANGE", data: () => "{\"offset\": 0, \"qom-path\": \"/machine/unattached/device[8]\"}" },
  {
    name: "BLOCK_JOB_READY",
    data: () =>
      "{\"device\": \"mirror-drive1\", \"len\": 21474836480, \"offset\": 21474836480, \"speed\": 0, \"type\": \"mirror\"}"
  },
  { name: "MIGRATION", data: () => "{\"status\": \"active\"}" },
  { name: "SHUTDOWN", data: () => "{\"guest\": true, \"reason\": \"guest-shutdown\"}" }
]

/** The ten event names, in the order the blast cycles through them. */
export const eventNames: ReadonlyArray<string> = kinds.map((kind) => kind.name)

/** Events in the pre-built block (about 1 MiB). */
export const blockEvents = 8_192

/** Event `i` of the sequence as QEMU writes it, `\r\n` included. */
export const eventLine = (i: number, seconds: number): string => {
  const kind = kinds[i % kinds.length]
  const micro = (i * 137) % 1_000_000
  const data = kind.data(i)
  return `{"timestamp": {"seconds": ${seconds + Math.floor(i * 137 / 1_000_000)}, "microseconds": ${micro}}, ` +
    `"event": "${kind.name}"${data === undefined ? "" : `, "data": ${data}`}}\r\n`
}

export interface Block {
  readonly bytes: Buffer
  /** `ends[k]`: the byte length of the first `k` events of the block. */
  readonly ends: ReadonlyArray<number>
}

export const buildBlock = (): Block => {
  const seconds = Math.floor(Date.now() / 1000)
  const lines: Array<string> = []
  const ends: Array<number> = [0]
  let bytes = 0
  for (let i = 0; i < blockEvents; i++) {
    const line = eventLine(i, seconds)
    lines.push(line)
    bytes += Buffer.byteLength(line)
    ends.push(bytes)
  }
  return { bytes: Buffer.from(lines.join("")), ends }
}

/** The mean size of an event on the wire, in bytes. */
export const meanEventBytes = (): number => {
  const block = buildBlock()
  return block.bytes.length / blockEvents
}

export const drained = (socket: net.Socket): Promise<void> =>
  new Promise((resolve) => {
    const done = () => {
      socket.off("drain", done)
      socket.off("close", done)
      resolve()
    }
    socket.on("drain", done)
    socket.on("close", done)
  })

/** Writes `count` events, block after block, waiting for `drain` whenever the socket is full. */
export const blast = async (socket: net.Socket, block: Block, count: number): Promise<void> => {
  for (let remaining = count; remaining > 0 && !socket.destroyed;) {
    const n = Math.min(remaining, blockEvents)
    remaining -= n
    if (!socket.write(n === blockEvents ? block.bytes : block.bytes.subarray(0, block.ends[n]))) {
      await drained(socket)
    }
  }
}

export const reply = (socket: net.Socket, id: unknown, body: string): void => {
  if (socket.destroyed) return
  socket.write(`${body}${id === undefined ? "" : `, "id": ${JSON.stringify(id)}`}}\r\n`)
}

const handle = async (socket: net.Socket, block: Block, line: string): Promise<void> => {
  let message: Record<string, unknown>
  try {
    message = JSON.parse(line) as Record<string, unknown>
  } catch {
    reply(socket, undefined, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}")
    return
  }
  const command = message.execute ?? message["exec-oob"]
  const args = (message.arguments ?? {}) as Record<string, unknown>
  switch (command) {
    case "qmp_capabilities":
      reply(socket, message.id, "{\"return\": {}")
      return
    case "x-blast": {
      const count = Number(args.count ?? 0)
      const cpu = process.cpuUsage()
      const start = performance.now()
      await blast(socket, block, count)
      const used = process.cpuUsage(cpu)
      const wall = Math.round((performance.now() - start) * 1000)
      reply(
        socket,
        message.id,
        `{"return": {"count": ${count}, "cpu-us": ${used.user + used.system}, "wall-us": ${wall}}`
      )
      return
    }
    default:
      reply(
        socket,
        message.id,
        `{"error": {"class": "CommandNotFound", "desc": ${
          JSON.stringify(`The command ${String(command)} has not been found`)
        }}`
      )
  }
}

/** Calls `f` with each non-empty line the client sends (commands are small: a string buffer will do). */
export const onLines = (socket: net.Socket, f: (line: string) => void): void => {
  let pending = ""
  socket.setEncoding("utf8")
  socket.on("data", (text: string) => {
    pending += text
    for (let newline = pending.indexOf("\n"); newline !== -1; newline = pending.indexOf("\n")) {
      const line = pending.slice(0, newline)
      pending = pending.slice(newline + 1)
      if (line.trim() !== "") f(line)
    }
  })
}

/** Starts the server in this process, listening on `socketPath`. */
export const listen = (socketPath: string): Promise<net.Server> => {
  const block = buildBlock()
  const server = net.createServer((socket) => {
    socket.on("error", () => {})
    socket.write(greeting)
    // Commands run one at a time, in order.
    let busy = Promise.resolve()
    onLines(socket, (line) => {
      busy = busy.then(() => handle(socket, block, line))
    })
  })
  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(socketPath, () => resolve(server))
  })
}

/** A blast server running in a child process. */
export interface BlastServer {
  readonly socketPath: string
  /** The server's process id. */
  readonly pid: number
  /** Stops the server and removes its directory. */
  readonly close: () => Promise<void>
}

const script = path.relative(root, fileURLToPath(import.meta.url))

/** Starts a blast server in a child process, on a socket in a fresh temporary directory. */
export const spawn = async (): Promise<BlastServer> => {
  const server = await spawnServer(script, (dir) => ["--socket", path.join(dir, "blast.sock"), "--remove-dir", dir])
  return { socketPath: path.join(server.dir, "blast.sock"), pid: server.pid, close: server.close }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: { socket: { type: "string" }, "remove-dir": { type: "string" } }
  })
  if (values.socket === undefined) throw new Error("--socket is required")
  const server = await listen(values.socket)
  process.stdout.write(`listening on ${values.socket}\n`)
  // Standard input closes when the parent stops us, or dies: then clean up and go.
  const stop = () => {
    server.close()
    const dir = values["remove-dir"]
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true })
    process.exit(0)
  }
  process.stdin.resume()
  process.stdin.on("close", stop)
  process.stdin.on("end", stop)
}
