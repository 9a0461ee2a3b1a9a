/**
 * A doorbell: one fiber waits (`wait`) until someone rings (`ring`); a ring while nobody waits is
 * kept, once, for the next `wait`. It carries no data, and that is the point (see `session.ts`):
 * the work waits in a plain array that the woken fiber takes.
 *
 * It is cheaper than a `Queue` or a `Deferred` as well: a wait is one `Effect.async`, where a
 * `Queue.take` makes a `Deferred` (a spread of Effect's prototype, some microseconds) and an
 * interruption handler.
 *
 * One fiber waits at a time. A waiter that is interrupted leaves its callback behind; the next ring
 * calls it, which does nothing (the runtime ignores a resumption after an interruption), so that ring
 * is lost: a doorbell is for a fiber whose interruption ends its use.
 *
 * @internal
 */
import * as Effect from "effect/Effect"

const ringIfSoon = (doorbell: Doorbell): void => doorbell.ringIfDue()

/** @internal */
export class Doorbell {
  private rung = false
  private waiter: ((effect: Effect.Effect<void>) => void) | undefined = undefined
  /** A ring from `ringSoon` is due. */
  private soon = false

  ring(): void {
    this.soon = false
    const waiter = this.waiter
    if (waiter === undefined) {
      this.rung = true
      return
    }
    this.waiter = undefined
    waiter(Effect.void)
  }

  /**
   * Rings once the event loop's current turn of I/O callbacks is over (`setImmediate`), so that
   * whatever those callbacks hand on is taken in one wake: any number of calls meanwhile make one
   * ring, and a `ring` or `cancelSoon` before then makes it unneeded.
   */
  ringSoon(): void {
    if (this.soon) return
    this.soon = true
    setImmediate(ringIfSoon, this)
  }

  /** A ring from `ringSoon` is still due. */
  get ringingSoon(): boolean {
    return this.soon
  }

  /** The waiter has taken what a due ring was for. */
  cancelSoon(): void {
    this.soon = false
  }

  /** @internal */
  ringIfDue(): void {
    if (this.soon) this.ring()
  }

  private waitEffect: Effect.Effect<void> | undefined = undefined

  /** Made once, with the first wait: a doorbell nobody waits on (an idle registry's) holds none. */
  get wait(): Effect.Effect<void> {
    // `Effect.async` makes an `AbortController` for a callback that takes a second parameter: one only.
    return this.waitEffect ??= Effect.async<void>((resume) => {
      if (this.rung) {
        this.rung = false
        resume(Effect.void)
        return
      }
      this.waiter = resume
    })
  }
}
