/**
 * What `QmpTestServer` writes, as QEMU's monitor writes it (`writer.ts`): members in QEMU's order,
 * `\r\n` after each message, and, on a pretty monitor (`pretty=on`), one member per line.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as QmpMessage from "../../QmpMessage.js"
import type { CommandError } from "../../testing/QmpTestServer.js"
import type { QValue } from "./qobject.js"
import * as Writer from "./writer.js"

/**
 * `JSON.stringify` with QEMU's spacing and member order: the same values (an `undefined` member is
 * left out, a non-finite number is `null`, `toJSON` is used); throws on a `bigint` or a cycle, as it does.
 *
 * @internal
 */
export const stringify = (value: unknown): string => Writer.stringify(value)

/** The messages of one monitor. @internal */
export interface Wire {
  readonly pretty: boolean
  /** Any value, as a message. */
  readonly message: (value: unknown) => string
  /** Values as messages, one after the other. */
  readonly lines: (messages: ReadonlyArray<unknown>) => string
  readonly event: (event: QmpMessage.QmpEvent) => string
  /** The reply to a command, echoing its `id` (as read) if it has one. */
  readonly returnLine: (result: unknown, id: QValue | undefined) => string
  /** An error reply, echoing the command's `id` (as read) if it has one. */
  readonly errorLine: (error: CommandError, id: QValue | undefined) => string
}

/** @internal */
export const make = (pretty: boolean): Wire => {
  const message = (value: unknown) => Writer.message(value, pretty)
  return {
    pretty,
    message,
    lines: (messages) => messages.map(message).join(""),
    event: (event) =>
      message(
        event.data === undefined ?
          { event: event.event, timestamp: event.timestamp } :
          { event: event.event, data: event.data, timestamp: event.timestamp }
      ),
    // QEMU builds the reply first and adds the `id` last.
    returnLine: (result, id) => message(id === undefined ? { return: result } : { return: result, id }),
    errorLine: (error, id) => {
      const body = { class: error.class, desc: error.desc }
      return message(id === undefined ? { error: body } : { error: body, id })
    }
  }
}

/** @internal */
export const genericError = (desc: string): CommandError => ({ class: "GenericError", desc })

/** @internal */
export const commandNotFound = (desc: string): CommandError => ({ class: "CommandNotFound", desc })

/** The current time as an event's timestamp, with QEMU's microseconds. @internal */
export const now: Effect.Effect<QmpMessage.Timestamp> = Effect.map(Clock.currentTimeNanos, (nanos) => ({
  seconds: Number(nanos / 1_000_000_000n),
  microseconds: Number((nanos % 1_000_000_000n) / 1_000n)
}))
