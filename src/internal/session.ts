/**
 * One QMP session over an open socket: the reader in the socket callback, the processing fiber, the
 * calls in flight, and the end of the connection.
 *
 * - The reader (`reader.ts`) turns each chunk into a batch, synchronously; batches wait in a plain
 *   array whose length the reader bounds by pausing the socket, and a doorbell wakes the processing
 *   fiber: at once for anything but events, and for events once the event loop's turn of socket
 *   reads is over (`setImmediate`), so that a reply read in the same turn resumes its caller first.
 * - The processing fiber takes every waiting batch, hands their events to `QmpEvents.publishAll` in
 *   one hand-off and waits for it, then handles their other messages in order: the greeting, the
 *   replies that settle calls. An event that came before a reply is thus in every listener before
 *   that reply's `execute` completes, by construction.
 * - Two shortcuts in the socket callback keep that order with less work: a batch of replies alone
 *   settles its calls there (`settledAtOnce`) when nothing is in hand before it, and a batch of
 *   events alone goes straight to the registry's dispatch fiber (`handedOn`) when the processing
 *   fiber has nothing in hand; a reply read after it then waits in the processing fiber until those
 *   events are delivered (`flushed`).
 * - A call is one `Effect.async`: it writes its line straight to the socket and waits for its reply;
 *   its timeout is a deadline that one keeper fiber watches (`deadlines.ts`).
 * - Every end of the connection (the peer hung up, the socket failed, bad input, `disconnect`)
 *   reaches the processing fiber as an item behind what was read before it, and is carried out there,
 *   once, by `terminate`.
 *
 * The connection's state is one `ConnectionState` (`runstate.ts`), changed only by this module's
 * fibers through its transitions.
 *
 * The same session serves the guest agent (`mode: "agent"`), which speaks QMP without a greeting or
 * events, one command at a time (`GuestAgent.ts` sees to that): its calls of kind `"sync"` write a
 * 0xFF before `guest-sync-delimited` and make the reader drop everything up to the 0xFF the agent
 * sends back; an error without an id is dropped while a sync is pending (the agent's answer to our
 * 0xFF), and otherwise fails the one pending call (the agent could not parse it), instead of ending
 * the connection.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as LogLevel from "effect/LogLevel"
import type * as MetricLabel from "effect/MetricLabel"
import * as Runtime from "effect/Runtime"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
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
import type { Call } from "./calls.js"
import { Calls } from "./calls.js"
import * as Deadlines from "./deadlines.js"
import { causeMessage, render } from "./describe.js"
import { Doorbell } from "./doorbell.js"
import * as InternalMetrics from "./metrics.js"
import type { Batch, Item } from "./reader.js"
import type { Host } from "./reader.js"
import { Reader } from "./reader.js"
import { ConnectionState } from "./runstate.js"
import { shortLivedArray } from "./shortLived.js"
import * as Transport from "./transport.js"

/**
 * How a command is written: `execute`, `exec-oob`, or, for the guest agent, `sync`: 0xFF, then
 * `execute` (of `guest-sync-delimited`), with the reader dropping what comes before the answer's 0xFF.
 *
 * @internal
 */
export type Kind = "execute" | "exec-oob" | "sync"

/**
 * What a session feeds: a `QmpEvents` registry, or what stands in front of one.
 *
 * @internal
 */
export interface EventSink extends Pick<QmpEvents.Service, "publishAll" | "end"> {
  /**
   * Hands `events` on at once, behind everything handed on before, without a fiber: `delivered`
   * runs once they are in every listener. `false` if it cannot now (the session then publishes them
   * from its processing fiber).
   */
  offerAll?(events: ReadonlyArray<QmpMessage.QmpEvent>, delivered: () => void): boolean
}

