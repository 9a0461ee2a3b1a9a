/**
 * The errors of effect-qmp. Each is a tagged class (`_tag`) with a `reason` to branch on and a
 * `message` a person can act on. They are `Schema.TaggedError`s, so that the command-line tool can
 * print them and they survive a trip through JSON. Every one of them carries `TypeId`: `isQmpError`
 * tells an error of this library from any other, and `QmpError` is their union.
 *
 * @since 0.1.0
 */
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import { causeMessage } from "./internal/describe.js"
import { format as formatAddress, QmpAddress } from "./QmpAddress.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-qmp/QmpError")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * `true` for any error this library raises.
 *
 * @since 0.1.0
 * @category guards
 */
export const isQmpError = (u: unknown): u is QmpError => Predicate.hasProperty(u, TypeId)

/**
 * The connection could not be made: nothing listens at the address, it refused, it did not answer
 * within `connectTimeout`, or it did not greet (QEMU serves one client per QMP socket, and a second
 * client gets no greeting until the first leaves); for the guest agent, it did not answer
 * `guest-sync-delimited` (`NoSync`: no agent runs in the guest, or it is busy).
 *
 * @since 0.1.0
 * @category errors
 */
export class QmpConnectError extends Schema.TaggedError<QmpConnectError>("effect-qmp/QmpConnectError")(
  "QmpConnectError",
  {
    address: QmpAddress,
    reason: Schema.Literal("NotFound", "Refused", "Timeout", "NoGreeting", "NoSync", "Closed", "Unknown"),
    cause: Schema.optional(Schema.Defect)
  }
) {
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    const where = formatAddress(this.address)
    switch (this.reason) {
      case "NotFound":
        return `Cannot connect to QMP at ${where}: no such socket (is QEMU running with -qmp on that path?)`
      case "Refused":
        return `Cannot connect to QMP at ${where}: connection refused (nothing is listening there)`
      case "Timeout":
        return `Cannot connect to QMP at ${where}: no answer within the connect timeout`
      case "NoGreeting":
        return `Connected to ${where} but QEMU sent no greeting within the connect timeout: ` +
          `another client probably holds this QMP socket (QEMU serves one client per socket), ` +
          `or it is a guest agent's socket (the agent never greets: use GuestAgent, or qmp --agent)`
      case "NoSync":
        return `Connected to ${where} but the guest agent did not answer guest-sync-delimited within the ` +
          `connect timeout: is qemu-ga running in the guest (and is this its socket)?`
      case "Closed":
        return `Connected to ${where} but the server closed the connection before greeting`
      case "Unknown":
        return `Cannot connect to QMP at ${where}: ${causeMessage(this.cause)}`
    }
  }
}

/**
 * A `QmpFleet` could not tell where a VM's QMP socket is: its `resolve` failed (the `cause`), or
 * gave something that is not a `QmpAddress`.
 *
 * @since 0.1.0
 * @category errors
 */
export class QmpResolveError extends Schema.TaggedError<QmpResolveError>("effect-qmp/QmpResolveError")(
  "QmpResolveError",
  {
    vm: Schema.String,
    cause: Schema.optional(Schema.Defect)
  }
) {
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    return `Cannot tell where the QMP socket of VM ${JSON.stringify(this.vm)} is: ${causeMessage(this.cause)}`
  }
}

/**
 * The server is not a QMP server we can talk to: its greeting is not QMP, or it refused
 * `qmp_capabilities`.
 *
 * @since 0.1.0
 * @category errors
 */
export class QmpNegotiationError
  extends Schema.TaggedError<QmpNegotiationError>("effect-qmp/QmpNegotiationError")("QmpNegotiationError", {
    reason: Schema.Literal("BadGreeting", "Refused", "IncompatibleSchema"),
    detail: Schema.String
  })
{
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    switch (this.reason) {
      case "BadGreeting":
        return `The server's first message is not a QMP greeting: ${this.detail}`
      case "Refused":
        return `The server refused capability negotiation: ${this.detail}`
      case "IncompatibleSchema":
        return `The running QEMU's schema is not what the client was asked to expect: ${this.detail}`
    }
  }
}

/**
 * QEMU refused a command: its error class (`GenericError`, `CommandNotFound`, `DeviceNotFound`, ...)
 * and its description. The connection is still usable.
 *
 * @since 0.1.0
 * @category errors
 */
