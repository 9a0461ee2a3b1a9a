/**
 * What `QmpTestServer` writes, as QEMU writes it: JSON with a space after each `:` and `,`, members in
 * QEMU's order (`timestamp` first in an event, `return` before `id`, `id` before `error`), `\r\n`
 * after each message.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as QmpMessage from "../../QmpMessage.js"
import type { CommandError } from "../../testing/QmpTestServer.js"

/**
 * `JSON.stringify` with QEMU's spacing: the same values (an `undefined` member is left out, a
 * non-finite number is `null`, `toJSON` is used); throws on a `bigint` or a cycle, as it does.
 *
 * @internal
 */
export const stringify = (value: unknown): string => write(value, 0)

const write = (value: unknown, depth: number): string => {
  if (depth > 512) throw new TypeError("Converting circular structure to JSON (or nested too deeply)")
  if (value === null || typeof value !== "object") {
    const text = JSON.stringify(value)
    return text === undefined ? "null" : text
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === "function") {
    return write((value as { toJSON: () => unknown }).toJSON(), depth + 1)
  }
  if (Array.isArray(value)) {
    return "[" +
      value.map((item) => write(item === undefined || typeof item === "function" ? null : item, depth + 1)).join(", ") +
      "]"
  }
  const parts: Array<string> = []
  for (const key of Object.keys(value)) {
    const member = (value as Record<string, unknown>)[key]
    if (member === undefined || typeof member === "function" || typeof member === "symbol") continue
    parts.push(JSON.stringify(key) + ": " + write(member, depth + 1))
  }
  return "{" + parts.join(", ") + "}"
}

/** @internal */
export const lines = (messages: ReadonlyArray<unknown>): string => messages.map((m) => stringify(m) + "\r\n").join("")

/** @internal */
export const eventLine = (event: QmpMessage.QmpEvent): string =>
  stringify(
    event.data === undefined ?
      { timestamp: event.timestamp, event: event.event } :
      { timestamp: event.timestamp, event: event.event, data: event.data }
  ) + "\r\n"

/** The reply to a command, echoing its `id` if it has one. @internal */
export const returnLine = (result: unknown, command: Readonly<Record<string, unknown>> | undefined): string =>
  stringify(
    command !== undefined && Object.hasOwn(command, "id") ? { return: result, id: command.id } : { return: result }
  ) + "\r\n"

/** An error reply, echoing the command's `id` if it has one. @internal */
export const errorLine = (error: CommandError, command: Readonly<Record<string, unknown>> | undefined): string => {
  const body = { class: error.class, desc: error.desc }
  return stringify(
    command !== undefined && Object.hasOwn(command, "id") ? { id: command.id, error: body } : { error: body }
  ) + "\r\n"
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
