/**
 * The line framer: splits the bytes of a QMP connection into lines, in the socket's data callback.
 *
 * This is the hot path of a QMP connection, so it is plain mutable code, confined to this module:
 *
 * - A partial line is kept as the list of the buffers received so far and their byte count, and is
 *   joined once when its newline arrives: appending to a string per chunk would copy a long line
 *   (a 200 KB `query-qmp-schema` reply, say) over and over.
 * - Lines are decoded here, and as few times as possible: the whole lines of a chunk (from its
 *   first byte, or the end of a partial line, to its last newline) are decoded in one call and
 *   handed on as slices of that text, which costs no copy. A newline byte is never part of a
 *   multi-byte UTF-8 character, so a character split across two chunks is always in the partial
 *   line, which is joined as bytes and decoded whole.
 * - Lengths are checked in bytes, exactly. When the whole lines of a chunk are no longer than
 *   `maxBytes` together, none of them can be too long and they are not measured one by one; else
 *   (a small `maxBytes`, or a huge line) each line is measured and decoded on its own.
 * - A line longer than `maxBytes` is rejected as soon as the partial line exceeds the limit, without
 *   buffering any further: a peer that never sends a newline cannot make the client grow without
 *   bound. After a rejection (or `stop`), the framer ignores every later byte.
 *
 * A line's length is counted without its terminator (`\n`, or the `\r\n` that QEMU sends).
 *
 * The guest agent's lines are framed by `SentinelFramer` (`sentinelFramer.ts`), around this one: the
 * default path does not look for its 0xFF bytes.
 *
 * @internal
 */
import { shortLivedArray } from "./shortLived.js"

/** @internal */
export interface Sink {
  /** A complete line, decoded, without its terminator. Returns `false` to stop the framer. */
  line(text: string): boolean
  /** A line exceeded `maxBytes`: `bytes` were seen so far. The framer has stopped. */
  tooLong(bytes: number): void
}

const LF = 0x0a
const CR = 0x0d

/** @internal */
export class LineFramer {
  private parts = shortLivedArray<Buffer>()
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
    this.dropPartial()
  }

  /** Drops the partial line: what follows starts a new one. */
  dropPartial(): void {
    this.parts = shortLivedArray()
    this.partBytes = 0
  }

  push(chunk: Buffer): void {
    if (this.stopped) return
    let start = 0
    if (this.partBytes > 0) {
      // The partial line ends at the first newline of this chunk, if there is one.
      const newline = chunk.indexOf(LF)
      if (newline === -1) {
        this.keep(chunk, 0)
        return
      }
      this.parts.push(chunk.subarray(0, newline))
      const line = Buffer.concat(this.parts, this.partBytes + newline)
      this.dropPartial()
      if (!this.bytesLine(line, 0, line.length)) return
      start = newline + 1
    }
    const last = chunk.lastIndexOf(LF)
    if (last >= start) {
      if (last - start <= this.maxBytes) {
        if (!this.textLines(chunk.toString("utf8", start, last + 1))) return
      } else {
        for (let newline = chunk.indexOf(LF, start); newline !== -1; newline = chunk.indexOf(LF, start)) {
          if (!this.bytesLine(chunk, start, newline)) return
          start = newline + 1
        }
      }
      start = last + 1
    }
    if (start < chunk.length) this.keep(chunk, start)
  }

  /** Hands on the lines of `text`, which ends with a newline; `false` once the framer has stopped. */
  private textLines(text: string): boolean {
    let from = 0
    for (let newline = text.indexOf("\n"); newline !== -1; newline = text.indexOf("\n", from)) {
      const end = newline > from && text.charCodeAt(newline - 1) === CR ? newline - 1 : newline
      if (!this.sink.line(text.slice(from, end))) {
        this.stop()
        return false
      }
      if (this.stopped) return false
      from = newline + 1
    }
    return true
  }

  /** Measures, decodes and hands on the line `bytes[start, end)`; `false` once the framer has stopped. */
  private bytesLine(bytes: Buffer, start: number, end: number): boolean {
    if (end > start && bytes[end - 1] === CR) end--
    if (end - start > this.maxBytes) {
      this.stop()
      this.sink.tooLong(end - start)
      return false
    }
    if (!this.sink.line(bytes.toString("utf8", start, end))) {
      this.stop()
      return false
    }
    return !this.stopped
  }

  /** Keeps `chunk[start..]` as (the rest of) the partial line, unless that makes it too long. */
  private keep(chunk: Buffer, start: number): void {
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
