/**
 * The line framer, checked against a reference splitter that sees the whole input at once: whatever
 * the chunks the bytes arrive in, the framer hands on the same lines, and rejects a line as too long
 * exactly when the reference does.
 *
 * The reference: split the text at each `\n`, drop one `\r` before it, and measure each line in bytes,
 * without its terminator. A line longer than `maxBytes` is rejected, and nothing after it is read. A
 * partial line at the end (no `\n` yet) is rejected as soon as it holds more than `maxBytes`, except
 * when the one byte over is a `\r`: that may be the start of a `\r\n` terminator.
 */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { LineFramer } from "../../src/internal/framer.js"

interface Framed {
  readonly lines: ReadonlyArray<string>
  readonly tooLong: boolean
}

const bytesOf = (text: string): number => Buffer.byteLength(text, "utf8")

const reference = (text: string, maxBytes: number): Framed => {
  const parts = text.split("\n")
  const partial = parts.pop()!
  const lines: Array<string> = []
  for (const part of parts) {
    const line = part.endsWith("\r") ? part.slice(0, -1) : part
    if (bytesOf(line) > maxBytes) return { lines, tooLong: true }
    lines.push(line)
  }
  const held = bytesOf(partial)
  return { lines, tooLong: held > maxBytes && !(held === maxBytes + 1 && partial.endsWith("\r")) }
}

/** Runs a framer over the chunks; also checks that it never holds more than `maxBytes + 1` bytes. */
const frame = (chunks: ReadonlyArray<Buffer>, maxBytes: number): Framed => {
  const lines: Array<string> = []
  let rejections = 0
  const framer = new LineFramer(maxBytes, {
    line: (text) => {
      lines.push(text)
      return true
    },
    tooLong: (bytes) => {
      expect(bytes).toBeGreaterThan(maxBytes)
      rejections++
    }
  })
  for (const chunk of chunks) {
    framer.push(chunk)
    expect(framer.pendingBytes).toBeLessThanOrEqual(maxBytes + 1)
  }
  expect(rejections).toBeLessThanOrEqual(1)
  if (rejections === 1) expect(framer.isStopped).toBe(true)
  return { lines, tooLong: rejections === 1 }
}

/**
 * The bytes of `text` cut at `cuts` (byte offsets, in any order, duplicates and out-of-range ones
 * ignored). Chunks are never empty: a socket does not deliver empty chunks.
 */
const chunked = (text: string, cuts: ReadonlyArray<number>): Array<Buffer> => {
  const bytes = Buffer.from(text, "utf8")
  const at = [...new Set(cuts.filter((cut) => cut > 0 && cut < bytes.length))].sort((a, b) => a - b)
  return [0, ...at].map((start, i) => bytes.subarray(start, at[i] ?? bytes.length)).filter((c) => c.length > 0)
}

/** Every way of cutting the bytes of `text` into two or three chunks, and the bytes whole. */
const everyCut = function*(text: string): Generator<Array<Buffer>> {
  const length = bytesOf(text)
  yield chunked(text, [])
  for (let i = 1; i < length; i++) {
    for (let j = i; j < length; j++) yield chunked(text, [i, j])
  }
}

const expectSameAsReference = (text: string, maxBytes: number, cuts: ReadonlyArray<number>): void => {
  expect(frame(chunked(text, cuts), maxBytes)).toEqual(reference(text, maxBytes))
}

// Characters of one to four bytes in UTF-8, and a `\r` that is not part of a terminator.
const characters = ["a", "{", "\"", " ", "é", "ß", "€", "名", "😀", "𝄞", "\r"]

/** A line's text of exactly `bytes` bytes: `start`'s characters while they fit, then `a`s. */
const sized = (start: ReadonlyArray<string>, bytes: number): string => {
  let text = ""
  for (const character of start) {
    if (bytesOf(text + character) > bytes) break
    text += character
  }
  return text + "a".repeat(bytes - bytesOf(text))
}

