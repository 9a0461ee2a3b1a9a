/**
 * A fleet's `all`: the events of every VM, tagged with the VM, for each reader of the stream.
 *
 * Each VM's registry hands every batch it has delivered to `push`, in its dispatch fiber, as plain
 * synchronous code (a fiber hop per batch and per reader would cost more than the delivery). Each
 * reader has a buffer of its own: batches, as they were delivered, in a ring, and a doorbell that
 * wakes the reader's stream, which takes everything waiting in one pull and tags it then. Nothing is
 * done for a batch when nobody reads `all`.
 *
 * A reader's buffer is unbounded unless the fleet gives `all` a capacity, like a listener; then the
 * oldest events go first (sliding), counted in `qmp_events_dropped` (listener `(fleet all)`).
 *
 * Mutable state, confined to this module: `push` runs in dispatch fibers, a pull in the reader's
 * fiber, each as one synchronous block.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { QmpEvent } from "../QmpMessage.js"
import { Doorbell } from "./doorbell.js"
import * as InternalMetrics from "./metrics.js"
import { Ring } from "./ring.js"

/**
 * An event of one VM of a fleet.
 *
 * @internal
 */
export interface FleetEvent {
  readonly vm: string
  readonly event: QmpEvent
}

/** A `FleetEvent` as `pull` makes it, and a VM's delivered batch: classes, not literals (see `shortLived.ts`). */
class Tagged implements FleetEvent {
  constructor(readonly vm: string, readonly event: QmpEvent) {}
}

class Batch {
  constructor(readonly vm: string, readonly events: ReadonlyArray<QmpEvent>) {}
}

const droppedMetric = InternalMetrics.eventsDroppedBy("(fleet all)")

/** Events waiting at which a reader is woken at once. */
const wakeAt = 1024

/** One reader of `all`: its buffer, and its doorbell. */
class Reader {
  private readonly batches = new Ring<Batch>()
  /** Events of the first batch already taken or dropped. */
  private offset = 0
  /** Events waiting, across the batches. */
  private pending = 0
  private readonly doorbell = new Doorbell()
  ended = false

  constructor(private readonly capacity: number) {}

  push(batch: Batch): void {
    this.batches.offer(batch)
    this.pending += batch.events.length
    if (this.pending > this.capacity) this.dropOldest(this.pending - this.capacity)
    // Small batches (a few events each, as VMs send them) wake the reader once those of every VM
    // read in this turn of the event loop are in: one pull then takes them all, where a pull per
    // batch would cost the reader's stream its machinery (some kilobytes) a thousand times a second
    // per busy VM. Many events wake it at once: held until then, they would outlive more garbage
    // collections.
    if (this.pending >= wakeAt) this.doorbell.ring()
    else this.doorbell.ringSoon()
  }

  end(): void {
    this.ended = true
    this.doorbell.ring()
  }

  /** Drops `count` of the oldest events waiting (a sliding bound). */
  private dropOldest(count: number): void {
    droppedMetric.unsafeUpdate(count, [])
    this.pending -= count
    let left = count
    while (left > 0) {
      const head = this.batches.peek(undefined)!
      const remaining = head.events.length - this.offset
      if (remaining > left) {
        this.offset += left
        return
      }
      left -= remaining
      this.batches.poll(undefined)
      this.offset = 0
    }
  }

  /** Everything waiting, tagged with its VM; waits for something, or fails with `None` once ended. */
  readonly pull: Effect.Effect<Chunk.Chunk<FleetEvent>, Option.Option<never>> = Effect.suspend(() => {
    if (this.pending === 0) {
      return this.ended ? Effect.fail(Option.none()) : Effect.zipRight(this.doorbell.wait, this.pull)
    }
    const out: Array<FleetEvent> = new Array(this.pending)
    let n = 0
    for (let batch = this.batches.poll(undefined); batch !== undefined; batch = this.batches.poll(undefined)) {
      const { events, vm } = batch
      for (let i = this.offset; i < events.length; i++) out[n++] = new Tagged(vm, events[i])
      this.offset = 0
    }
    this.pending = 0
    return Effect.succeed(Chunk.unsafeFromArray(out))
  })
}

/**
 * The readers of a fleet's `all`.
 *
 * @internal
 */
export class FanIn {
  private readonly readers = new Set<Reader>()
  private closed = false

  constructor(private readonly capacity: number) {}

  /** Hands a VM's delivered batch to every reader. */
  push(vm: string, events: ReadonlyArray<QmpEvent>): void {
    if (this.readers.size === 0 || events.length === 0) return
    const batch = new Batch(vm, events)
    for (const reader of this.readers) reader.push(batch)
  }

  /** No more events will come: every reader's stream ends after what it holds. */
  close(): void {
    this.closed = true
    for (const reader of this.readers) reader.end()
  }

  /** The events of every VM from the first pull on, in the order each VM's registry delivered them. */
  readonly stream: Stream.Stream<FleetEvent> = Stream.unwrapScoped(
    Effect.acquireRelease(
      Effect.sync(() => {
        const reader = new Reader(this.capacity)
        if (this.closed) reader.end()
        else this.readers.add(reader)
        return reader
      }),
      (reader) => Effect.sync(() => this.readers.delete(reader))
    ).pipe(Effect.map((reader) => Stream.repeatEffectChunkOption(reader.pull)))
  )
}
