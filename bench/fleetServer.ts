/**
 * The fleet benchmark's server: N VMs' QMP sockets served by one process, `vm-0.sock` to
 * `vm-<N-1>.sock` in one directory, each greeting as QEMU 7.2 does (byte for byte), serving any
 * number of clients at once (the fleet and the raw client of the comparison read the same sockets).
 *
 * Each VM answers `qmp_capabilities`, `query-status` (a running VM, as QEMU's reply), `query-yank`
 * (in band or out of band: a fleet's liveness ping), and two commands of the benchmark:
 *
 * - `x-blast {"count": N}`: N events as fast as the socket takes them, then the return (as
 *   `blastServer.ts`, whose events and writer it uses).
 * - `x-rate {"per-second": R}`: from now on, R events a second to this client, until `x-rate` with
 *   0 or the end of the connection. One timer of the process writes each client's due events every
 *   5 ms, in one write per client.
 *
 * It runs in a process of its own (as the blast server, for the same reason): `spawn()` starts it;
 * run by hand, it listens until its standard input closes:
 *
 *     node --import tsx bench/fleetServer.ts --dir /tmp/fleet --vms 1000
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import * as BlastServer from "./blastServer.js"
import { isMain, root, spawnServer } from "./workload.js"

/** The socket of VM `i` in `dir`. */
export const socketOf = (dir: string, i: number): string => path.join(dir, `vm-${i}.sock`)

/** A client receiving events at a rate: how many it was sent, from when. */
interface Paced {
  readonly socket: net.Socket
  readonly perSecond: number
  readonly since: number
  sent: number
}

const block = BlastServer.buildBlock()
const paced = new Set<Paced>()

/** The events due to each paced client since the last tick, in one write each (wrapping around the block). */
const tick = (): void => {
  const now = performance.now()
  for (const client of paced) {
    if (client.socket.destroyed) {
      paced.delete(client)
      continue
    }
    const due = Math.floor(((now - client.since) / 1000) * client.perSecond) - client.sent
    if (due <= 0 || client.socket.writableLength > 1024 * 1024) continue
    const from = client.sent % BlastServer.blockEvents
    const to = Math.min(from + due, BlastServer.blockEvents)
    client.socket.write(block.bytes.subarray(block.ends[from], block.ends[to]))
    client.sent += to - from
  }
}

const status = "{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": true}"

const handle = async (socket: net.Socket, line: string, pacing: { current: Paced | undefined }): Promise<void> => {
  const message = JSON.parse(line) as Record<string, unknown>
  const command = message.execute ?? message["exec-oob"]
  const args = (message.arguments ?? {}) as Record<string, unknown>
  switch (command) {
    case "qmp_capabilities":
      return BlastServer.reply(socket, message.id, "{\"return\": {}")
    case "query-status":
      return BlastServer.reply(socket, message.id, status)
    case "query-yank":
      return BlastServer.reply(socket, message.id, "{\"return\": []")
    case "x-blast": {
      const count = Number(args.count ?? 0)
      await BlastServer.blast(socket, block, count)
      return BlastServer.reply(socket, message.id, `{"return": {"count": ${count}}`)
    }
    case "x-rate": {
      if (pacing.current !== undefined) paced.delete(pacing.current)
      const perSecond = Number(args["per-second"] ?? 0)
      pacing.current = perSecond > 0 ? { socket, perSecond, since: performance.now(), sent: 0 } : undefined
      if (pacing.current !== undefined) paced.add(pacing.current)
      return BlastServer.reply(socket, message.id, "{\"return\": {}")
    }
    default:
      return BlastServer.reply(
        socket,
        message.id,
        `{"error": {"class": "CommandNotFound", "desc": "The command ${String(command)} has not been found"}`
      )
  }
}

const serve = (socket: net.Socket): void => {
  socket.on("error", () => {})
  socket.write(BlastServer.greeting)
  const pacing: { current: Paced | undefined } = { current: undefined }
  socket.on("close", () => {
    if (pacing.current !== undefined) paced.delete(pacing.current)
  })
  // In-band commands run one at a time, in order, as QEMU's; exec-oob ones at once.
  let busy = Promise.resolve()
  BlastServer.onLines(socket, (line) => {
    if (line.includes("\"exec-oob\"")) void handle(socket, line, pacing)
    else busy = busy.then(() => handle(socket, line, pacing))
  })
}

/** Listens on `vms` sockets in `dir`. */
export const listen = async (dir: string, vms: number): Promise<ReadonlyArray<net.Server>> => {
  const servers = await Promise.all(Array.from({ length: vms }, (_, i) =>
    new Promise<net.Server>((resolve, reject) => {
      const server = net.createServer(serve)
      server.once("error", reject)
      server.listen(socketOf(dir, i), () => resolve(server))
    })))
  setInterval(tick, 5)
  return servers
}

/** A fleet server running in a child process. */
export interface FleetServer {
  readonly dir: string
  readonly vms: number
  readonly pid: number
  readonly close: () => Promise<void>
}

const script = path.relative(root, fileURLToPath(import.meta.url))

/** Starts a fleet server of `vms` VMs in a child process, its sockets in a fresh temporary directory. */
export const spawn = async (vms: number): Promise<FleetServer> => {
  const server = await spawnServer(script, (dir) => ["--dir", dir, "--vms", String(vms)])
  return { ...server, vms }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: { dir: { type: "string" }, vms: { type: "string", default: "1000" } }
  })
  if (values.dir === undefined) throw new Error("--dir is required")
  const dir = values.dir
  await listen(dir, Number(values.vms))
  process.stdout.write(`listening on ${values.vms} sockets in ${dir}\n`)
  const stop = () => {
    fs.rmSync(dir, { recursive: true, force: true })
    process.exit(0)
  }
  process.stdin.resume()
  process.stdin.on("close", stop)
  process.stdin.on("end", stop)
}
