/**
 * A FIFO over a power-of-two array: offering and polling allocate nothing (a linked list allocates a
 * node per entry, which on the dispatch hot path costs more than the rest of delivery). It grows by
 * doubling when full and halves when a burst has drained to a quarter, so it stays near its contents.
 *
 * @internal
 */
const minCapacity = 16

export class Ring<A> {
  private items: Array<A | undefined> = new Array(minCapacity)
  private head = 0
  private size = 0

  get length(): number {
    return this.size
  }

  offer(item: A): void {
    if (this.size === this.items.length) this.resize(this.items.length * 2)
    this.items[(this.head + this.size) & (this.items.length - 1)] = item
    this.size++
  }

  /** Puts an item back at the head, before every other. */
  offerFirst(item: A): void {
    if (this.size === this.items.length) this.resize(this.items.length * 2)
    this.head = (this.head - 1) & (this.items.length - 1)
    this.items[this.head] = item
    this.size++
  }

  /** The head, left in place. */
  peek<Def>(def: Def): A | Def {
    return this.size === 0 ? def : this.items[this.head] as A
  }

  poll<Def>(def: Def): A | Def {
    if (this.size === 0) return def
    const item = this.items[this.head] as A
    this.items[this.head] = undefined
    this.head = (this.head + 1) & (this.items.length - 1)
    this.size--
    if (this.items.length > minCapacity && this.size <= this.items.length >>> 2) {
      this.resize(this.items.length >>> 1)
    }
    return item
  }

  /** The items, head first. */
  toArray(): Array<A> {
    const items: Array<A> = new Array(this.size)
    const mask = this.items.length - 1
    for (let i = 0; i < this.size; i++) items[i] = this.items[(this.head + i) & mask] as A
    return items
  }

  private resize(capacity: number): void {
    const items: Array<A | undefined> = new Array(capacity)
    const mask = this.items.length - 1
    for (let i = 0; i < this.size; i++) items[i] = this.items[(this.head + i) & mask]
    this.items = items
    this.head = 0
  }
}
