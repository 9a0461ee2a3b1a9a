/**
 * The dispatcher of `QmpTestServer`: what QEMU's `qmp_dispatch` and `monitor_qmp_dispatch` do with a
 * message, in the same order, with the same errors (taken from QEMU 7.2 over a raw socket): the
 * checks of the message's members (in QEMU's member order, so that the first one QEMU finds wrong is
 * the one reported), the negotiation gate, the command's lookup, the OOB check; then the command's
 * handler, and its reply, which echoes the `id` exactly as it was read.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type { CommandError, Handler, HandlerContext, ReceivedCommand } from "../../testing/QmpTestServer.js"
import type { Input, Link } from "./link.js"
import type { QValue } from "./qobject.js"
import { QDict, toJs } from "./qobject.js"
import * as Wire from "./wire.js"

/** A command the server knows. @internal */
export interface Registration {
  readonly name: string
  readonly handler: Handler
  readonly oob: boolean
}

/** @internal */
export interface Options {
  readonly handlers: Effect.Effect<ReadonlyMap<string, Registration>>
  /** The capabilities the greeting offered. */
  readonly offered: ReadonlyArray<string>
  readonly wire: Wire.Wire
  /** What a handler's context holds besides its command and its replies. */
  readonly context: (link: Link) => Omit<HandlerContext, "command" | "reply" | "replyRaw" | "noReply">
}

/**
 * A message QEMU runs at once, out of band, rather than in turn: it has `exec-oob` and no `execute`
 * (whether out-of-band execution was enabled or not: if not, it is refused at once).
 *
 * @internal
 */
export const isOutOfBand = (input: Input): boolean =>
  input._tag === "Message" && input.value instanceof QDict && input.value.has("exec-oob") &&
  !input.value.has("execute")

/**
 * The command in a message, if it is one (a string `execute`, or `exec-oob`): what the server
 * records, before any check.
 *
 * @internal
 */
export const commandOf = (link: Link, input: Input): ReceivedCommand | undefined => {
  if (input._tag !== "Message" || !(input.value instanceof QDict)) return undefined
  const dict = input.value
  const oob = isOutOfBand(input)
  const name = dict.get(oob ? "exec-oob" : "execute")
  if (typeof name !== "string") return undefined
  const args = dict.get("arguments")
  return {
    connection: link.id,
    command: name,
    arguments: args instanceof QDict ? toJs(args) as Record<string, unknown> : undefined,
    id: dict.has("id") ? toJs(dict.get("id")!) : undefined,
    oob,
    message: toJs(dict) as Record<string, unknown>
  }
}

/** @internal */
export interface Dispatcher {
  readonly dispatch: (link: Link, input: Input, command: ReceivedCommand | undefined) => Effect.Effect<void>
}

/** What QEMU's member check finds wrong with a command, in QEMU's member order. */
const checkMembers = (dict: QDict, allowOob: boolean): string | undefined => {
  let execKey: string | undefined
  for (const key of dict.keys) {
    const value = dict.get(key)
    if (key === "execute" || (key === "exec-oob" && allowOob)) {
      if (typeof value !== "string") return `QMP input member '${key}' must be a string`
      if (execKey !== undefined) return `QMP input member '${key}' clashes with '${execKey}'`
      execKey = key
    } else if (key === "arguments") {
      if (!(value instanceof QDict)) return "QMP input member 'arguments' must be an object"
    } else if (key !== "id") {
      return `QMP input member '${key}' is unexpected`
    }
  }
  return execKey === undefined ? "QMP input lacks member 'execute'" : undefined
}