/** @internal */
export interface Options {
  readonly address: QmpAddress
  readonly socket: Net.Socket
  /** Where events go; the guest agent sends none (any that came would be logged and dropped). */
  readonly events: EventSink | undefined
  readonly maxMessageBytes: number
  /** QEMU's monitor (the default), or the guest agent: no greeting, no events, resynchronised by 0xFF. */
  readonly mode?: "qmp" | "agent" | undefined
  /** Whether the end of an established session ends `events` too (`QmpClient`'s `endRegistry`): `true` by default. */
  readonly endRegistry?: boolean | undefined
  /** Tags added to the connection's metrics, after its `address`. */
  readonly metricTags?: ReadonlyArray<MetricLabel.MetricLabel> | undefined
  /** Runs once an established session has ended, last, in the fiber that ended it. */
  readonly onEnd?: ((reason: QmpDisconnected) => Effect.Effect<void>) | undefined
}

/** The guest agent's resynchronisation command, and the byte written before it. */
const syncCommand = "guest-sync-delimited"
const sentinel = Buffer.from([0xff])

/** Events waiting at which the processing fiber is woken at once rather than by `setImmediate`. */
const wakeAt = 1024

/** Unprocessed batches above which reading pauses, and at or below which it resumes. */
const highWater = 16
const lowWater = 4

const isErrorBody = (u: unknown): u is { readonly class: string; readonly desc: string } =>
  QmpMessage.isJsonObject(u) && Object.hasOwn(u, "class") && typeof u.class === "string" &&
  Object.hasOwn(u, "desc") && typeof u.desc === "string"

/** Why a value does not decode with `schema`, for a message (it does not, or we would not ask). */
const explain = <A, I>(schema: Schema.Schema<A, I>, u: unknown): string => QmpMessage.explain(schema, u) ?? ""

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

/** The other items of the batches (messages, the end), in order, if there are any. */
const itemsOf = (batches: ReadonlyArray<Batch>): Array<Item> | undefined => {
  let items: Array<Item> | undefined
  for (const batch of batches) {
    for (const item of batch.items) {
      if (items === undefined) items = Array.of(item)
      else items.push(item)
    }
  }
  return items
}

/**
 * Starts a session over an open socket. Its fibers live in the scope; closing the scope disconnects.
 *
 * @internal
 */
export const make = (options: Options): Effect.Effect<Session, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    // The wire tap: on when debug logs are, decided once for the session, so that the socket callback
    // pays one boolean check per chunk when it is off.
    const tapWire = LogLevel.lessThanEqual(yield* FiberRef.get(FiberRef.currentMinimumLogLevel), LogLevel.Debug)
    const session: Session = new Session(options, tapWire, yield* ConnectionState.make)
    // The agent never greets: its session starts where a QMP one starts negotiating.
    if (session.agent) yield* session.state.greeted
    session.deadlines = yield* Deadlines.make<Call>((deadline) => session.expire(deadline))
    // Run with this fiber's runtime, as `forkScoped` would fork it, but with no parent: a forked
    // fiber keeps its parent (here the fiber that connects, done once connected) reachable for as
    // long as it runs itself, a thousand finished fibers for a fleet's thousand connections.
    const processor = Runtime.runFork(yield* Effect.runtime<never>())(session.processing)
    yield* Scope.addFinalizer(
      scope,
      // Not from the fiber itself (it would wait for its own end), as `forkScoped`'s finalizer.
      Effect.fiberIdWith((id) => Equal.equals(id, processor.id()) ? Effect.void : Fiber.interrupt(processor))
    )
    yield* Transport.attach(options.socket, session.reader)
    // Closing the scope disconnects: pending calls fail and listeners end before the fibers stop.
    // (`Scope.addFinalizer`, not `Effect.addFinalizer`, which keeps a copy of this fiber's refs.)
    yield* Scope.addFinalizer(scope, Effect.ignore(Effect.timeout(session.disconnect, Duration.seconds(10))))
    return session
  })

/**
 * One session. Its state is in fields and its steps are methods, shared by every session: a fleet
 * holds a thousand idle ones, and a session made of closures cost each its own.
 *
 * @internal
 */
