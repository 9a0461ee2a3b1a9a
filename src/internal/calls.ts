/**
 * The commands in flight on one connection, by id.
 *
 * `execute` opens a call (a fresh id and a `Deferred` for its reply) before it writes the command;
 * the processing fiber settles it when the reply with that id arrives; `execute` forgets it when it
 * times out or is interrupted, and remembers its id for a while, so that a late reply is recognised
 * (and dropped quietly) rather than reported as a reply nobody asked for.
 *
 * Plain mutable state in one module: every operation is a synchronous block, and JavaScript never
 * interleaves two of them.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import type * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import type { QmpDisconnected, QmpExecuteError, QmpProtocolError } from "../QmpError.js"

/** @internal */
export type CallError = QmpExecuteError | QmpProtocolError | QmpDisconnected

/** @internal */
export interface Call {
  readonly id: string
  readonly command: string
  readonly deferred: Deferred.Deferred<unknown, CallError>
  /** Set just before the command is written to an open socket. */
  sent: boolean
}

/** How many ids of abandoned calls are remembered. */
const abandonedLimit = 1024

/** @internal */
export class Calls {
  private counter = 0
  private readonly pending = new Map<string, Call>()
  private readonly abandoned = new Set<string>()

  get size(): number {
    return this.pending.size
  }

  open(command: string): Call {
    const call: Call = {
      id: `qmp-${++this.counter}`,
      command,
      deferred: Deferred.unsafeMake<unknown, CallError>(FiberId.none),
      sent: false
    }
    this.pending.set(call.id, call)
    return call
  }

  /** Removes and returns the pending call with this id, if any. */
  take(id: unknown): Call | undefined {
    if (typeof id !== "string") return undefined
    const call = this.pending.get(id)
    if (call !== undefined) this.pending.delete(id)
    return call
  }

  /** The caller gave up on this call (timeout, interruption): forget it, remember its id. */
  abandon(call: Call): void {
    if (this.pending.get(call.id) !== call) return
    this.pending.delete(call.id)
    if (this.abandoned.size >= abandonedLimit) {
      const oldest = this.abandoned.values().next()
      if (!oldest.done) this.abandoned.delete(oldest.value)
    }
    this.abandoned.add(call.id)
  }

  /** `true` once for the id of an abandoned call: its late reply. */
  wasAbandoned(id: unknown): boolean {
    return typeof id === "string" && this.abandoned.delete(id)
  }

  /** Settles every pending call, and forgets them. */
  settleAll(settle: (call: Call) => Exit.Exit<unknown, CallError>): void {
    const calls = Array.from(this.pending.values())
    this.pending.clear()
    for (const call of calls) Deferred.unsafeDone(call.deferred, settle(call))
  }
}