/** @internal */
export const make = (options: Options): Dispatcher => {
  /** Runs a handler and writes its reply, unless it answered by itself. `onReply` runs as the reply is written. */
  const { wire } = options
  const run = (
    link: Link,
    registration: Registration,
    command: ReceivedCommand,
    id: QValue | undefined,
    onReply?: () => void
  ): Effect.Effect<void> =>
    Effect.gen(function*() {
      let answered = false
      const answer = (line: () => string, onWrite?: () => void): Effect.Effect<void> =>
        Effect.suspend(() => {
          if (answered) return Effect.void
          answered = true
          return link.write(line(), onWrite)
        })
      const context: HandlerContext = {
        ...options.context(link),
        command,
        reply: (result) => answer(() => wire.returnLine(result, id), onReply),
        replyRaw: (message) => answer(() => wire.message(message)),
        noReply: Effect.sync(() => {
          answered = true
        })
      }
      const exit = yield* Effect.exit(Effect.suspend(() => registration.handler(command.arguments ?? {}, context)))
      if (answered || Exit.isInterrupted(exit)) return
      if (Exit.isSuccess(exit)) {
        const result = exit.value === undefined ? {} : exit.value
        const written = yield* Effect.exit(answer(() => wire.returnLine(result, id), onReply))
        if (Exit.isSuccess(written)) return
        answered = false
        yield* Effect.logError(
          `QmpTestServer: the result of ${command.command} cannot be written as JSON`,
          written.cause
        )
        return yield* answer(() =>
          wire.errorLine(Wire.genericError(`QmpTestServer: the result of ${command.command} is not JSON`), id)
        )
      }
      const failure = Cause.failureOption(exit.cause)
      if (Option.isSome(failure)) return yield* answer(() => wire.errorLine(failure.value, id))
      yield* Effect.logError(`QmpTestServer: the handler of ${command.command} failed`, exit.cause)
      yield* answer(() =>
        wire.errorLine(
          Wire.genericError(`QmpTestServer: the handler of ${command.command} failed: ${Cause.pretty(exit.cause)}`),
          id
        )
      )
    })

  /** The built-in `qmp_capabilities`: checks `enable`; the client is negotiated as its reply is written. */
  const negotiate = (link: Link, command: ReceivedCommand, id: QValue | undefined): Effect.Effect<void> => {
    const args = command.arguments ?? {}
    const reject = (desc: string) => link.write(wire.errorLine(Wire.genericError(desc), id))
    for (const name of Object.keys(args)) {
      if (name !== "enable") return reject(`Parameter '${name}' is unexpected`)
    }
    const enable: unknown = args.enable
    if (enable !== undefined && !Array.isArray(enable)) {
      return reject("Invalid parameter type for 'enable', expected: array")
    }
    const capabilities: ReadonlyArray<unknown> = enable ?? []
    for (const capability of capabilities) {
      // QEMU 7.2 says 'null' here, for the nameless list element.
      if (capability !== "oob") return reject(`Parameter 'null' does not accept value '${String(capability)}'`)
      if (!options.offered.includes(capability)) return reject(`Capability '${capability}' not available`)
    }
    return link.write(wire.returnLine({}, id), () => {
      link.negotiated = true
      link.oob = capabilities.includes("oob")
    })
  }

  /** Checks a message as QEMU's dispatcher does, then negotiates or runs the command's handler. */
  const dispatch = (link: Link, input: Input, command: ReceivedCommand | undefined): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (input._tag === "End") return Effect.void
      if (input._tag === "ParseError") return link.write(wire.errorLine(Wire.genericError(input.desc), undefined))
      const dict = input.value
      if (!(dict instanceof QDict)) {
        return link.write(wire.errorLine(Wire.genericError("QMP input must be a JSON object"), undefined))
      }
      const id = dict.get("id")
      const reject = (error: CommandError) => link.write(wire.errorLine(error, id))
      const wrong = checkMembers(dict, link.oob)
      if (wrong !== undefined || command === undefined) {
        return reject(Wire.genericError(wrong ?? "QMP input lacks member 'execute'"))
      }
      const found = command.command
      return Effect.flatMap(options.handlers, (handlers) => {
        const registration = handlers.get(found)
        if (!link.negotiated) {
          // Before negotiation, qmp_capabilities is the only command (QEMU rewrites CommandNotFound's text).
          if (found !== "qmp_capabilities") {
            return reject(Wire.commandNotFound("Expecting capabilities negotiation with 'qmp_capabilities'"))
          }
          if (registration === undefined) return negotiate(link, command, id)
          return run(link, registration, command, id, () => {
            const enable = command.arguments?.enable
            link.negotiated = true
            link.oob = Array.isArray(enable) && enable.includes("oob")
          })
        }
        if (found === "qmp_capabilities") {
          return reject(Wire.commandNotFound("Capabilities negotiation is already complete, command ignored"))
        }
        if (registration === undefined) return reject(Wire.commandNotFound(`The command ${found} has not been found`))
        if (command.oob && !registration.oob) {
          return reject(Wire.genericError(`The command ${found} does not support OOB`))
        }
        return run(link, registration, command, id)
      })
    })

  return { dispatch }
}