export class QmpExecuteError extends Schema.TaggedError<QmpExecuteError>("effect-qmp/QmpExecuteError")(
  "QmpExecuteError",
  {
    command: Schema.String,
    errorClass: Schema.String,
    desc: Schema.String
  }
) {
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    return `${this.command}: ${this.errorClass}: ${this.desc}`
  }
}

/**
 * A command got no reply within its timeout. QEMU may still run it: never replay it blindly. Its late
 * reply, if any, is dropped.
 *
 * @since 0.1.0
 * @category errors
 */
export class QmpTimeoutError extends Schema.TaggedError<QmpTimeoutError>("effect-qmp/QmpTimeoutError")(
  "QmpTimeoutError",
  {
    command: Schema.String,
    timeout: Schema.String
  }
) {
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    return `${this.command}: no reply within ${this.timeout}; QEMU may still complete it`
  }
}

/**
 * The server sent something that is not QMP. Fatal reasons end the connection (`NotJson`,
 * `NotObject`, `MessageTooLarge`, and `ServerParseError`: an error reply without an id, which QEMU
 * sends when it cannot parse a command); `MalformedReply` fails only the call whose id it carries;
 * `UnexpectedReturn`, only a typed call whose return does not match the command's generated Schema
 * (the connection goes on).
 * `InvalidArguments`: a command's arguments cannot be written as JSON (a BigInt, a cycle); it was
 * not sent.
 *
 * @since 0.1.0
 * @category errors
 */
export class QmpProtocolError extends Schema.TaggedError<QmpProtocolError>("effect-qmp/QmpProtocolError")(
  "QmpProtocolError",
  {
    reason: Schema.Literal(
      "NotJson",
      "NotObject",
      "MessageTooLarge",
      "MalformedReply",
      "ServerParseError",
      "InvalidArguments",
      "UnexpectedReturn"
    ),
    detail: Schema.String
  }
) {
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    switch (this.reason) {
      case "NotJson":
        return `QMP protocol error: a line is not JSON (${this.detail}); the connection was closed`
      case "NotObject":
        return `QMP protocol error: a message is not a JSON object (${this.detail}); the connection was closed`
      case "MessageTooLarge":
        return `QMP protocol error: a message is larger than maxMessageBytes (${this.detail}); ` +
          `the connection was closed`
      case "MalformedReply":
        return `QMP protocol error: malformed reply (${this.detail})`
      case "ServerParseError":
        return `QEMU could not parse a command and answered without an id (${this.detail}); ` +
          `no pending command can be told apart from it, so the connection was closed`
      case "InvalidArguments":
        return `QMP protocol error: the command cannot be written as JSON (${this.detail}); it was not sent`
      case "UnexpectedReturn":
        return `QMP protocol error: the return does not match the command's schema: ${this.detail}; ` +
          `executeUnknown gives it as it is`
    }
  }
}

/**
 * The connection ended: no more events will come and pending commands have an unknown fate.
 * `Unresponsive`: the client closed it because QEMU did not answer a liveness ping in time (a
 * `QmpFleet` with `ping` on).
 *
 * @since 0.1.0
 * @category errors
 */
export class QmpDisconnected extends Schema.TaggedError<QmpDisconnected>("effect-qmp/QmpDisconnected")(
  "QmpDisconnected",
  {
    reason: Schema.Literal("Closed", "Lost", "Disconnected", "ProtocolError", "Ended", "Unresponsive"),
    detail: Schema.optional(Schema.String)
  }
) {
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    const detail = this.detail === undefined ? "" : `: ${this.detail}`
    switch (this.reason) {
      case "Closed":
        return `QMP connection closed by the server${detail}`
      case "Lost":
        return `QMP connection lost${detail}`
      case "Disconnected":
        return `QMP connection closed by this client${detail}`
      case "ProtocolError":
        return `QMP connection ended after a protocol error${detail}`
      case "Ended":
        return `The event source has ended${detail}`
      case "Unresponsive":
        return `QMP connection closed by this client: QEMU did not answer a liveness ping${detail}`
    }
  }
}

/**
 * A listener could not be registered or removed, or it is closed because its filter threw.
 *
 * @since 0.1.0
 * @category errors
 */
