/**
 * The commands in flight on one connection, by id.
 *
 * `execute` opens a call (a fresh id, and the callback that resumes the caller's fiber) and writes
 * the command; the processing fiber settles it when the reply with that id arrives; the call is
 * abandoned when its deadline passes or its caller is interrupted, and its id remembered for a
 * while, so that a late reply is recognised (and dropped quietly) rather than reported as a reply
 * nobody asked for. A call is closed exactly once, whichever comes first.
 *
 * Plain mutable state in one module: every operation is a synchronous block, and JavaScript never
 * interleaves two of them.
 *
 * @internal
 */
import type * as Exit from "effect/Exit"
import type { ExecuteError } from "../QmpError.js"
import type { Deadline } from "./deadlines.js"

/** @internal */
export interface Call {
  readonly id: string
  readonly command: string
  /** Resumes the caller's fiber: called once, by `settle`. */
  readonly resume: (exit: Exit.Exit<unknown, ExecuteError>) => void
  /** The command was handed to an open socket. */
  sent: boolean
  /** Its timeout, if it has one. */
  deadline: Deadline<Call> | undefined
}

/** How many ids of abandoned calls are remembered. */
const abandonedLimit = 1024

/** @internal */
export class Calls {
  private counter = 0
  private readonly pending = new Map<string, Call>()
  /** Made with the first abandoned call: most connections never abandon one. */
  private abandoned: Set<string> | undefined = undefined

  /** The owner's `onClose` runs once per call, when it is settled or abandoned. */
  constructor(private readonly owner: { onClose(call: Call): void }) {}

  get size(): number {
    return this.pending.size
  }

  /** A fresh id for the next call. */
  nextId(): string {
    return `qmp-${++this.counter}`
  }

  open(id: string, command: string, resume: Call["resume"]): Call {
    const call: Call = { id, command, resume, sent: false, deadline: undefined }
    this.pending.set(call.id, call)
    return call
  }

  /** The pending calls, oldest first. */
  values(): IterableIterator<Call> {
    return this.pending.values()
  }

  /** `true` if a call with this id is pending. */
  has(id: unknown): boolean {
    return typeof id === "string" && this.pending.has(id)
  }

  /** The pending call with this id, removed, if there is one. */
  take(id: unknown): Call | undefined {
    if (typeof id !== "string") return undefined
    const call = this.pending.get(id)
    if (call === undefined) return undefined
    this.pending.delete(id)
    this.owner.onClose(call)
    return call
  }

  /** Settles a call taken with `take`. */
  settle(call: Call, exit: Exit.Exit<unknown, ExecuteError>): void {
    call.resume(exit)
  }

  /** Its caller gave up (deadline, interruption): forget it, and remember its id. `false` if it was closed already. */
  abandon(call: Call): boolean {
    if (this.pending.get(call.id) !== call) return false
    this.pending.delete(call.id)
    this.owner.onClose(call)
    const abandoned = this.abandoned ??= new Set()
    if (abandoned.size >= abandonedLimit) {
      const oldest = abandoned.values().next()
      if (!oldest.done) abandoned.delete(oldest.value)
    }
    abandoned.add(call.id)
    return true
  }

  /** `true` once for the id of an abandoned call: its late reply. */
  wasAbandoned(id: unknown): boolean {
    return typeof id === "string" && this.abandoned !== undefined && this.abandoned.delete(id)
  }

  /** Settles every pending call, and forgets them. */
  settleAll(settle: (call: Call) => Exit.Exit<unknown, ExecuteError>): void {
    const calls = Array.from(this.pending.values())
    this.pending.clear()
    for (const call of calls) {
      this.owner.onClose(call)
      call.resume(settle(call))
    }
  }
}
