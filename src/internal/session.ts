/**
 * One QMP session over an open socket: the reader in the socket callback, the processing fiber, the
 * calls in flight, writes, and the end of the connection.
 *
 * - The reader (`reader.ts`) turns each chunk into a batch; batches wait in a plain array whose
 *   length the reader bounds by pausing the socket, and a doorbell wakes the processing fiber.
 * - The processing fiber takes every waiting batch, hands their events to `QmpEvents.publishAll` in
 *   one hand-off and waits for it, then settles the replies of those batches in order. An event that
 *   came before a reply is thus in every listener before that reply's `execute` completes
 *   (semantics 3), by construction.
 * - Every end of the connection (the peer hung up, the socket failed, bad input, `disconnect`)
 *   reaches the processing fiber as an item behind what was read before it, and is handled once, by
 *   `terminate`: pending calls fail (a `quit` that was sent succeeds instead: QEMU hangs up right
 *   after it), then, for an established session, `QmpEvents.end` runs.
 *
 * @internal
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import type * as Socket from "@effect/platform/Socket"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Net from "node:net"
import type { QmpAddress } from "../QmpAddress.js"
import { format as formatAddress } from "../QmpAddress.js"
import type { ExecuteError } from "../QmpError.js"
import {
  QmpConnectError,
  QmpDisconnected,
  QmpExecuteError,
  QmpNegotiationError,
  QmpProtocolError,
  QmpTimeoutError
} from "../QmpError.js"
import type * as QmpEvents from "../QmpEvents.js"
import * as QmpMessage from "../QmpMessage.js"
import type { Call, CallError } from "./calls.js"
import { Calls } from "./calls.js"
import { causeMessage, render } from "./describe.js"
import { Doorbell } from "./doorbell.js"
import * as InternalMetrics from "./metrics.js"
import type { Batch, Item } from "./reader.js"
import { Reader } from "./reader.js"

/** @internal */
export interface Session {
  /** The greeting, once it has arrived and been checked. */
  readonly greeting: Effect.Effect<QmpMessage.Greeting, QmpConnectError | QmpNegotiationError>
  readonly call: (
    kind: "execute" | "exec-oob",
    command: string,
    args: QmpMessage.JsonObject | undefined,
    timeout: Duration.Duration | undefined
  ) => Effect.Effect<unknown, ExecuteError>
  /**
   * Marks the session established: from now on, its end ends the `QmpEvents` registry too. `false`
   * if the connection has ended already.
   */
  readonly establish: Effect.Effect<boolean>
  readonly disconnect: Effect.Effect<void>
  /** Waits until the session has ended, and gives the reason. */
  readonly closed: Effect.Effect<QmpDisconnected>
}

/** @internal */
export interface Options {
  readonly address: QmpAddress
  readonly socket: Net.Socket
  readonly events: QmpEvents.Service
  readonly maxMessageBytes: number
}

/** Unprocessed batches above which reading pauses, and at or below which it resumes. */
const highWater = 16
const lowWater = 4

const isErrorBody = (u: unknown): u is { readonly class: string; readonly desc: string } =>
  QmpMessage.isJsonObject(u) && Object.hasOwn(u, "class") && typeof u.class === "string" &&
  Object.hasOwn(u, "desc") && typeof u.desc === "string"

/** Why a value does not decode with `schema`, for a message: it does not, or we would not ask. */
const explain = <A, I>(schema: Schema.Schema<A, I>, u: unknown): string => QmpMessage.explain(schema, u) ?? ""

/** Why `Socket.run` ended. */
const endReason = (exit: Exit.Exit<void, Socket.SocketError>): QmpDisconnected => {
  if (Exit.isSuccess(exit)) return new QmpDisconnected({ reason: "Closed" })
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) {
    return new QmpDisconnected({ reason: "Lost", detail: Cause.pretty(exit.cause) })
  }
  const error = failure.value
  if (error.reason === "Close") {
    return error.code === 1000 ?
      new QmpDisconnected({ reason: "Closed" }) :
      new QmpDisconnected({ reason: "Lost", detail: `closed with code ${error.code}` })
  }
  return new QmpDisconnected({ reason: "Lost", detail: causeMessage(error.cause) })
}

/**
 * Starts a session over an open socket. Its fibers live in the scope; closing the scope disconnects.
 *
 * @internal
 */
