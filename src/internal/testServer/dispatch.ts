/**
 * The dispatcher of `QmpTestServer`: what QEMU's `qmp_dispatch` and `monitor_qmp_dispatch` do with a
 * line, in the same order, with the same errors (taken from QEMU 7.2 over a raw socket): the checks
 * of the message's members, the negotiation gate, the command's lookup, the OOB check; then the
 * command's handler, and its reply.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as QmpMessage from "../../QmpMessage.js"
import type { CommandError, Handler, HandlerContext, ReceivedCommand } from "../../testing/QmpTestServer.js"
import type { Input, Link } from "./link.js"
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
  /** What a handler's context holds besides its command and its replies. */
  readonly context: (link: Link) => Omit<HandlerContext, "command" | "reply" | "replyRaw" | "noReply">
}

/**
 * The command in a message, if it is one (a string `execute`, or `exec-oob`): what the server
 * records, before any check.
 *
 * @internal
 */
export const commandOf = (link: Link, input: Input): ReceivedCommand | undefined => {
  if (input._tag !== "Message" || !QmpMessage.isJsonObject(input.message)) return undefined
  const message = input.message
  const oob = typeof message["exec-oob"] === "string" && !Object.hasOwn(message, "execute")
  const name = oob ? message["exec-oob"] : message.execute
  if (typeof name !== "string") return undefined
  return {
    connection: link.id,
    command: name,
    arguments: QmpMessage.isJsonObject(message.arguments) ? message.arguments : undefined,
    id: message.id,
    oob,
    message
  }
}

/** @internal */
export interface Dispatcher {
  readonly dispatch: (link: Link, input: Input, command: ReceivedCommand | undefined) => Effect.Effect<void>
}

/** @internal */
export const make = (options: Options): Dispatcher => {
  /** Runs a handler and writes its reply, unless it answered by itself. `onReply` runs as the reply is written. */
  const run = (
    link: Link,
    registration: Registration,
    command: ReceivedCommand,
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
        reply: (result) => answer(() => Wire.returnLine(result, command.message), onReply),
        replyRaw: (message) => answer(() => Wire.stringify(message) + "\r\n"),
        noReply: Effect.sync(() => {
          answered = true
        })
      }
      const exit = yield* Effect.exit(Effect.suspend(() => registration.handler(command.arguments ?? {}, context)))
      if (answered || Exit.isInterrupted(exit)) return
      if (Exit.isSuccess(exit)) {
        const result = exit.value === undefined ? {} : exit.value
        const written = yield* Effect.exit(answer(() => Wire.returnLine(result, command.message), onReply))
        if (Exit.isSuccess(written)) return
        answered = false
        yield* Effect.logError(
          `QmpTestServer: the result of ${command.command} cannot be written as JSON`,
          written.cause
        )
        return yield* answer(() =>
          Wire.errorLine(
            Wire.genericError(`QmpTestServer: the result of ${command.command} is not JSON`),
            command.message
          )
        )
      }
      const failure = Cause.failureOption(exit.cause)
      if (Option.isSome(failure)) return yield* answer(() => Wire.errorLine(failure.value, command.message))
      yield* Effect.logError(`QmpTestServer: the handler of ${command.command} failed`, exit.cause)
      yield* answer(() =>
        Wire.errorLine(
          Wire.genericError(`QmpTestServer: the handler of ${command.command} failed: ${Cause.pretty(exit.cause)}`),
          command.message
        )
      )
    })

  /** The built-in `qmp_capabilities`: checks `enable`; the client is negotiated as its reply is written. */
  const negotiate = (link: Link, command: ReceivedCommand): Effect.Effect<void> => {
    const args = command.arguments ?? {}
    const reject = (desc: string) => link.write(Wire.errorLine(Wire.genericError(desc), command.message))
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
    return link.write(Wire.returnLine({}, command.message), () => {
      link.negotiated = true
      link.oob = capabilities.includes("oob")
    })
  }

  /** Checks a line as QEMU's dispatcher does, then negotiates or runs the command's handler. */
  const dispatch = (link: Link, input: Input, command: ReceivedCommand | undefined): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (input._tag === "ParseError") {
        return link.write(Wire.errorLine(Wire.genericError(`JSON parse error, ${input.detail}`), undefined))
      }
      const message = input.message
      if (!QmpMessage.isJsonObject(message)) {
        return link.write(Wire.errorLine(Wire.genericError("QMP input must be a JSON object"), undefined))
      }
      const reject = (error: CommandError) => link.write(Wire.errorLine(error, message))
      let name: string | undefined
      for (const key of Object.keys(message)) {
        const value = message[key]
        if (key === "execute" || (key === "exec-oob" && link.oob)) {
          if (typeof value !== "string") {
            return reject(Wire.genericError(`QMP input member '${key}' must be a string`))
          }
          if (name !== undefined) {
            return reject(Wire.genericError(
              `QMP input member '${key}' clashes with '${link.oob ? "execute, exec-oob" : "execute"}'`
            ))
          }
          name = value
        } else if (key === "arguments") {
          if (!QmpMessage.isJsonObject(value)) {
            return reject(Wire.genericError("QMP input member 'arguments' must be an object"))
          }
        } else if (key !== "id") {
          return reject(Wire.genericError(`QMP input member '${key}' is unexpected`))
        }
      }
      if (name === undefined || command === undefined) {
        return reject(Wire.genericError("QMP input lacks member 'execute'"))
      }
      const found = name
      return Effect.flatMap(options.handlers, (handlers) => {
        const registration = handlers.get(found)
        if (!link.negotiated) {
          // Before negotiation, qmp_capabilities is the only command (QEMU rewrites CommandNotFound's text).
          if (found !== "qmp_capabilities") {
            return reject(Wire.commandNotFound("Expecting capabilities negotiation with 'qmp_capabilities'"))
          }
          if (registration === undefined) return negotiate(link, command)
          return run(link, registration, command, () => {
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
        return run(link, registration, command)
      })
    })

  return { dispatch }
}
