/**
 * One connection of `QmpTestServer`, at the socket level: the reader (QEMU's JSON streamer, so that
 * commands need no newline and may come several to a line or one over several lines), ordered writes,
 * the flood writer, and the faults (stall, hang-up, destroy).
 *
 * The socket's callbacks only parse and hand on (`Queue.unsafeOffer`, `Deferred.unsafeDone`): every
 * decision, and every observation a test makes, happens in the server's fibers. The few flags here
 * (negotiated, oob, stalls) are plain fields because they must change in the same synchronous step
 * as a write is issued (a client becomes negotiated exactly when its `{"return": {}}` is written, so
 * that no event slips between); they are touched only by the server's fibers, one at a time.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import type * as Queue from "effect/Queue"
import type * as Net from "node:net"
import type { RawData } from "../../testing/QmpTestServer.js"
import { JsonError } from "./jsonParser.js"
import { JsonStream } from "./jsonStream.js"
import type { QValue } from "./qobject.js"

/**
 * What the reader hands on, in order: a message, what QEMU's parser says of input that is not one,
 * and the end of the client's input (it hung up, or half-closed its side).
 */
export type Input =
  | { readonly _tag: "Message"; readonly value: QValue }
  | { readonly _tag: "ParseError"; readonly desc: string }
  | { readonly _tag: "End" }

const ignore = (): void => {}

/** @internal */
export class Link {
  /** Set once `qmp_capabilities` succeeded: from then on the client receives events. */
  negotiated = false
  /** Set when the client enabled out-of-band execution. */
  oob = false
  /** Open unless this connection or the whole server is stalled: commands wait for it. */
  readonly latch: Effect.Latch = Effect.unsafeMakeLatch(true)
  private readonly closedSignal = Deferred.unsafeMake<void>(FiberId.none)
  private readonly stream = new JsonStream((message) =>
    this.inputs.unsafeOffer(
      message instanceof JsonError ? { _tag: "ParseError", desc: message.desc } : { _tag: "Message", value: message }
    )
  )
  private started = false
  private stalledSelf = false
  private stalledServer = false

  /** @param inputs receives the lines read, in order */
  constructor(readonly id: number, readonly socket: Net.Socket, readonly inputs: Queue.Enqueue<Input>) {
    socket.on("error", ignore)
    socket.on("close", () => Deferred.unsafeDone(this.closedSignal, Exit.void))
    if (socket.remoteFamily !== undefined) socket.setNoDelay(true)
  }

  /** Completes when the socket has closed, whichever side closed it. */
  get closed(): Effect.Effect<void> {
    return Deferred.await(this.closedSignal)
  }

  get isOpen(): boolean {
    return !this.socket.destroyed && this.socket.writable
  }

  /** Starts reading (a second client of an exclusive server is not read until it is served). */
  start(): void {
    if (this.started) return
    this.started = true
    this.socket.on("data", (chunk: Buffer) => this.stream.push(chunk))
    // A message not finished when the input ends is dropped, as QEMU drops it.
    this.socket.once("end", () => this.inputs.unsafeOffer({ _tag: "End" }))
  }

  /**
   * Writes `data` and completes once it is handed to the kernel, or at once if the socket is closed
   * or closing (the data is then dropped). `onWrite` runs right after the write is issued, in the same
   * synchronous step.
   */
  write(data: RawData, onWrite?: () => void): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      if (!this.isOpen) return resume(Effect.void)
      let done = false
      const finish = () => {
        if (done) return
        done = true
        this.socket.off("close", finish)
        resume(Effect.void)
      }
      this.socket.once("close", finish)
      this.socket.write(data, finish)
      onWrite?.()
      return Effect.sync(() => this.socket.off("close", finish))
    })
  }

  /** Writes each piece on its own, waiting `delay` between them, so that they arrive as separate chunks. */
  raw(data: RawData | ReadonlyArray<RawData>, delay: Duration.DurationInput): Effect.Effect<void> {
    if (typeof data === "string" || data instanceof Uint8Array) return this.write(data)
    return Effect.forEach(
      data,
      (piece, i) => i === 0 ? this.write(piece) : Effect.zipRight(Effect.sleep(delay), this.write(piece)),
      { discard: true }
    )
  }

  /**
   * Writes the chunks `next(0)`, `next(1)`, ... until it gives `undefined` or the connection closes,
   * as fast as the socket takes them: a plain loop that waits for `drain` whenever the socket's buffer
   * is full, so that the server never holds more than one chunk in memory. `onChunk(n)` runs after
   * the n-th chunk was handed over. Gives the number of chunks handed over.
   */
  pump(next: (n: number) => Uint8Array | undefined, onChunk: (n: number) => void): Effect.Effect<number> {
    return Effect.async<number>((resume) => {
      const socket = this.socket
      let n = 0
      let finished = false
      const done = () => {
        if (finished) return
        finished = true
        socket.off("drain", loop)
        socket.off("close", done)
        resume(Effect.succeed(n))
      }
      function loop() {
        for (;;) {
          if (socket.destroyed || !socket.writable) return done()
          const chunk = next(n)
          if (chunk === undefined) return done()
          const more = socket.write(chunk)
          onChunk(++n)
          if (!more) {
            socket.once("drain", loop)
            return
          }
        }
      }
      socket.once("close", done)
      loop()
      return Effect.sync(done)
    })
  }

  /** Stops reading and answering (`self`: this connection; otherwise: on behalf of the whole server). */
  stall(self: boolean): void {
    if (self) this.stalledSelf = true
    else this.stalledServer = true
    this.apply()
  }

  release(self: boolean): void {
    if (self) this.stalledSelf = false
    else this.stalledServer = false
    this.apply()
  }

  private apply(): void {
    if (this.stalledSelf || this.stalledServer) {
      this.latch.unsafeClose()
      this.socket.pause()
    } else {
      this.latch.unsafeOpen()
      // Resuming a socket that nobody reads yet would drop its data.
      if (this.started) this.socket.resume()
    }
  }

  /** Ends the stream after what was written: the client reads the rest, then the end. */
  hangUp(): void {
    this.socket.end()
  }

  /** Closes at once: what was not written yet is dropped. */
  destroy(): void {
    this.socket.destroy()
  }
}
