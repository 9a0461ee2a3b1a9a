/**
 * A value whose changes can be watched as a `SubscriptionRef`'s are, with the `SubscriptionRef` made
 * only when `changes` is first run. A `SubscriptionRef` (its `PubSub`, its semaphore) is some 3 KiB,
 * and a fleet holds two per VM (the connection's runstate and the VM's), that hardly anyone watches.
 *
 * Until then, a change is a plain assignment in one synchronous step; from then on, every change
 * goes through the `SubscriptionRef` (under its semaphore), so that a watcher sees the value it
 * started with, then each change, as `SubscriptionRef.changes` gives them.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"

/** @internal */
export class Watched<A> {
  private ref: SubscriptionRef.SubscriptionRef<A> | undefined = undefined

  constructor(private value: A) {}

  /** The value now, for synchronous readers. */
  get current(): A {
    return this.value
  }

  /** As `SubscriptionRef.modify`. */
  modify<B>(f: (a: A) => readonly [B, A]): Effect.Effect<B> {
    return Effect.suspend(() => {
      if (this.ref !== undefined) {
        return SubscriptionRef.modify(this.ref, (a) => {
          const result = f(a)
          this.value = result[1]
          return result
        })
      }
      const [b, a] = f(this.value)
      this.value = a
      return Effect.succeed(b)
    })
  }

  /** As `SubscriptionRef.set`. */
  set(a: A): Effect.Effect<void> {
    return this.modify(() => [undefined, a])
  }

  /** As `SubscriptionRef.get`. */
  get get(): Effect.Effect<A> {
    return Effect.sync(() => this.value)
  }

  /** As `SubscriptionRef.changes`: the value when the stream starts, then each change. */
  get changes(): Stream.Stream<A> {
    return Stream.unwrap(Effect.sync(() => {
      // Made in one synchronous step with the value it starts from: no change can come in between
      // (`runSync` runs no other fiber; making a `SubscriptionRef` needs no service).
      this.ref ??= Effect.runSync(SubscriptionRef.make(this.value))
      return this.ref.changes
    }))
  }
}
