/**
 * The QEMU of the conformance suite: a `-machine none` QEMU 7.2 with one QMP monitor (pretty or not)
 * and nothing else on it, so that a plain `net` client has QEMU to itself.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import type { QmpAddress } from "../../src/index.js"
import { binary } from "../support/qemu.js"

/** A QEMU with one QMP monitor (pretty or not), killed when the suite is done with it. */
export const startQemu = async (
  pretty = false
): Promise<{ readonly address: QmpAddress.QmpAddress; readonly stop: () => void }> => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-qmp-conformance-"))
  const path = Path.join(dir, "qmp.sock")
  const monitor = pretty ?
    ["-chardev", `socket,id=qmp,path=${path},server=on,wait=off`, "-mon", "chardev=qmp,mode=control,pretty=on"] :
    ["-qmp", `unix:${path},server=on,wait=off`]
  const child = ChildProcess.spawn(binary!, ["-machine", "none", "-display", "none", "-nodefaults", ...monitor], {
    stdio: "ignore"
  })
  const stop = () => {
    child.kill("SIGKILL")
    Fs.rmSync(dir, { recursive: true, force: true })
    process.off("exit", stop)
  }
  // No QEMU outlives the test process, whatever ends it.
  process.once("exit", stop)
  // The socket accepts once QEMU has set it up.
  for (let attempt = 0; attempt < 200; attempt++) {
    const ready = await new Promise<boolean>((resolve) => {
      const probe = Net.createConnection({ path })
      probe.once("connect", () => {
        probe.destroy()
        resolve(true)
      })
      probe.once("error", () => resolve(false))
    })
    // The probe took QEMU's client slot for a moment: it is free again once QEMU has seen it go.
    if (ready) return { address: { path }, stop }
    await new Promise((resume) => setTimeout(resume, 25))
  }
  stop()
  throw new Error("QEMU's QMP socket did not come up")
}
