/**
 * effect-qmp: an Effect-TS client for the QEMU Machine Protocol.
 *
 * @since 0.1.0
 */

/**
 * The wire schemas of QMP and the fast event guard.
 *
 * @since 0.1.0
 */
export * as QmpMessage from "./QmpMessage.js"

/**
 * Where a QMP server listens: Unix socket or TCP, formatting, parsing, `Config`.
 *
 * @since 0.1.0
 */
export * as QmpAddress from "./QmpAddress.js"

/**
 * The tagged errors.
 *
 * @since 0.1.0
 */
export * as QmpError from "./QmpError.js"

/**
 * What QEMU's own schema says, as Schemas: the introspection reply, the shape of a generated
 * module, and the open enums and unions that let a newer QEMU's values through.
 *
 * @since 0.1.0
 */
export * as QmpSchema from "./QmpSchema.js"

/**
 * Event filters: predicates, Schema-validated ones, and their combinators.
 *
 * @since 0.1.0
 */
export * as EventFilter from "./EventFilter.js"

/**
 * One listener: a FIFO queue of the events it accepts, with a history.
 *
 * @since 0.1.0
 */
export * as EventListener from "./EventListener.js"

/**
 * The registry of listeners, as a service and a layer.
 *
 * @since 0.1.0
 */
export * as QmpEvents from "./QmpEvents.js"

/**
 * A QMP connection to QEMU over a Unix socket or TCP: greeting, negotiation, commands, and the
 * events it feeds to `QmpEvents`.
 *
 * @since 0.1.0
 */
export * as QmpClient from "./QmpClient.js"

/**
 * A QEMU started for a scope, with its QMP connection, stopped for sure when the scope closes.
 *
 * @since 0.1.0
 */
export * as QemuProcess from "./QemuProcess.js"

/**
 * Many VMs from one process: a keyed, ref-counted set of connections that reconnect, with
 * registries that outlive them, gap events, liveness pings and `all` events tagged by VM.
 *
 * @since 0.1.0
 */
export * as QmpFleet from "./QmpFleet.js"

/**
 * QEMU's jobs followed to their end: the seed's `JobListener`, `run` (start a job, finalize,
 * complete or dismiss it as it needs, fail with QEMU's error, cancel it when interrupted), `watch`
 * and `progress`.
 *
 * @since 0.1.0
 */
export * as Jobs from "./Jobs.js"

/**
 * A generated module against the QEMU it talks to: what was added, removed or changed.
 *
 * @since 0.1.0
 */
export * as SchemaCheck from "./SchemaCheck.js"

/**
 * The QEMU guest agent (`qemu-ga`): QMP without a greeting, resynchronised with
 * `guest-sync-delimited`, one command at a time.
 *
 * @since 0.1.0
 */
export * as GuestAgent from "./GuestAgent.js"

/**
 * The metrics effect-qmp keeps: events received, dropped and rejected, commands pending, unknown enum values.
 *
 * @since 0.1.0
 */
export * as QmpMetrics from "./QmpMetrics.js"
