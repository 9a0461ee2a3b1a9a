/**
 * QmpTestServer's reading and writing of JSON, as QEMU's: the streamer finds the same messages and
 * errors whatever the chunks the bytes arrive in, and the writer writes values as QEMU does. (The
 * conformance suite compares both with a real QEMU; these run without one.)
 */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { JsonError } from "../../src/internal/testServer/jsonParser.js"
import { JsonStream } from "../../src/internal/testServer/jsonStream.js"
import { qemuOrder } from "../../src/internal/testServer/qobject.js"
import { formatDouble, stringify } from "../../src/internal/testServer/writer.js"

/** What the streamer hands on for `chunks`, as text: each value as QEMU writes it, each error as `!desc`. */
const stream = (chunks: ReadonlyArray<Uint8Array>): Array<string> => {
  const out: Array<string> = []
  const streamer = new JsonStream((message) =>
    out.push(message instanceof JsonError ? `!${message.desc}` : stringify(message))
  )
  for (const chunk of chunks) streamer.push(chunk)
  return out
}

const cut = (bytes: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const at = [...new Set(cuts.filter((c) => c > 0 && c < bytes.length))].sort((a, b) => a - b)
  return [0, ...at].map((start, i) => bytes.subarray(start, at[i] ?? bytes.length))
}

// Bytes that matter to the lexer: structure, strings and escapes, numbers, keywords, blanks,
// multi-byte characters and bytes that are never UTF-8.
const fragments = [
  "{",
  "}",
  "[",
  "]",
  ":",
  ",",
  "\"",
  "'",
  "\\",
  "\\u00e9",
  "\\ud83d\\ude00",
  "a",
  "execute",
  "\"execute\"",
  "\"query-status\"",
  "0",
  "12",
  "-",
  ".",
  "e",
  "true",
  "null",
  " ",
  "\r\n",
  "\t",
  "é",
  "😀",
  "@"
]
const special = [0x00, 0x01, 0xc0, 0x80, 0xfe, 0xff]

const bytes = fc.array(
  fc.oneof(
    fc.constantFrom(...fragments).map((text) => Array.from(Buffer.from(text))),
    fc.constantFrom(...special).map((byte) => [byte])
  ),
  { maxLength: 40 }
).map((parts) => Uint8Array.from(parts.flat()))

describe("JsonStream", () => {
  it.prop(
    "finds the same messages and errors whatever the chunks",
    [bytes, fc.array(fc.nat({ max: 200 }), { maxLength: 10 })],
    ([input, cuts]) => {
      expect(stream(cut(input, cuts))).toEqual(stream([input]))
    },
    { fastCheck: { numRuns: 2_000 } }
  )

  it("a byte at a time, as whole", () => {
    const input = Buffer.from("{\"execute\":\"query-status\",\"id\":[1,\"é\"]} 42 {\"a\":1] }@{'x':'y'}\n7")
    const whole = stream([input])
    expect(stream(Array.from(input, (byte) => Uint8Array.of(byte)))).toEqual(whole)
    expect(whole).toEqual([
      "{\"execute\": \"query-status\", \"id\": [1, \"\\u00E9\"]}",
      "42",
      "!JSON parse error, expected separator in dict",
      "!JSON parse error, expecting value",
      "!JSON parse error, stray '@'",
      "{\"x\": \"y\"}"
      // `7` waits for the byte that ends it.
    ])
  })

  it("QEMU's limits: 1024 levels, then the rest is read afresh", () => {
    expect(stream([Buffer.from("[".repeat(1024) + "]".repeat(1024))])).toHaveLength(1)
    const deep = stream([Buffer.from("[".repeat(1025) + "]".repeat(1025))])
    expect(deep[0]).toBe("!JSON nesting depth limit exceeded")
    expect(deep.slice(1)).toEqual(Array(1025).fill("!JSON parse error, expecting value"))
  })
})

describe("QEMU's writer", () => {
  it("writes doubles as %.17g", () => {
    const cases: ReadonlyArray<readonly [number, string]> = [
      [1.5, "1.5"],
      [0.1, "0.10000000000000001"],
      [100, "100"],
      [-0, "-0"],
      [1e-7, "9.9999999999999995e-08"],
      [0.0001, "0.0001"],
      [1e16, "10000000000000000"],
      [1e17, "1e+17"],
      [Number("123456789012345678901234"), "1.2345678901234569e+23"],
      [Number("-9223372036854775809"), "-9.2233720368547758e+18"],
      [Infinity, "inf"]
    ]
    for (const [value, text] of cases) expect(formatDouble(value)).toBe(text)
  })

  it("orders members as QEMU's hash table does", () => {
    expect(qemuOrder(["running", "singlestep", "status"])).toEqual(["status", "singlestep", "running"])
    expect(qemuOrder(["error", "id"])).toEqual(["id", "error"])
    expect(qemuOrder(["return", "id"])).toEqual(["return", "id"])
    expect(qemuOrder(["b", "a", "execute"])).toEqual(["a", "execute", "b"])
  })

  it("escapes what is not printable ASCII, and writes pretty as pretty=on", () => {
    expect(stringify("é€😀\u0000\u007f/\"\\\n")).toBe("\"\\u00E9\\u20AC\\uD83D\\uDE00\\u0000\\u007F/\\\"\\\\\\n\"")
    expect(stringify({ a: [1, {}], b: [] }, true)).toBe(
      "{\n    \"a\": [\n        1,\n        {\n        }\n    ],\n    \"b\": [\n    ]\n}"
    )
  })
})