/** A line's text: any characters, or one of exactly `maxBytes - 1`, `maxBytes` or `maxBytes + 1` bytes. */
const lineText = (maxBytes: number): fc.Arbitrary<string> =>
  fc.oneof(
    fc.array(fc.constantFrom(...characters), { maxLength: 8 }).map((cs) => cs.join("")),
    fc.tuple(fc.constantFrom(-1, 0, 1), fc.array(fc.constantFrom(...characters), { maxLength: 8 })).map((
      [over, start]
    ) => sized(start, maxBytes + over))
  )

/** A whole input: lines ended by `\n` or `\r\n`, then maybe a partial line, cut into chunks anywhere. */
const input = fc.integer({ min: 1, max: 24 }).chain((maxBytes) =>
  fc.record({
    maxBytes: fc.constant(maxBytes),
    text: fc.tuple(
      fc.array(fc.tuple(lineText(maxBytes), fc.constantFrom("\n", "\r\n")), { maxLength: 6 }),
      fc.option(fc.oneof(lineText(maxBytes), lineText(maxBytes).map((text) => text + "\r")), { nil: undefined })
    ).map(([lines, partial]) => lines.map(([text, end]) => text + end).join("") + (partial ?? "")),
    cuts: fc.array(fc.nat({ max: 200 }), { maxLength: 12 })
  })
)

describe("LineFramer", () => {
  it.prop(
    "frames as the reference does, whatever the chunks",
    [input],
    ([{ cuts, maxBytes, text }]) => expectSameAsReference(text, maxBytes, cuts),
    { fastCheck: { numRuns: 2_000 } }
  )

  it.prop(
    "a chunk per byte: multi-byte characters and `\\r\\n` always split",
    [input],
    ([{ maxBytes, text }]) => expectSameAsReference(text, maxBytes, Array.from({ length: bytesOf(text) }, (_, i) => i)),
    { fastCheck: { numRuns: 500 } }
  )

  describe("edge cases, in every cut into up to three chunks", () => {
    const cases: ReadonlyArray<[string, string, number, Framed]> = [
      ["a line of exactly maxBytes, ended by \\n", "abcdefgh\nnext\n", 8, {
        lines: ["abcdefgh", "next"],
        tooLong: false
      }],
      ["a line of exactly maxBytes, ended by \\r\\n (one byte over is its \\r)", "abcdefgh\r\nnext\r\n", 8, {
        lines: ["abcdefgh", "next"],
        tooLong: false
      }],
      ["a line of maxBytes + 1 bytes, rejected", "ok\r\nabcdefghi\r\nnever\r\n", 8, { lines: ["ok"], tooLong: true }],
      ["a line of maxBytes + 1 bytes whose last is a \\r of its own", "abcdefgh\r\r\n", 8, {
        lines: [],
        tooLong: true
      }],
      ["a partial line of maxBytes bytes and a \\r: not rejected yet", "ok\nabcdefgh\r", 8, {
        lines: ["ok"],
        tooLong: false
      }],
      ["a partial line of maxBytes + 1 bytes: rejected", "ok\nabcdefghi", 8, { lines: ["ok"], tooLong: true }],
      ["multi-byte characters up to maxBytes exactly", "😀€é\r\n名a😀\r\n", 9, {
        lines: ["😀€é", "名a😀"],
        tooLong: false
      }],
      ["multi-byte characters one byte over maxBytes", "😀€é\r\n😀€éa\r\n", 9, { lines: ["😀€é"], tooLong: true }],
      ["empty lines and bare \\r\\n", "\r\n\n\r\nx\r\n", 1, { lines: ["", "", "", "x"], tooLong: false }],
      ["a \\r inside a line is kept", "a\rb\r\n\r\r\n", 3, { lines: ["a\rb", "\r"], tooLong: false }]
    ]
    for (const [name, text, maxBytes, expected] of cases) {
      it(name, () => {
        expect(reference(text, maxBytes)).toEqual(expected)
        for (const chunks of everyCut(text)) expect(frame(chunks, maxBytes)).toEqual(expected)
      })
    }
  })
})
