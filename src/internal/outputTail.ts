/**
 * The last `limit` bytes of a process's output: enough to explain why it failed, bounded however
 * much it writes.
 *
 * @internal
 */
export class OutputTail {
  private chunks: Array<Uint8Array> = []
  private size = 0

  constructor(readonly limit: number) {}

  push(chunk: Uint8Array): void {
    this.chunks.push(chunk)
    this.size += chunk.length
    while (this.size - this.chunks[0].length >= this.limit) {
      this.size -= this.chunks.shift()!.length
    }
  }

  toString(): string {
    const bytes = Buffer.concat(this.chunks)
    return bytes.subarray(Math.max(0, bytes.length - this.limit)).toString("utf8")
  }
}
