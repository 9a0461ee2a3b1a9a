/**
 * The limit of the fleet workload's event rate: one plain Node process reading the same VM sockets
 * as the fleet does, with nothing but `net`, a split on newlines and `JSON.parse`. It connects to
 * VMs 0 to N-1 of a fleet server, reads each greeting, negotiates, then asks each VM for `count`
 * events at once (`x-blast`) and reads them all; it prints the rate (events/s) of each round, one
 * JSON line per round, and waits for the next line on stdin (`run`) before the next round.
 *
 *     node --import tsx bench/fleetRaw.ts --dir /tmp/fleet --vms 100 --events 20000
 */
import * as net from "node:net"
import * as readline from "node:readline"
import { parseArgs } from "node:util"
import { socketOf } from "./fleetServer.js"

/** One VM's socket: negotiated, then counting the events of each blast until its reply. */
interface Raw {
  readonly socket: net.Socket
  /** Resolves when the reply of the pending command has arrived. */
  reply: (() => void) | undefined
}

let events = 0

const open = (path: string): Promise<Raw> =>
  new Promise((resolve, reject) => {
    const socket = net.createConnection({ path })
    const raw: Raw = { socket, reply: undefined }
    let partial = ""
    let greeted = false
    socket.setEncoding("utf8")
    socket.on("error", reject)
    socket.on("data", (text: string) => {
      const lines = (partial + text).split("\n")
      partial = lines.pop()!
      for (const line of lines) {
        if (line.length === 0) continue
        const message = JSON.parse(line) as Record<string, unknown>
        if (message.event !== undefined) events++
        else if (!greeted) {
          greeted = true
          socket.write("{\"execute\": \"qmp_capabilities\"}\n")
        } else if (raw.reply !== undefined) {
          const done = raw.reply
          raw.reply = undefined
          done()
        } else resolve(raw)
      }
    })
  })

const blast = (raw: Raw, count: number): Promise<void> =>
  new Promise((resolve) => {
    raw.reply = resolve
    raw.socket.write(`{"execute": "x-blast", "arguments": {"count": ${count}}}\n`)
  })

const { values } = parseArgs({
  args: process.argv.slice(2),
  strict: true,
  options: {
    dir: { type: "string" },
    vms: { type: "string", default: "100" },
    events: { type: "string", default: "20000" }
  }
})
const vms = Number(values.vms)
const count = Number(values.events)
const sockets = await Promise.all(Array.from({ length: vms }, (_, i) => open(socketOf(values.dir!, i))))
process.stdout.write(JSON.stringify({ ready: true }) + "\n")

const rounds = readline.createInterface({ input: process.stdin })
for await (const line of rounds) {
  if (line.trim() !== "run") break
  events = 0
  const start = performance.now()
  await Promise.all(sockets.map((raw) => blast(raw, count)))
  const seconds = (performance.now() - start) / 1000
  process.stdout.write(JSON.stringify({ rate: events / seconds }) + "\n")
}
for (const raw of sockets) raw.socket.destroy()
