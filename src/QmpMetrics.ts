/**
 * The metrics effect-qmp keeps, as Effect `Metric`s: read them with `Metric.value`, or export them
 * with any Effect metrics exporter (OpenTelemetry, Prometheus). Connection metrics carry an
 * `address` tag (`unix:/path` or `tcp:host:port`), and a `QmpFleet`'s connections a `vm` tag too;
 * listener metrics a `listener` tag (its names, or `(default)` for the default listener); the
 * metrics of a fleet's VMs (`vmConnected`, `vmReconnects`, `vmUnresponsive`, `pingLatency`) a `vm`
 * tag.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import {
  commandsPendingKey,
  eventsDroppedKey,
  eventsReceivedKey,
  eventsRejectedKey,
  pingLatencyKey,
  unknownEnumValuesKey,
  vmConnectedKey,
  vmReconnectsKey,
  vmUnresponsiveKey
} from "./internal/metrics.js"

/**
 * Events read from QMP connections (counted once per socket chunk, by the size of its batch).
 *
 * @since 0.1.0
 * @category metrics
 */
export const eventsReceived: Metric.Metric.Counter<number> = Metric.fromMetricKey(eventsReceivedKey)

/**
 * Events that bounded listeners discarded (the default listener's included).
 *
 * @since 0.1.0
 * @category metrics
 */
export const eventsDropped: Metric.Metric.Counter<number> = Metric.fromMetricKey(eventsDroppedKey)

/**
 * Commands written and still waiting for their reply.
 *
 * @since 0.1.0
 * @category metrics
 */
export const commandsPending: Metric.Metric.Counter<number> = Metric.fromMetricKey(commandsPendingKey)

/**
 * Events whose data did not match their name's Schema in the generated module (a wrong type, a
 * missing member): typed listeners did not get them; untyped ones and the default listener did.
 * Tagged with the event's name.
 *
 * @since 0.1.0
 * @category metrics
 */
export const eventsRejected: Metric.Metric.Counter<number> = Metric.fromMetricKey(eventsRejectedKey)

/**
 * Values of QEMU's enums (and union tags) that the generated module did not know, a newer QEMU's,
 * met while decoding replies or checking events: they are passed on, and logged once each. Tagged
 * with the enum's name.
 *
 * @since 0.1.0
 * @category metrics
 */
export const unknownEnumValues: Metric.Metric.Counter<number> = Metric.fromMetricKey(unknownEnumValuesKey)

/**
 * 1 while a `QmpFleet`'s VM has a QMP connection, 0 while it has none (a gap, or gone). Tagged
 * with `vm`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const vmConnected: Metric.Metric.Gauge<number> = Metric.fromMetricKey(vmConnectedKey)

/**
 * Connections a `QmpFleet` restored after a gap. Tagged with `vm`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const vmReconnects: Metric.Metric.Counter<number> = Metric.fromMetricKey(vmReconnectsKey)

/**
 * Liveness pings of a `QmpFleet` that got no answer within `ping.timeout`: each recycled its VM's
 * connection. Tagged with `vm`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const vmUnresponsive: Metric.Metric.Counter<number> = Metric.fromMetricKey(vmUnresponsiveKey)

/**
 * The round trip of a `QmpFleet`'s liveness pings, in milliseconds. Tagged with `vm`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const pingLatency: Metric.Metric.Histogram<number> = Metric.fromMetricKey(pingLatencyKey)
