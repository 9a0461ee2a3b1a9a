/**
 * The metrics effect-qmp keeps, as Effect `Metric`s: read them with `Metric.value`, or export them
 * with any Effect metrics exporter (OpenTelemetry, Prometheus). Connection metrics carry an
 * `address` tag (`unix:/path` or `tcp:host:port`), listener metrics a `listener` tag (its names).
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import * as MetricKey from "effect/MetricKey"

// Each metric is made from its key (as `Metric.counter` does), so that the connection and the
// registry can tag it cheaply: see `tagged` below.
const eventsReceivedKey = MetricKey.counter("qmp_events_received", {
  description: "Events read from QMP connections",
  incremental: true
})
const eventsDroppedKey = MetricKey.counter("qmp_events_dropped", {
  description: "Events that bounded listeners discarded",
  incremental: true
})
const commandsPendingKey = MetricKey.counter("qmp_commands_pending", {
  description: "QMP commands waiting for their reply"
})

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
 * The same metric as `Metric.tagged(counter, key, value)`, cheap to update on a hot path.
 *
 * A metric tagged with `Metric.tagged` merges its tags into a fresh array on every update, and
 * finds its state through a cache keyed by that array: each update builds and hashes a new
 * `MetricKey` (formatting its description) and looks it up in the global registry, some
 * microseconds. A metric made from the tagged key finds its state once.
 */
const tagged = (
  key: MetricKey.MetricKey.Counter<number>,
  tag: string,
  value: string
): Metric.Metric.Counter<number> => Metric.fromMetricKey(MetricKey.tagged(key, tag, value))

/**
 * `eventsReceived` tagged with a connection's address.
 *
 * @internal
 */
export const eventsReceivedAt = (address: string): Metric.Metric.Counter<number> =>
  tagged(eventsReceivedKey, "address", address)

/**
 * `eventsDropped` tagged with a listener's label.
 *
 * @internal
 */
export const eventsDroppedBy = (listener: string): Metric.Metric.Counter<number> =>
  tagged(eventsDroppedKey, "listener", listener)

/**
 * `commandsPending` tagged with a connection's address.
 *
 * @internal
 */
export const commandsPendingAt = (address: string): Metric.Metric.Counter<number> =>
  tagged(commandsPendingKey, "address", address)
