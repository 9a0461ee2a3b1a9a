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
import * as MetricBoundaries from "effect/MetricBoundaries"
import type * as MetricHook from "effect/MetricHook"
import * as MetricKey from "effect/MetricKey"
import type * as MetricKeyType from "effect/MetricKeyType"
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

const tagged = (key: MetricKey.MetricKey.Counter<number>, tag: string, value: string): Metric.Metric.Counter<number> =>
  Metric.fromMetricKey(MetricKey.tagged(key, tag, value))

/** `qmp_events_received` tagged with a connection's address, and `more` tags. @internal */
export const eventsReceivedAt = (address: string, more?: ReadonlyArray<MetricLabel.MetricLabel>): UntaggedCounter =>
  connectionCounter(eventsReceivedKey, address, more)

/** `qmp_events_dropped` tagged with a listener's label. @internal */
export const eventsDroppedBy = (listener: string): Metric.Metric.Counter<number> =>
  tagged(eventsDroppedKey, "listener", listener)

/** `qmp_commands_pending` tagged with a connection's address, and `more` tags. @internal */
export const commandsPendingAt = (address: string, more?: ReadonlyArray<MetricLabel.MetricLabel>): UntaggedCounter =>
  connectionCounter(commandsPendingKey, address, more)

const connectionCounter = (
  key: MetricKey.MetricKey.Counter<number>,
  address: string,
  more: ReadonlyArray<MetricLabel.MetricLabel> = []
): UntaggedCounter =>
  new UntaggedCounter(MetricKey.taggedWithLabels(key, [MetricLabel.make("address", address), ...more]))

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

/** @internal */
export const vmConnectedKey = MetricKey.gauge("qmp_vm_connected", {
  description: "1 while a fleet's VM has a QMP connection, 0 during a gap"
})

/** @internal */
export const vmReconnectsKey = MetricKey.counter("qmp_vm_reconnects", {
  description: "Connections a fleet restored after a gap",
  incremental: true
})

/** @internal */
export const vmUnresponsiveKey = MetricKey.counter("qmp_vm_unresponsive", {
  description: "Liveness pings that got no answer in time: the connection was recycled",
  incremental: true
})

/** @internal */
export const pingLatencyKey = MetricKey.histogram(
  "qmp_ping_latency_ms",
  MetricBoundaries.exponential({ start: 0.25, factor: 2, count: 16 }),
  "The round trip of a fleet's liveness pings, in milliseconds"
)

/**
 * A metric of one VM of a fleet, tagged with its id, made anew for each update: they are rare (a
 * connection made or lost, a ping), and a `Metric` kept per VM is some 700 bytes of closures that a
 * fleet of idle VMs would hold a thousand times over.
 *
 * @internal
 */
export const vmMetric = <Type extends MetricKeyType.MetricKeyType<any, any>>(
  key: MetricKey.MetricKey<Type>,
  vm: string
) => Metric.fromMetricKey(MetricKey.taggedWithLabels(key, [MetricLabel.make("vm", vm)]))

/**
 * A counter updated as `Metric.unsafeUpdate(amount, [])` does (without the fiber's metric labels),
 * without a `Metric`: its state is looked up in the global registry on the first update and kept.
 * A connection holds one for `qmp_commands_pending` and, from its first events, one for
 * `qmp_events_received` (a `Metric` would be some 700 bytes of closures per connection).
 *
 * @internal
 */
export class UntaggedCounter {
  private hook: MetricHook.MetricHook.Counter<number> | undefined = undefined

  constructor(private readonly key: MetricKey.MetricKey.Counter<number>) {}

  update(amount: number): void {
    ;(this.hook ??= Metric.globalMetricRegistry.get(this.key)).update(amount)
  }
}
