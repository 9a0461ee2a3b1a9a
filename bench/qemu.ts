/**
 * A QEMU for a benchmark: `-machine none`, with a QMP socket at each path given, until `stop`.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"

/** Starts QEMU and waits until every socket exists (10 s at most). */
export const startQemu = async (binary: string, sockets: ReadonlyArray<string>) => {
  const qemu = spawn(binary, [
    "-machine",
    "none",
    "-display",
    "none",
    "-nodefaults",
    ...sockets.flatMap((socket) => ["-qmp", `unix:${socket},server=on,wait=off`])
  ], { stdio: "ignore" })
  const deadline = Date.now() + 10_000
  while (!sockets.every((socket) => fs.existsSync(socket))) {
    if (Date.now() > deadline || qemu.exitCode !== null) throw new Error("QEMU did not create its QMP sockets")
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return { stop: () => void qemu.kill("SIGKILL") }
}