export class ListenerError extends Schema.TaggedError<ListenerError>("effect-qmp/ListenerError")("ListenerError", {
  reason: Schema.Literal("AlreadyRegistered", "NotRegistered", "DefaultListener", "FilterFailed"),
  cause: Schema.optional(Schema.Defect)
}) {
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    switch (this.reason) {
      case "AlreadyRegistered":
        return "This listener is already registered"
      case "NotRegistered":
        return "This listener is not registered"
      case "DefaultListener":
        return "The default listener (QmpEvents.events) cannot be removed"
      case "FilterFailed":
        return `The listener's filter threw (${causeMessage(this.cause)}); ` +
          `the listener is closed until it is removed and registered again`
    }
  }
}

/**
 * Why a listener can give no more events: the connection ended, or its filter threw.
 *
 * @since 0.1.0
 * @category errors
 */
export type ListenerClosed = QmpDisconnected | ListenerError

/**
 * QEMU could not be started or stopped: the binary is missing, or QEMU exited early (bad arguments).
 *
 * @since 0.1.0
 * @category errors
 */
export class QemuProcessError extends Schema.TaggedError<QemuProcessError>("effect-qmp/QemuProcessError")(
  "QemuProcessError",
  {
    reason: Schema.Literal("NotFound", "ExitedEarly", "SpawnFailed", "NoSocket"),
    detail: Schema.String,
    stderr: Schema.String
  }
) {
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    const stderr = this.stderr.trim() === "" ? "" : `\nQEMU said: ${this.stderr.trim()}`
    switch (this.reason) {
      case "NotFound":
        return `QEMU was not found (${this.detail}); install it, e.g. apt-get install qemu-system-x86${stderr}`
      case "ExitedEarly":
        return `QEMU exited before its QMP socket was ready (${this.detail})${stderr}`
      case "SpawnFailed":
        return `QEMU could not be started (${this.detail})${stderr}`
      case "NoSocket":
        return `QEMU's QMP socket did not appear (${this.detail})${stderr}`
    }
  }
}

/**
 * A job ended without doing its work: QEMU aborted it on an error (`reason` "Error", with QEMU's
 * text in `error`: `Input/output error`, `Image is not in qcow2 format`, ...), or it was cancelled
 * (`reason` "Cancelled", told by BLOCK_JOB_CANCELLED). `type` is QEMU's job type (`backup`,
 * `mirror`, `create`, ...).
 *
 * @since 0.1.0
 * @category errors
 */
export class JobFailed extends Schema.TaggedError<JobFailed>("effect-qmp/JobFailed")("JobFailed", {
  id: Schema.String,
  type: Schema.String,
  reason: Schema.Literal("Error", "Cancelled"),
  error: Schema.optional(Schema.String)
}) {
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    const job = `Job '${this.id}' (${this.type})`
    switch (this.reason) {
      case "Error":
        return `${job} failed: ${this.error ?? "QEMU gave no reason"}`
      case "Cancelled":
        return `${job} was cancelled${this.error === undefined ? "" : ` (${this.error})`}`
    }
  }
}

/**
 * QEMU has no job of this id: `query-jobs` does not list it, and no event of it came.
 *
 * @since 0.1.0
 * @category errors
 */
export class JobNotFound extends Schema.TaggedError<JobNotFound>("effect-qmp/JobNotFound")("JobNotFound", {
  id: Schema.String
}) {
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    return `QEMU has no job '${this.id}' (query-jobs does not list it)`
  }
}

/**
 * How a command can fail: QEMU refused it (`QmpExecuteError`), no reply came in time
 * (`QmpTimeoutError`: QEMU may still run it, never replay it blindly), the reply or the input was
 * not QMP (`QmpProtocolError`), or the connection ended and the command's fate is unknown
 * (`QmpDisconnected`).
 *
 * @since 0.1.0
 * @category models
 */
export type ExecuteError = QmpExecuteError | QmpTimeoutError | QmpProtocolError | QmpDisconnected

/**
 * Every error this library raises.
 *
 * @since 0.1.0
 * @category models
 */
export type QmpError =
  | QmpConnectError
  | QmpResolveError
  | QmpNegotiationError
  | QmpExecuteError
  | QmpTimeoutError
  | QmpProtocolError
  | QmpDisconnected
  | ListenerError
  | QemuProcessError
  | JobFailed
  | JobNotFound
