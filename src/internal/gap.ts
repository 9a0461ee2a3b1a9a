/**
 * The gap event: what a fleet puts in a VM's registry when it has restored a lost connection, before
 * the first event of the new one, so that listeners know that events may be missing in between.
 *
 * Its name, `effect-qmp.gap`, cannot be a QEMU event's: QEMU names its events with upper-case
 * letters, digits and underscores only.
 *
 * @internal
 */
import type { QmpDisconnected } from "../QmpError.js"
import type { Timestamp } from "../QmpMessage.js"

/** @internal */
export const gapEvent = "effect-qmp.gap"

/**
 * What a gap event says: which VM, when its connection was lost and when it was restored (QMP
 * timestamps, from the fleet's `Clock`), why it was lost, and how many connection attempts it took.
 *
 * @internal
 */
export type GapData = {
  readonly vm: string
  readonly lost: Timestamp
  readonly restored: Timestamp
  readonly reason: QmpDisconnected["reason"]
  readonly message: string
  readonly attempts: number
}

/** @internal */
export type GapEvent = {
  readonly event: typeof gapEvent
  readonly data: GapData
  readonly timestamp: Timestamp
}

/** @internal */
export const isGapEvent = (event: { readonly event: string }): event is GapEvent => event.event === gapEvent

/** A time in milliseconds since the epoch, as QMP writes one. */
const timestampOf = (millis: number): Timestamp => ({
  seconds: Math.floor(millis / 1000),
  microseconds: Math.floor((millis % 1000) * 1000)
})

/** @internal */
export const makeGapEvent = (options: {
  readonly vm: string
  readonly lost: number
  readonly restored: number
  readonly reason: QmpDisconnected
  readonly attempts: number
}): GapEvent => {
  const restored = timestampOf(options.restored)
  return {
    event: gapEvent,
    data: {
      vm: options.vm,
      lost: timestampOf(options.lost),
      restored,
      reason: options.reason.reason,
      message: options.reason.message,
      attempts: options.attempts
    },
    timestamp: restored
  }
}
