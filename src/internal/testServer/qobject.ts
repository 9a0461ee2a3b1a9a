/**
 * QEMU's values, as `QmpTestServer` reads them from the wire and writes them back: what QEMU's
 * `QObject`s keep that a JavaScript value loses.
 *
 * - A number keeps the text QEMU writes for it: an integer that fits in 64 bits (signed, or unsigned
 *   when it is not negative) is written back digit for digit (`12345678901234567890` stays exact), any
 *   other number as a C `double` with `%.17g` (`0.1` comes back as `0.10000000000000001`).
 * - An object keeps its members in QEMU's order. QEMU keeps an object's members in a hash table of
 *   512 buckets (the hash is tdb's, over the key's bytes), walks it bucket by bucket, and, within a
 *   bucket, newest member first. That order is the order QEMU checks a command's members in and writes
 *   every object it sends: `{"return": ..., "id": ...}` but `{"id": ..., "error": ...}`.
 *
 * Values from JavaScript (a handler's result, an event's data) are ordered the same way, taking
 * `Object.keys` as their insertion order.
 *
 * @internal
 */

/** A JSON number as QEMU holds it. @internal */
export class QNum {
  /**
   * @param text what QEMU writes for it
   * @param value the number, for JavaScript (an integer beyond 2^53 loses precision here, not in `text`)
   */
  constructor(readonly text: string, readonly value: number) {}
}

/** A JSON object as QEMU holds it: its members in the order they were read. @internal */
export class QDict {
  constructor(readonly entries: ReadonlyArray<readonly [string, QValue]>) {}

  get(key: string): QValue | undefined {
    for (const [name, value] of this.entries) if (name === key) return value
    return undefined
  }

  has(key: string): boolean {
    return this.entries.some(([name]) => name === key)
  }

  /** The member names in QEMU's order. */
  get keys(): ReadonlyArray<string> {
    return qemuOrder(this.entries.map(([name]) => name))
  }
}

/** A value read from the wire. @internal */
export type QValue = null | boolean | string | QNum | QDict | ReadonlyArray<QValue>

const encoder = new TextEncoder()

/** The hash of QEMU's dictionaries (tdb's), over the key's UTF-8 bytes, in unsigned 32-bit arithmetic. */
const tdbHash = (key: string): number => {
  const bytes = encoder.encode(key)
  let value = Math.imul(0x238F13AF, bytes.length) >>> 0
  for (let i = 0; i < bytes.length; i++) {
    value = (value + ((bytes[i] << ((i * 5) % 24)) >>> 0)) >>> 0
  }
  return (Math.imul(1103515243, value) + 12345) >>> 0
}

const buckets = 512

/** The bucket of each key, remembered: a handful of keys recur in every message. */
const bucketCache = new Map<string, number>()

const bucketOf = (key: string): number => {
  let bucket = bucketCache.get(key)
  if (bucket === undefined) {
    bucket = tdbHash(key) % buckets
    if (bucketCache.size < 4096) bucketCache.set(key, bucket)
  }
  return bucket
}

/**
 * Keys given in insertion order (each once), in the order QEMU iterates them: by bucket, and within
 * a bucket the newest first.
 *
 * @internal
 */
export const qemuOrder = (keys: ReadonlyArray<string>): Array<string> =>
  keys
    .map((key, index) => ({ key, index, bucket: bucketOf(key) }))
    .sort((a, b) => a.bucket - b.bucket || b.index - a.index)
    .map(({ key }) => key)

/**
 * The JavaScript value of a value read from the wire: numbers become numbers, objects plain objects
 * (a member named `__proto__` is an own property, as with `JSON.parse`).
 *
 * @internal
 */
export const toJs = (value: QValue): unknown => {
  if (value === null || typeof value !== "object") return value
  if (value instanceof QNum) return value.value
  if (value instanceof QDict) {
    const object: Record<string, unknown> = {}
    for (const [key, member] of value.entries) {
      Object.defineProperty(object, key, { value: toJs(member), enumerable: true, writable: true, configurable: true })
    }
    return object
  }
  return value.map(toJs)
}
