/**
 * The line framer: splits the bytes of a QMP connection into lines, in the socket's data callback.
 *
 * This is the hot path of a QMP connection, so it is plain mutable code, confined to this module:
 *
 * - A partial line is kept as the list of the buffers received so far and their byte count, and is
 *   joined once when its newline arrives: appending to a string per chunk would copy a long line
 *   (a 200 KB `query-qmp-schema` reply, say) over and over.
 * - A line is handed on as bytes and decoded whole by its consumer, so a multi-byte UTF-8 character
 *   split across two chunks decodes correctly.
 * - A line longer than `maxBytes` is rejected as soon as the partial line exceeds the limit, without
 *   buffering any further: a peer that never sends a newline cannot make the client grow without
 *   bound. After a rejection (or `stop`), the framer ignores every later byte.
 *
 * A line's length is counted without its terminator (`\n`, or the `\r\n` that QEMU sends).
 *
 * @internal
 */

/** @internal */
export interface Sink {
  /** A complete line, without its terminator. Returns `false` to stop the framer. */
  readonly line: (bytes: Buffer) => boolean
  /** A line exceeded `maxBytes`: `bytes` were seen so far. The framer has stopped. */
  readonly tooLong: (bytes: number) => void
}

const LF = 0x0a
const CR = 0x0d

/** @internal */
export class LineFramer {
  private parts: Array<Buffer> = []
  private partBytes = 0
  private stopped = false

  constructor(readonly maxBytes: number, private readonly sink: Sink) {}

  /** Bytes of the partial line held so far. */
  get pendingBytes(): number {
    return this.partBytes
  }

  get isStopped(): boolean {
    return this.stopped
  }

  /** Ignores every later byte and drops the partial line. */
  stop(): void {
    this.stopped = true
    this.parts = []
    this.partBytes = 0
  }

  push(chunk: Buffer): void {
    if (this.stopped) return
    let start = 0
    let newline = chunk.indexOf(LF, 0)
    while (newline !== -1) {
      let line: Buffer
      if (this.partBytes === 0) {
        line = chunk.subarray(start, newline)
      } else {
        this.parts.push(chunk.subarray(start, newline))
        line = Buffer.concat(this.parts, this.partBytes + newline - start)
        this.parts = []
        this.partBytes = 0
      }
      const end = line.length > 0 && line[line.length - 1] === CR ? line.length - 1 : line.length
      if (end > this.maxBytes) {
        this.stop()
        this.sink.tooLong(end)
        return
      }
      if (!this.sink.line(end === line.length ? line : line.subarray(0, end))) {
        this.stop()
        return
      }
      if (this.stopped) return
      start = newline + 1
      newline = chunk.indexOf(LF, start)
    }
    if (start < chunk.length) {
      const total = this.partBytes + chunk.length - start
      // One byte over the limit is still fine if it is the `\r` of a `\r\n` terminator.
      if (total > this.maxBytes && !(total === this.maxBytes + 1 && chunk[chunk.length - 1] === CR)) {
        this.stop()
        this.sink.tooLong(total)
        return
      }
      this.parts.push(start === 0 ? chunk : chunk.subarray(start))
      this.partBytes = total
    }
  }
}