export const make = (options: Options): Effect.Effect<Session, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { address, events, socket: raw } = options
    const annotations = { module: "QmpClient", address: formatAddress(address) }

    // Batches wait in a plain array, and a doorbell that carries no data wakes the processing fiber.
    // Handed to the fiber through a `Queue` (that is, a taker `Deferred`), every batch was promoted
    // to the old generation with its events, copied on the way, though nothing kept it. One cause,
    // shown in isolation: V8 pretenures the `Deferred`s of a fiber that mostly waits (they survive
    // young collections), and a batch one of them is completed with stays reachable from the old
    // generation until the next full collection. So no object of the Effect runtime holds a batch.
    let waiting: Array<Batch> = []
    const doorbell = new Doorbell()
    const calls = new Calls()
    const greeting = Deferred.unsafeMake<QmpMessage.Greeting, QmpConnectError | QmpNegotiationError>(FiberId.none)
    // `abort` opens as soon as the end is known (it stops writes that wait); `terminated` once the
    // end has been carried out entirely (pending calls settled, listeners ended).
    const abort = Deferred.unsafeMake<void>(FiberId.none)
    const terminated = Deferred.unsafeMake<void>(FiberId.none)

    // The session's state, written only in synchronous blocks (see the module's comment).
    let ended: QmpDisconnected | undefined = undefined
    let established = false
    let runEnded = false

    // The wire tap: on when debug logs are, decided once for the session so that the socket callback
    // pays one boolean check per chunk when it is off.
    const tapWire = LogLevel.lessThanEqual(yield* FiberRef.get(FiberRef.currentMinimumLogLevel), LogLevel.Debug)
    const received = InternalMetrics.eventsReceivedAt(formatAddress(address))

    const reader = new Reader({
      maxMessageBytes: options.maxMessageBytes,
      tapWire,
      highWater,
      lowWater,
      onBatch: (batch) => {
        waiting.push(batch)
        if (waiting.length === 1) doorbell.ring()
      },
      onFatal: () => raw.destroy(),
      pause: () => raw.pause(),
      resume: () => raw.resume()
    })

    const connectFailure = (
      reason: QmpDisconnected,
      error: QmpProtocolError | undefined
    ): QmpConnectError | QmpNegotiationError =>
      error !== undefined ?
        new QmpNegotiationError({ reason: "BadGreeting", detail: error.message }) :
        new QmpConnectError({ address, reason: "Closed", cause: reason.message })

    /** Carries out the end of the connection, once. */
    const terminate = (
      reason: QmpDisconnected,
      error?: QmpProtocolError,
      greetingError?: QmpNegotiationError
    ): Effect.Effect<void> => {
      if (ended !== undefined) return Effect.void
      ended = reason
      reader.stop()
      raw.destroy()
      Deferred.unsafeDone(abort, Exit.void)
      Deferred.unsafeDone(greeting, Exit.fail(greetingError ?? connectFailure(reason, error)))
      // QEMU answers `quit` with SHUTDOWN, the return, and a hang-up that may be seen first.
      const hungUp = error === undefined && (reason.reason === "Closed" || reason.reason === "Lost")
      const failure: CallError = error ?? reason
      calls.settleAll((call) => hungUp && call.sent && call.command === "quit" ? Exit.succeed({}) : Exit.fail(failure))
      return Effect.logDebug("QMP session ended").pipe(
        Effect.annotateLogs("reason", reason.message),
        Effect.zipRight(established ? events.end(reason) : Effect.void),
        Effect.zipRight(Effect.sync(() => Deferred.unsafeDone(terminated, Exit.void)))
      )
    }

    const onGreeting = (message: unknown): Effect.Effect<void> | undefined => {
      const decoded = Schema.decodeUnknownEither(QmpMessage.Greeting)(message)
      if (decoded._tag === "Right") {
        Deferred.unsafeDone(greeting, Exit.succeed(decoded.right))
        return undefined
      }
      const detail = `${explain(QmpMessage.Greeting, message)} in ${render(message)}`
      return terminate(
        new QmpDisconnected({ reason: "ProtocolError", detail: `the greeting is not QMP: ${detail}` }),
        undefined,
        new QmpNegotiationError({ reason: "BadGreeting", detail })
      )
    }

    const onReply = (message: QmpMessage.JsonObject): Effect.Effect<void> | undefined => {
      const call = calls.take(message.id)
      if (call === undefined) {
        // QEMU answers a line it cannot parse with an error without an id: which command it was cannot
        // be known, so, as qemu.qmp does, end the connection rather than let every caller time out.
        if (!Object.hasOwn(message, "id") && Object.hasOwn(message, "error")) {
          const desc = isErrorBody(message.error) ? `${message.error.class}: ${message.error.desc}` : render(message)
          const error = new QmpProtocolError({ reason: "ServerParseError", detail: desc })
          return terminate(new QmpDisconnected({ reason: "ProtocolError", detail: error.message }), error)
        }
        return calls.wasAbandoned(message.id) ?
          Effect.logDebug("Dropped the late reply of a command that timed out or was interrupted").pipe(
            Effect.annotateLogs("reply", render(message))
          ) :
          Effect.logWarning("Dropped a reply that answers no pending command (unknown id)").pipe(
            Effect.annotateLogs("reply", render(message))
          )
      }
      if (Object.hasOwn(message, "return")) {
        Deferred.unsafeDone(call.deferred, Exit.succeed(message.return))
      } else if (Object.hasOwn(message, "error") && isErrorBody(message.error)) {
        Deferred.unsafeDone(
          call.deferred,
          Exit.fail(
            new QmpExecuteError({ command: call.command, errorClass: message.error.class, desc: message.error.desc })
          )
        )
      } else {
        const why = Object.hasOwn(message, "error") ?
          explain(QmpMessage.ErrorResponse, message) :
          "neither \"return\" nor \"error\""
        Deferred.unsafeDone(
          call.deferred,
          Exit.fail(
            new QmpProtocolError({ reason: "MalformedReply", detail: `${call.command}: ${why} in ${render(message)}` })
          )
        )
      }
      return undefined
    }

    const onItem = (item: Item): Effect.Effect<void> | undefined => {
      switch (item._tag) {
        case "Reply":
          return onReply(item.message)
        case "Greeting":
          return onGreeting(item.message)
        case "Oddity":
          if (item.kind === "EventBeforeGreeting") {
            return Effect.logWarning("Dropped an event that came before the greeting").pipe(
              Effect.annotateLogs("event", render(item.message))
            )
          }
          return item.kind === "MalformedEvent" ?
            Effect.logWarning("Dropped a malformed event").pipe(
              Effect.annotateLogs({ detail: explain(QmpMessage.Event, item.message), event: render(item.message) })
            ) :
            Effect.logWarning("Dropped a message of unknown shape").pipe(
              Effect.annotateLogs("message", render(item.message))
            )
        case "Fatal":
          return terminate(
            new QmpDisconnected({ reason: "ProtocolError", detail: item.error.message }),
            item.error
          )
        case "End":
          return terminate(item.reason)
      }
    }

    /**
     * The events of the batches, in one array: the first batch's own array when it holds them all,
     * else a copy (concatenating batch after batch would be quadratic).
     */
    const eventsOf = (batches: ReadonlyArray<Batch>): Array<QmpMessage.QmpEvent> | undefined => {
      let published: Array<QmpMessage.QmpEvent> | undefined
      let owned = false
      for (const batch of batches) {
        if (batch.events.length === 0) continue
        if (published === undefined) {
          published = batch.events
        } else {
          if (!owned) {
            published = published.slice()
            owned = true
          }
          for (const event of batch.events) published.push(event)
        }
      }
      return published
    }

    /** The other items of the batches (replies, oddities, the end), in order, if there are any. */
    const itemsOf = (batches: ReadonlyArray<Batch>): Array<Item> | undefined => {
      let items: Array<Item> | undefined
      for (const batch of batches) {
        for (const item of batch.items) {
          if (items === undefined) items = [item]
          else items.push(item)
        }
      }
      return items
    }

    const tap = (batches: ReadonlyArray<Batch>): Effect.Effect<void> =>
      Effect.forEach(batches, (batch) =>
        batch.wire === undefined || batch.wire === "" ?
          Effect.void :
          Effect.logDebug(`<- ${batch.wire.trimEnd()}`), { discard: true })

    const settle = (items: ReadonlyArray<Item>): Effect.Effect<void> =>
      Effect.gen(function*() {
        for (const item of items) {
          const effect = onItem(item)
          if (effect !== undefined) yield* effect
          if (ended !== undefined) return
        }
      })

    // The processing fiber: the events of the waiting batches first, in one hand-off, then their
    // other items, in order. Plain functions read the batches: an `Effect.gen` per round that captured
    // them got every event promoted too (as above), even once it had finished.
    yield* Effect.gen(function*() {
      while (ended === undefined) {
        // A ring left over from batches taken already costs one empty round.
        if (waiting.length === 0) yield* doorbell.wait
        const batches = waiting
        if (batches.length === 0) continue
        waiting = []
        if (tapWire) yield* tap(batches)
        const published = eventsOf(batches)
        if (published !== undefined) {
          yield* Effect.zipRight(Metric.incrementBy(received, published.length), events.publishAll(published))
        }
        const items = itemsOf(batches)
        if (items !== undefined) yield* settle(items)
        reader.processed(batches.length)
      }
    }).pipe(
      // A defect here is a bug; still, end the session rather than leave calls and listeners waiting.
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause) ? Effect.void : Effect.zipRight(
          Effect.logError("The QMP reader failed; closing the connection", cause),
          terminate(new QmpDisconnected({ reason: "Lost", detail: `internal error: ${Cause.pretty(cause)}` }))
        )
      ),
      Effect.annotateLogs({ ...annotations, fiber: "process" }),
      Effect.forkScoped
    )

    const socket = yield* NodeSocket.fromDuplex(Effect.succeed(raw))
    yield* socket.run(reader.onChunk, {
      // An error or a close before `run` attached its listeners would never end `run`.
      onOpen: Effect.sync(() => {
        if (raw.destroyed) {
          reader.end(new QmpDisconnected({ reason: "Lost", detail: "the socket closed before reading started" }))
        }
      })
    }).pipe(
      Effect.onExit((exit) =>
        Effect.sync(() => {
          runEnded = true
          if (!Exit.isInterrupted(exit)) reader.end(endReason(exit))
        })
      ),
      Effect.annotateLogs({ ...annotations, fiber: "socket" }),
      Effect.forkScoped
    )
    const write = yield* socket.writer

    /** Writes one line, or fails with `QmpDisconnected` if the connection ends first. */
    const writeLine = (line: string, call: Call): Effect.Effect<void, QmpDisconnected> =>
      Effect.suspend(() => {
        if (ended !== undefined) return Effect.fail(ended)
        // While `run` runs, the write goes out at once: `quit` counts as sent.
        call.sent = !runEnded
        const written = Effect.raceFirst(
          Effect.mapError(
            write(line),
            (error) =>
              ended ?? new QmpDisconnected({ reason: "Lost", detail: `write failed: ${causeMessage(error.cause)}` })
          ),
          Effect.flatMap(Deferred.await(abort), () => Effect.fail(ended!))
        )
        return tapWire ? Effect.zipRight(Effect.logDebug(`-> ${line.trimEnd()}`), written) : written
      })

    const call = (
      kind: "execute" | "exec-oob",
      command: string,
      args: QmpMessage.JsonObject | undefined,
      timeout: Duration.Duration | undefined
    ): Effect.Effect<unknown, ExecuteError> =>
      // Opening the call and arranging to forget it happen without a gap for interruption.
      Effect.uninterruptibleMask((restore) =>
        Effect.suspend(() => {
          if (ended !== undefined) return Effect.fail(ended)
          let line: string
          try {
            line = JSON.stringify(
              kind === "execute" ?
                { execute: command, arguments: args } :
                { "exec-oob": command, arguments: args }
            )
          } catch (cause) {
            return Effect.fail(
              new QmpProtocolError({ reason: "InvalidArguments", detail: `${command}: ${causeMessage(cause)}` })
            )
          }
          const call = calls.open(command)
          // The id goes last, into the object's closing brace: no second serialization.
          line = `${line.slice(0, -1)},"id":${JSON.stringify(call.id)}}\n`
          const exchange: Effect.Effect<unknown, ExecuteError> = Effect.zipRight(
            writeLine(line, call),
            Deferred.await(call.deferred)
          )
          return Effect.ensuring(
            restore(
              timeout === undefined || !Duration.isFinite(timeout) ? exchange : Effect.timeoutFail(exchange, {
                duration: timeout,
                onTimeout: () => new QmpTimeoutError({ command, timeout: Duration.format(timeout) })
              })
            ),
            Effect.sync(() => calls.abandon(call))
          )
        })
      )

    const disconnect: Effect.Effect<void> = Effect.suspend(() => {
      if (ended === undefined) reader.end(new QmpDisconnected({ reason: "Disconnected" }))
      return Deferred.await(terminated)
    })

    // Closing the scope disconnects: pending calls fail and listeners end before the fibers stop.
    yield* Effect.addFinalizer(() => Effect.ignore(Effect.timeout(disconnect, Duration.seconds(10))))

    return {
      greeting: Deferred.await(greeting),
      call,
      establish: Effect.sync(() => {
        if (ended !== undefined) return false
        established = true
        return true
      }),
      disconnect,
      closed: Effect.map(Deferred.await(terminated), () => ended!)
    }
  })
