/**
 * The keys of the metrics in `QmpMetrics`, and those metrics tagged with a connection's address or a
 * listener's label, cheap to update on a hot path.
 *
 * A metric tagged with `Metric.tagged` merges its tags into a fresh array on every update, and finds
 * its state through a cache keyed by that array: each update builds and hashes a new `MetricKey`
 * (formatting its description) and looks it up in the global registry, some microseconds. A metric
 * made from the tagged key finds its state once.
 *
 * @internal
 */
import * as Metric from "effect/Metric"
import * as MetricKey from "effect/MetricKey"
import * as MetricLabel from "effect/MetricLabel"

/** @internal */
export const eventsReceivedKey = MetricKey.counter("qmp_events_received", {
  description: "Events read from QMP connections",
  incremental: true
})

/** @internal */
export const eventsDroppedKey = MetricKey.counter("qmp_events_dropped", {
  description: "Events that bounded listeners discarded",
  incremental: true
})

/** @internal */
export const commandsPendingKey = MetricKey.counter("qmp_commands_pending", {
  description: "QMP commands waiting for their reply"
})

const tagged = (
  key: MetricKey.MetricKey.Counter<number>,
  tag: string,
  value: string,
  more: ReadonlyArray<MetricLabel.MetricLabel> = []
): Metric.Metric.Counter<number> =>
  Metric.fromMetricKey(MetricKey.taggedWithLabels(key, [MetricLabel.make(tag, value), ...more]))

/** `qmp_events_received` tagged with a connection's address, and `more` tags. @internal */
export const eventsReceivedAt = (
  address: string,
  more?: ReadonlyArray<MetricLabel.MetricLabel>
): Metric.Metric.Counter<number> => tagged(eventsReceivedKey, "address", address, more)

/** `qmp_events_dropped` tagged with a listener's label. @internal */
export const eventsDroppedBy = (listener: string): Metric.Metric.Counter<number> =>
  tagged(eventsDroppedKey, "listener", listener)

/** `qmp_commands_pending` tagged with a connection's address, and `more` tags. @internal */
export const commandsPendingAt = (
  address: string,
  more?: ReadonlyArray<MetricLabel.MetricLabel>
): Metric.Metric.Counter<number> => tagged(commandsPendingKey, "address", address, more)

/** @internal */
export const unknownEnumValuesKey = MetricKey.counter("qmp_unknown_enum_values", {
  description: "Values of QEMU enums the generated module did not know",
  incremental: true
})

/** @internal */
export const eventsRejectedKey = MetricKey.counter("qmp_events_rejected", {
  description: "Events whose data did not match the generated Schema: typed listeners did not get them",
  incremental: true
})

/** `qmp_events_rejected` tagged with the event's name. @internal */
export const eventsRejectedOf = (event: string): Metric.Metric.Counter<number> =>
  tagged(eventsRejectedKey, "event", event)