export class Session implements Host {
  readonly address: QmpAddress
  readonly agent: boolean
  readonly reader: Reader
  readonly calls: Calls
  /** Set by `make`, before the first call. */
  deadlines: Deadlines.Deadlines<Call> = undefined!
  private readonly raw: Net.Socket
  private readonly events: EventSink | undefined
  private readonly label: string
  private readonly commandsPending: InternalMetrics.UntaggedCounter
  private readonly greeted = Deferred.unsafeMake<QmpMessage.Greeting, QmpConnectError | QmpNegotiationError>(
    FiberId.none
  )
  // Batches wait in a plain array, and a doorbell that carries no data wakes the processing fiber:
  // no object of the Effect runtime ever holds a batch. (A `Deferred` completed with a batch keeps
  // it reachable from V8's old generation; README, "Design notes".)
  private waiting = shortLivedArray<Batch>()
  /** The events of the waiting batches. */
  private waitingEvents = 0
  /** The processing fiber has batches in hand. */
  private busy = false
  /** Batches handed to the sink at once and not delivered yet. */
  private handedOnBatches = 0
  /** The processing fiber waits for them (`flushed`). */
  private flushing = false
  private readonly doorbell = new Doorbell()
  // Made with the first events: an idle connection (most of a fleet's) holds no `Metric` for them.
  private received: InternalMetrics.UntaggedCounter | undefined = undefined

  constructor(
    private readonly options: Options,
    private readonly tapWire: boolean,
    readonly state: ConnectionState
  ) {
    this.address = options.address
    this.raw = options.socket
    this.events = options.events
    this.agent = options.mode === "agent"
    this.label = formatAddress(options.address)
    this.commandsPending = InternalMetrics.commandsPendingAt(this.label, options.metricTags)
    this.calls = new Calls(this)
    this.reader = new Reader({
      maxMessageBytes: options.maxMessageBytes,
      framing: this.agent ? "agent" : "auto",
      tapWire,
      highWater,
      lowWater
    }, this)
  }

  /** The greeting, once it has arrived and been checked. */
  get greeting(): Effect.Effect<QmpMessage.Greeting, QmpConnectError | QmpNegotiationError> {
    return Deferred.await(this.greeted)
  }

  /**
   * Negotiation succeeded: the session runs, and from now on its end ends the `QmpEvents` registry
   * too. `false` if the connection has ended already.
   */
  get establish(): Effect.Effect<boolean> {
    return this.state.run
  }

  get disconnect(): Effect.Effect<void> {
    return Effect.suspend(() => this.abort(new QmpDisconnected({ reason: "Disconnected" })))
  }

