/**
 * The message framer of a pretty monitor (`-mon chardev=...,mode=control,pretty=on`), where QEMU
 * writes each message over many lines: it splits the bytes of a connection into JSON values by
 * counting brackets outside strings, in the socket's data callback, with the `Sink` of the line
 * framer (each message's text goes to `line`).
 *
 * - A message starts at a `{` or `[` and ends where that bracket closes; the whitespace between
 *   messages (QEMU's `\r\n`) is skipped. Anything else at the start of a message (QEMU sends none) is
 *   handed on up to the end of its line, for the reader to reject as not JSON.
 * - Inside a string, brackets do not count, and a backslash escapes the next byte. A multi-byte UTF-8
 *   character never holds a byte below 0x80, so it can neither open nor close anything.
 * - A message longer than `maxBytes` (counted from its first byte to its last, whitespace inside
 *   included) is rejected as soon as it is longer, without buffering further; the framer then ignores
 *   every later byte. A message's partial bytes are kept as the buffers received, and joined once.
 *
 * The line framer stays the one for QEMU's default output, where a message is a line: it is faster.
 *
 * @internal
 */
import type { Sink } from "./framer.js"
import { shortLivedArray } from "./shortLived.js"

const LF = 0x0a
const CR = 0x0d
const SPACE = 0x20
const TAB = 0x09
const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d

/** @internal */
export class JsonFramer {
  private parts = shortLivedArray<Buffer>()
  private partBytes = 0
  private stopped = false
  /** 0: between messages; 1: in a message; 2: in something that is not JSON, up to its line's end. */
  private mode: 0 | 1 | 2 = 0
  private depth = 0
  private inString = false
  private escaped = false

  constructor(readonly maxBytes: number, private readonly sink: Sink) {}

  /** Bytes of the partial message held so far. */
  get pendingBytes(): number {
    return this.partBytes
  }

  get isStopped(): boolean {
    return this.stopped
  }

  /** Ignores every later byte and drops the partial message. */
  stop(): void {
    this.stopped = true
    this.parts = shortLivedArray()
    this.partBytes = 0
  }

  push(chunk: Buffer): void {
    if (this.stopped) return
    // Where the current message starts in this chunk (0 when it started in an earlier one).
    let start = 0
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]
      switch (this.mode) {
        case 0:
          if (byte === SPACE || byte === LF || byte === CR || byte === TAB) continue
          start = i
          if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
            this.mode = 1
            this.depth = 1
            this.inString = false
            this.escaped = false
          } else {
            this.mode = 2
          }
          continue
        case 1:
          if (this.inString) {
            if (this.escaped) this.escaped = false
            else if (byte === BACKSLASH) this.escaped = true
            else if (byte === QUOTE) this.inString = false
            continue
          }
          if (byte === QUOTE) {
            this.inString = true
          } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
            this.depth++
          } else if ((byte === CLOSE_BRACE || byte === CLOSE_BRACKET) && --this.depth === 0) {
            if (!this.message(chunk, start, i + 1)) return
          }
          continue
        case 2:
          if (byte === LF) {
            const end = i > start && chunk[i - 1] === CR ? i - 1 : i
            if (!this.message(chunk, start, end)) return
          }
          continue
      }
    }
    if (this.mode !== 0) this.keep(chunk, start)
  }

  /** Hands on the message that ends at `chunk[end]`; `false` once the framer has stopped. */
  private message(chunk: Buffer, start: number, end: number): boolean {
    this.mode = 0
    const bytes = this.partBytes + end - start
    if (bytes > this.maxBytes) {
      this.stop()
      this.sink.tooLong(bytes)
      return false
    }
    const text = this.partBytes === 0 ?
      chunk.toString("utf8", start, end) :
      Buffer.concat([...this.parts, chunk.subarray(start, end)], bytes).toString("utf8")
    this.parts = shortLivedArray()
    this.partBytes = 0
    if (!this.sink.line(text)) {
      this.stop()
      return false
    }
    return !this.stopped
  }

  /** Keeps `chunk[start..]` as (the rest of) the partial message, unless that makes it too long. */
  private keep(chunk: Buffer, start: number): void {
    const total = this.partBytes + chunk.length - start
    if (total > this.maxBytes) {
      this.stop()
      this.sink.tooLong(total)
      return
    }
    if (start < chunk.length) this.parts.push(start === 0 ? chunk : chunk.subarray(start))
    this.partBytes = total
  }
}
