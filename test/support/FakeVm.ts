/**
 * A stand-in for the commands of the seed's tutorial, for tests of the event system without a
 * socket: each "command" publishes the events that QEMU 7.2 sends for it, in QEMU's order
 * (../shared/QEMU-NOTES.md), before it returns, as a real `execute` would.
 */
import { Effect } from "effect"
import { QmpEvents, QmpMessage } from "../../src/index.js"

const { makeEvent } = QmpMessage

/** The events of a fast `blockdev-backup` job (S7): all of them arrive before the reply. */
export const backupJobEvents = (id: string): ReadonlyArray<QmpMessage.QmpEvent> => [
  ...["created", "running", "paused", "running", "waiting", "pending"].map((status) =>
    makeEvent("JOB_STATUS_CHANGE", { id, status })
  ),
  makeEvent("BLOCK_JOB_COMPLETED", { device: id, len: 1048576, offset: 1048576, speed: 0, type: "backup" }),
  makeEvent("JOB_STATUS_CHANGE", { id, status: "concluded" }),
  makeEvent("JOB_STATUS_CHANGE", { id, status: "null" })
]

/** The events of a `blockdev-create` job (S12), which stays concluded until dismissed. */
export const createJobEvents = (id: string): ReadonlyArray<QmpMessage.QmpEvent> =>
  ["created", "running", "waiting", "pending", "concluded"].map((status) =>
    makeEvent("JOB_STATUS_CHANGE", { id, status })
  )

/** Runs a command of the tutorial: its events are in every listener when this returns. */
export const execute = (command: string, args: Record<string, unknown> = {}) =>
  Effect.flatMap(QmpEvents.QmpEvents, (qmp) => {
    switch (command) {
      case "stop":
        return qmp.publish(makeEvent("STOP"))
      case "cont":
        return qmp.publish(makeEvent("RESUME"))
      case "blockdev-backup":
        return qmp.publishAll(backupJobEvents(String(args["job-id"])))
      case "blockdev-create":
        return qmp.publishAll(createJobEvents(String(args["job-id"])))
      default:
        return Effect.dieMessage(`FakeVm: no such command ${command}`)
    }
  })
