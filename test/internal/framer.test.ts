/**
 * The line framer (and, below, the framer of a pretty monitor), checked against a reference splitter that sees the whole input at once: whatever
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
import type { Sink } from "../../src/internal/framer.js"
import { LineFramer } from "../../src/internal/framer.js"
import { JsonFramer } from "../../src/internal/jsonFramer.js"
import { SentinelFramer } from "../../src/internal/sentinelFramer.js"

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

/**
 * The framer of a pretty monitor, against a reference that knows where each message is: whatever the
 * chunks, it hands on each message's text whole (a pretty one over many lines), and rejects a message
 * as too long exactly when the reference does: a message of more than `maxBytes`, from its first byte
 * to its last, or a partial one at the end that already holds more.
 */
describe("JsonFramer", () => {
  interface Messages {
    readonly texts: ReadonlyArray<string>
    readonly separators: ReadonlyArray<string>
    readonly partial: string
  }

  const referenceJson = ({ partial, texts }: Messages, maxBytes: number): Framed => {
    const lines: Array<string> = []
    for (const text of texts) {
      if (bytesOf(text) > maxBytes) return { lines, tooLong: true }
      lines.push(text)
    }
    return { lines, tooLong: bytesOf(partial) > maxBytes }
  }

  const frameJson = (chunks: ReadonlyArray<Buffer>, maxBytes: number): Framed => {
    const lines: Array<string> = []
    let rejections = 0
    const framer = new JsonFramer(maxBytes, {
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
      expect(framer.pendingBytes).toBeLessThanOrEqual(maxBytes)
    }
    expect(rejections).toBeLessThanOrEqual(1)
    return { lines, tooLong: rejections === 1 }
  }

  /** A message: an object or an array, pretty as QEMU's pretty monitor writes it, or compact. */
  const message = fc.tuple(
    fc.oneof(
      fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
      fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 4 })
    ),
    fc.boolean()
  ).map(([value, pretty]) => pretty ? JSON.stringify(value, null, 4).replaceAll("\n", "\r\n") : JSON.stringify(value))

  const messages = fc.record({
    texts: fc.array(message, { maxLength: 5 }),
    separators: fc.array(fc.constantFrom("\r\n", "\n", "", " ", "\r\n\r\n", "\t"), { minLength: 6, maxLength: 6 }),
    // The start of one more message, cut anywhere before its end.
    partial: fc.tuple(message, fc.nat()).map(([text, cut]) => text.slice(0, cut % text.length))
  }).map((m) => ({ ...m, partial: m.partial.trimStart() }))

  const textOf = ({ partial, separators, texts }: Messages): string =>
    texts.map((text, i) => separators[i] + text).join("") + separators[5] + partial

  it.prop(
    "frames as the reference does, whatever the chunks",
    [messages, fc.integer({ min: 1, max: 300 }), fc.array(fc.nat({ max: 2_000 }), { maxLength: 12 })],
    ([m, maxBytes, cuts]) => {
      expect(frameJson(chunked(textOf(m), cuts), maxBytes)).toEqual(referenceJson(m, maxBytes))
    },
    { fastCheck: { numRuns: 2_000 } }
  )

  it.prop(
    "a chunk per byte",
    [messages],
    ([m]) => {
      const text = textOf(m)
      expect(frameJson(chunked(text, Array.from({ length: bytesOf(text) }, (_, i) => i)), 10_000))
        .toEqual(referenceJson(m, 10_000))
    },
    { fastCheck: { numRuns: 300 } }
  )

  it("QEMU's pretty greeting and reply; brackets and quotes in strings; something that is not JSON, to its line's end", () => {
    const text =
      "{\r\n    \"QMP\": {\r\n        \"capabilities\": [\r\n            \"oob\"\r\n        ]\r\n    }\r\n}\r\n" +
      "{\r\n    \"return\": {\r\n    }\r\n}\r\n{\"a\": \"}]\\\"{\"}\r\nSSH-2.0-OpenSSH\r\n"
    const expected = {
      lines: [
        "{\r\n    \"QMP\": {\r\n        \"capabilities\": [\r\n            \"oob\"\r\n        ]\r\n    }\r\n}",
        "{\r\n    \"return\": {\r\n    }\r\n}",
        "{\"a\": \"}]\\\"{\"}",
        "SSH-2.0-OpenSSH"
      ],
      tooLong: false
    }
    expect(frameJson(chunked(text, []), 1_000)).toEqual(expected)
    for (let i = 1; i < text.length; i += 7) expect(frameJson(chunked(text, [i, i + 3]), 1_000)).toEqual(expected)
  })
})

describe("SentinelFramer, for the guest agent: lines, and 0xFF", () => {
  const agentFrame = (chunks: ReadonlyArray<Buffer | ReadonlyArray<number> | "resync">) => {
    const lines: Array<string> = []
    const framer = new SentinelFramer(100, { line: (text) => lines.push(text) > 0, tooLong: () => {} })
    for (const chunk of chunks) {
      if (chunk === "resync") framer.resync()
      else framer.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk))
    }
    return lines
  }

  it("a 0xFF ends the partial line before it (ÿ in UTF-8 is not one), and belongs to no line", () => {
    expect(agentFrame([Buffer.from("{\"a\": 1"), [0xff], Buffer.from("{\"b\": 2}\n\u00ff"), [0xff, 0x7b, 0x7d, 0x0a]]))
      .toEqual(["{\"b\": 2}", "{}"])
  })

  it("resync drops every byte up to the next 0xFF, and the partial line", () => {
    expect(agentFrame([
      Buffer.from("{\"return\": \"stale\"}\n{\"return\": \"par"),
      "resync",
      Buffer.from("tial\"}\n{\"stale\": 1}\n"),
      [0x7b, 0xff, ...Buffer.from("{\"return\": 42}\n{\"return\": {}}\n")]
    ])).toEqual(["{\"return\": \"stale\"}", "{\"return\": 42}", "{\"return\": {}}"])
  })

  it.prop(
    "without 0xFF, frames as the plain line framer does",
    [input],
    ([{ cuts, maxBytes, text }]) => {
      const chunks = chunked(text, cuts)
      const plain: Array<string> = []
      const agent: Array<string> = []
      const sink = (lines: Array<string>): Sink => ({ line: (line) => lines.push(line) > 0, tooLong: () => {} })
      const a = new LineFramer(maxBytes, sink(plain))
      const b = new SentinelFramer(maxBytes, sink(agent))
      for (const chunk of chunks) {
        a.push(chunk)
        b.push(chunk)
      }
      expect(agent).toEqual(plain)
      expect(b.isStopped).toBe(a.isStopped)
    },
    { fastCheck: { numRuns: 500 } }
  )
})
