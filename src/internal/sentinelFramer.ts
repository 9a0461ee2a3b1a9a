/**
 * The framer of the guest agent's lines: QEMU's line framing (`LineFramer`), where a 0xFF byte ends
 * whatever partial line came before it and is part of no line. The agent writes one before its
 * answer to `guest-sync-delimited`: a byte that UTF-8 never holds, so that what follows it starts
 * afresh, whatever came before. After `resync`, every byte up to the next 0xFF is dropped.
 *
 * @internal
 */
import type { Sink } from "./framer.js"
import { LineFramer } from "./framer.js"

const SENTINEL = 0xff

/** @internal */
export class SentinelFramer {
  private readonly lines: LineFramer
  /** Dropping every byte up to the next 0xFF (`resync`). */
  private skipping = false

  constructor(maxBytes: number, sink: Sink) {
    this.lines = new LineFramer(maxBytes, sink)
  }

  get pendingBytes(): number {
    return this.lines.pendingBytes
  }

  get isStopped(): boolean {
    return this.lines.isStopped
  }

  stop(): void {
    this.lines.stop()
  }

  /** Drops the partial line and every byte up to the next 0xFF, which is dropped too. */
  resync(): void {
    this.lines.dropPartial()
    this.skipping = true
  }

  push(chunk: Buffer): void {
    let from = 0
    for (let at = chunk.indexOf(SENTINEL); at !== -1; at = chunk.indexOf(SENTINEL, from)) {
      if (!this.skipping) this.lines.push(chunk.subarray(from, at))
      if (this.lines.isStopped) return
      this.lines.dropPartial()
      this.skipping = false
      from = at + 1
    }
    if (!this.skipping) this.lines.push(from === 0 ? chunk : chunk.subarray(from))
  }
}
