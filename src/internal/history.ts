/**
 * A listener's history: the last `limit` accepted events, oldest first.
 *
 * Appending sits on the dispatch hot path, once per accepted event per listener, so it must not
 * allocate per event: the array grows by doubling until it reaches `limit`, then it becomes a ring
 * that overwrites its oldest entry. Only the dispatch fiber appends; readers copy.
 *
 * @internal
 */
export class History<A> {
  private items: Array<A> = []
  // Index of the oldest entry once the ring is full; 0 until then.
  private start = 0

  constructor(readonly limit: number) {}

  push(item: A): void {
    if (this.limit <= 0) return
    if (this.items.length < this.limit) {
      this.items.push(item)
      return
    }
    this.items[this.start] = item
    this.start = this.start + 1 === this.limit ? 0 : this.start + 1
  }

  get size(): number {
    return this.items.length
  }

  toArray(): ReadonlyArray<A> {
    if (this.start === 0) return this.items.slice()
    return this.items.slice(this.start).concat(this.items.slice(0, this.start))
  }
}