  /** Ends the connection for `reason` (`disconnect` is `Disconnected`), and returns once that is done. */
  abort(reason: QmpDisconnected): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.state.ended === undefined) this.reader.end(reason)
      return Effect.asVoid(this.state.closed)
    })
  }

  // The reader's host: batches wait for the processing fiber, which the first one wakes.

  onBatch(batch: Batch): void {
    if (!this.tapWire && this.settledAtOnce(batch)) return this.reader.processed(1)
    if (this.handedOn(batch)) return
    this.waiting.push(batch)
    this.waitingEvents += batch.events.length
    // Events alone wake the processing fiber once every socket read in this turn of the event loop
    // has been handed on: a reply read meanwhile (another connection's, or this one's, settled in
    // the socket callback) resumes its caller first, rather than after the events of every busy
    // VM. Many events, or anything else, wake it at once.
    if (batch.items.length === 0 && this.waitingEvents < wakeAt) {
      if (this.waiting.length === 1) this.doorbell.ringSoon()
    } else if (this.waiting.length === 1 || this.doorbell.ringingSoon) {
      this.doorbell.ring()
    }
  }

  /**
   * In the socket callback: hands a batch of events alone straight to the sink, when the processing
   * fiber has nothing in hand (no batch waiting, none being processed), so that no batch of this
   * connection can come between. A reply read later waits until these events are delivered (see
   * `processing`), so the order is the one the processing fiber would keep, two fiber hops sooner.
   */
  private handedOn(batch: Batch): boolean {
    const events = this.events
    if (
      this.tapWire || batch.items.length > 0 || this.waiting.length > 0 || this.busy || events === undefined ||
      events.offerAll === undefined || !this.state.accepting || this.state.awaitingGreeting
    ) {
      return false
    }
    if (!events.offerAll(batch.events, this.delivered)) return false
    this.handedOnBatches++
    this.countReceived(batch.events.length)
    return true
  }

  /** Adds to `qmp_events_received` (its counter made with the first events). */
  private countReceived(count: number): void {
    ;(this.received ??= InternalMetrics.eventsReceivedAt(this.label, this.options.metricTags)).update(count)
  }

  /** A batch handed on at once is delivered. */
  private readonly delivered = (): void => {
    this.handedOnBatches--
    this.reader.processed(1)
    if (this.handedOnBatches === 0 && this.flushing) {
      this.flushing = false
      this.doorbell.ring()
    }
  }

  /** Waits until every batch handed on at once is delivered. */
  private get flushed(): Effect.Effect<void> {
    return Effect.gen(this, function*() {
      while (this.handedOnBatches > 0) {
        this.flushing = true
        yield* this.doorbell.wait
      }
    })
  }

  onFatal(): void {
    this.raw.destroy()
  }

  pause(): void {
    this.raw.pause()
  }

  resume(): void {
    this.raw.resume()
  }

  /** A call is closed (settled or abandoned): its deadline goes. */
  onClose(call: Call): void {
    if (call.deadline !== undefined) this.deadlines.remove(call.deadline)
    this.commandsPending.update(-1)
  }

  /** A call's deadline passed. */
  expire({ item: call, timeout }: Deadlines.Deadline<Call>): void {
    if (this.calls.abandon(call)) {
      call.resume(Exit.fail(new QmpTimeoutError({ command: call.command, timeout: Duration.format(timeout) })))
    }
  }

  private connectFailure(
    reason: QmpDisconnected,
    error: QmpProtocolError | undefined
  ): QmpConnectError | QmpNegotiationError {
    return error !== undefined ?
      new QmpNegotiationError({ reason: "BadGreeting", detail: error.message }) :
      new QmpConnectError({ address: this.address, reason: "Closed", cause: reason.message })
  }

  /** Carries out the end of the connection, once: calls settled, then listeners ended. */
  private terminate(
    reason: QmpDisconnected,
    error?: QmpProtocolError,
    greetingError?: QmpNegotiationError
  ): Effect.Effect<void> {
    return Effect.flatMap(this.state.disconnecting(reason), (left) => {
      if (left === undefined) return Effect.void
      const { events, options } = this
      this.reader.stop()
      this.raw.destroy()
      Deferred.unsafeDone(this.greeted, Exit.fail(greetingError ?? this.connectFailure(reason, error)))
      // QEMU answers `quit` with SHUTDOWN, the return, and a hang-up that may be seen first.
      const hungUp = error === undefined && (reason.reason === "Closed" || reason.reason === "Lost")
      const failure = error ?? reason
      this.calls.settleAll((call) =>
        hungUp && call.sent && call.command === "quit" ? Exit.succeed({}) : Exit.fail(failure)
      )
      return Effect.logDebug("QMP session ended").pipe(
        Effect.annotateLogs("reason", reason.message),
        Effect.zipRight(
          left._tag === "Running" && events !== undefined && (options.endRegistry ?? true) ?
            events.end(reason) :
            Effect.void
        ),
        Effect.zipRight(this.state.disconnected),
        Effect.zipRight(left._tag === "Running" && options.onEnd !== undefined ? options.onEnd(reason) : Effect.void)
      )
    })
  }

  private onGreeting(message: QmpMessage.JsonObject): Effect.Effect<void> {
    // Decoding changes nothing: the transition runs with the returned effect.
    const decoded = Schema.decodeUnknownEither(QmpMessage.Greeting)(message)
    if (decoded._tag === "Right") {
      return Effect.zipRight(this.state.greeted, Deferred.succeed(this.greeted, decoded.right))
    }
    const detail = `it sent ${render(message)} (${explain(QmpMessage.Greeting, message)})`
    return this.terminate(
      new QmpDisconnected({ reason: "ProtocolError", detail: `the greeting is not QMP: ${detail}` }),
      undefined,
      new QmpNegotiationError({ reason: "BadGreeting", detail })
    )
  }

  /** Settles a call with its reply: `false` if the reply is neither a `return` nor a QMP `error`. */
  private settleReply(call: Call, message: QmpMessage.JsonObject): boolean {
    if (Object.hasOwn(message, "return")) {
      this.calls.settle(call, Exit.succeed(message.return))
      return true
    }
    if (Object.hasOwn(message, "error") && isErrorBody(message.error)) {
      this.calls.settle(
        call,
        Exit.fail(
          new QmpExecuteError({ command: call.command, errorClass: message.error.class, desc: message.error.desc })
        )
      )
      return true
    }
    return false
  }

  /**
   * In the socket callback: settles the replies of a batch that holds nothing else, when every
   * batch before it has been processed and each reply settles a pending call. Nothing can then come
   * between them and their callers (no event before them, no earlier item), so this keeps the order
   * the processing fiber would, one fiber hop sooner. `false` leaves the batch to the processing
   * fiber.
   */
  private settledAtOnce(batch: Batch): boolean {
    // This batch is the only one handed on and not processed: the processing fiber is idle.
    if (
      this.reader.unprocessed > 1 || batch.events.length > 0 || batch.items.length === 0 || !this.state.accepting
    ) {
      return false
    }
    for (const item of batch.items) {
      if (item._tag !== "Message" || item.kind !== "Reply" || !this.calls.has(item.message.id)) return false
      const message = item.message
      if (!Object.hasOwn(message, "return") && !(Object.hasOwn(message, "error") && isErrorBody(message.error))) {
        return false
      }
    }
    for (const item of batch.items) {
      const message = (item as Extract<Item, { readonly _tag: "Message" }>).message
      this.settleReply(this.calls.take(message.id)!, message)
    }
    return true
  }

  /** Settles the call a reply answers, when it runs; or says what is wrong with the reply. */
  private onReply(message: QmpMessage.JsonObject): Effect.Effect<void> {
    return Effect.suspend(() => {
      const call = this.calls.take(message.id)
      if (call === undefined) {
        if (this.agent && !Object.hasOwn(message, "id") && Object.hasOwn(message, "error")) {
          return this.onAgentError(message)
        }
        // QEMU answers a line it cannot parse with an error without an id: which command it was cannot
        // be known, so, as qemu.qmp does, end the connection rather than let every caller time out.
        if (!Object.hasOwn(message, "id") && Object.hasOwn(message, "error")) {
          const desc = isErrorBody(message.error) ? `${message.error.class}: ${message.error.desc}` : render(message)
          const error = new QmpProtocolError({ reason: "ServerParseError", detail: desc })
          return this.terminate(new QmpDisconnected({ reason: "ProtocolError", detail: error.message }), error)
        }
        return this.calls.wasAbandoned(message.id) ?
          Effect.logDebug("Dropped the late reply of a command that timed out or was interrupted").pipe(
            Effect.annotateLogs("reply", render(message))
          ) :
          Effect.logWarning("Dropped a reply that answers no pending command (unknown id)").pipe(
            Effect.annotateLogs("reply", render(message))
          )
      }
      if (!this.settleReply(call, message)) {
        const why = Object.hasOwn(message, "error") ?
          explain(QmpMessage.ErrorResponse, message) :
          "neither \"return\" nor \"error\""
        this.calls.settle(
          call,
          Exit.fail(
            new QmpProtocolError({
              reason: "MalformedReply",
              detail: `${call.command}: ${why} in ${render(message)}`
            })
          )
        )
      }
      return Effect.void
    })
  }

  /**
   * The agent's error without an id: its answer to the 0xFF of a sync (dropped), or to a command it
   * could not parse, which is the one pending (the agent runs one at a time).
   */
  private onAgentError(message: QmpMessage.JsonObject): Effect.Effect<void> {
    const pending = Array.from(this.calls.values())
    if (pending.some((call) => call.command === syncCommand) || pending.length !== 1) {
      return Effect.logDebug("Dropped the guest agent's error without an id (its answer to a resync)").pipe(
        Effect.annotateLogs("reply", render(message))
      )
    }
    const desc = isErrorBody(message.error) ? `${message.error.class}: ${message.error.desc}` : render(message)
    const call = this.calls.take(pending[0].id)!
    this.calls.settle(call, Exit.fail(new QmpProtocolError({ reason: "ServerParseError", detail: desc })))
    return Effect.void
  }

  private onItem(item: Item): Effect.Effect<void> {
    switch (item._tag) {
      case "Message":
        // The first message of a connection is its greeting, whatever its shape.
        if (this.state.awaitingGreeting) return this.onGreeting(item.message)
        switch (item.kind) {
          case "Reply":
            return this.onReply(item.message)
          case "MalformedEvent":
            return Effect.logWarning("Dropped a malformed event").pipe(
              Effect.annotateLogs({ detail: explain(QmpMessage.Event, item.message), event: render(item.message) })
            )
          case "Other":
            return Effect.logWarning("Dropped a message of unknown shape").pipe(
              Effect.annotateLogs("message", render(item.message))
            )
        }
      // falls through: the switch above returns in every case
      case "Fatal":
        return this.terminate(
          new QmpDisconnected({ reason: "ProtocolError", detail: item.error.message }),
          item.error,
          // What the server sent in place of a greeting, named.
          this.state.awaitingGreeting && item.seen !== undefined ?
            new QmpNegotiationError({ reason: "BadGreeting", detail: `it sent ${item.seen}` }) :
            undefined
        )
      case "End":
        return this.terminate(item.reason)
    }
  }

  /**
   * Events that came before the greeting are not this session's (seen once in a loaded test run);
   * the guest agent sends none.
   */
  private dropBeforeGreeting(published: ReadonlyArray<QmpMessage.QmpEvent>): Effect.Effect<void> {
    const message = this.agent
      ? "Dropped an event from the guest agent, which sends none"
      : "Dropped an event that came before the greeting"
    return Effect.forEach(
      published,
      (event) => Effect.logWarning(message).pipe(Effect.annotateLogs("event", render(event))),
      { discard: true }
    )
  }

  private handleItems(items: ReadonlyArray<Item>): Effect.Effect<void> {
    return Effect.gen(this, function*() {
      for (const item of items) {
        yield* this.onItem(item)
        if (this.state.ended !== undefined) return
      }
    })
  }

  /**
   * The processing fiber: the events of the waiting batches first, in one hand-off, then their
   * other items, in order. Plain functions read the batches, and no Effect captures them, for the
   * reason above.
   */
  get processing(): Effect.Effect<void> {
    return Effect.gen(this, function*() {
      while (this.state.ended === undefined) {
        // A ring left over from batches taken already costs one empty round.
        if (this.waiting.length === 0) yield* this.doorbell.wait
        else yield* this.processWaiting
      }
    }).pipe(
      // A defect here is a bug; still, end the session rather than leave calls and listeners waiting.
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause) ? Effect.void : Effect.zipRight(
          Effect.logError("The QMP reader failed; closing the connection", cause),
          this.terminate(new QmpDisconnected({ reason: "Lost", detail: `internal error: ${Cause.pretty(cause)}` }))
        )
      ),
      Effect.annotateLogs({
        module: this.agent ? "GuestAgent" : "QmpClient",
        address: this.label,
        fiber: "process"
      })
    )
  }

  /**
   * One round of the processing fiber: takes the waiting batches and carries them out, in a generator
   * of its own. The loop's generator keeps its locals while it waits, and an idle connection must not
   * hold its last batches (and the messages in them) for as long as it stays idle.
   */
  private get processWaiting(): Effect.Effect<void> {
    return Effect.gen(this, function*() {
      const { events, state } = this
      const batches = this.waiting
      this.waiting = shortLivedArray()
      this.waitingEvents = 0
      this.doorbell.cancelSoon()
      this.busy = true
      if (this.tapWire) yield* tap(batches)
      const published = eventsOf(batches)
      if (published !== undefined) {
        if (state.awaitingGreeting || events === undefined) {
          yield* this.dropBeforeGreeting(published)
        } else {
          this.countReceived(published.length)
          yield* events.publishAll(published)
        }
      }
      const items = itemsOf(batches)
      if (items !== undefined) {
        // Events handed on at once before these items are in every listener first.
        if (published === undefined) yield* this.flushed
        yield* this.handleItems(items)
      }
      this.busy = false
      this.reader.processed(batches.length)
    })
  }

  /**
   * Opens a call, gives it its deadline and writes its line, in one synchronous block; its reply (or
   * the end of the connection, or its deadline) resumes the caller.
   */
  private start(
    resume: Call["resume"],
    kind: Kind,
    id: string,
    line: string,
    command: string,
    timeout: Duration.Duration | undefined
  ): void {
    const ended = this.state.ended
    if (ended !== undefined) return resume(Exit.fail(ended))
    const call = this.calls.open(id, command, resume)
    this.commandsPending.update(1)
    if (timeout !== undefined && Duration.isFinite(timeout)) call.deadline = this.deadlines.add(timeout, call)
    if (kind === "sync") {
      // From here on, everything up to the agent's 0xFF is stale; the 0xFF we send ends whatever
      // partial input the agent holds (from us, or from a client before us).
      this.reader.resync()
      Transport.writeBytes(this.raw, sentinel)
    }
    call.sent = Transport.write(this.raw, line)
  }

  /**
   * A command's exchange is one `Effect.async`, with no canceller: a caller interrupted meanwhile
   * leaves the call to its reply or its deadline, which then resume nobody (a canceller costs more
   * allocation than the rest of the call).
   */
  call(
    kind: Kind,
    command: string,
    args: QmpMessage.JsonObject | undefined,
    timeout: Duration.Duration | undefined
  ): Effect.Effect<unknown, ExecuteError> {
    if (!this.tapWire) {
      return Effect.async<unknown, ExecuteError>((resume) => {
        const id = this.calls.nextId()
        const line = serialize(kind, command, args, id)
        if (typeof line !== "string") return resume(Exit.fail(line))
        this.start(resume, kind, id, line, command, timeout)
      })
    }
    // With the wire tap, the line is logged from the caller's fiber before it is written.
    return Effect.suspend(() => {
      const id = this.calls.nextId()
      const line = serialize(kind, command, args, id)
      if (typeof line !== "string") return Effect.fail(line)
      return Effect.zipRight(
        Effect.logDebug(`-> ${line.trimEnd()}`),
        Effect.async<unknown, ExecuteError>((resume) => this.start(resume, kind, id, line, command, timeout))
      )
    })
  }
}

/** Logs the text of each batch read (the debug wire tap). */
const tap = (batches: ReadonlyArray<Batch>): Effect.Effect<void> =>
  Effect.forEach(batches, (batch) =>
    batch.wire === undefined || batch.wire === "" ?
      Effect.void :
      Effect.logDebug(`<- ${batch.wire.trimEnd()}`), { discard: true })

/** The command's line, its id last (in the object's closing brace: one serialization), or why not. */
const serialize = (
  kind: Kind,
  command: string,
  args: QmpMessage.JsonObject | undefined,
  id: string
): string | QmpProtocolError => {
  try {
    const json = JSON.stringify(
      kind === "exec-oob" ? { "exec-oob": command, arguments: args } : { execute: command, arguments: args }
    )
    return `${json.slice(0, -1)},"id":${JSON.stringify(id)}}\n`
  } catch (cause) {
    return new QmpProtocolError({ reason: "InvalidArguments", detail: `${command}: ${causeMessage(cause)}` })
  }
}
