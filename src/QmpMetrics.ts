/**
 * The metrics effect-qmp keeps, as Effect `Metric`s: read them with `Metric.value`, or export them
 * with any Effect metrics exporter (OpenTelemetry, Prometheus). Connection metrics carry an
 * `address` tag (`unix:/path` or `tcp:host:port`), listener metrics a `listener` tag (its names, or
 * `(default)` for the default listener).
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import { commandsPendingKey, eventsDroppedKey, eventsReceivedKey } from "./internal/metrics.js"

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
