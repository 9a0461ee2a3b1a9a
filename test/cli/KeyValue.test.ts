/**
 * The `key=value` arguments of the `qmp` tool, and its durations.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Either, FastCheck as fc } from "effect"
import { parseDuration } from "../../src/bin/cli.js"
import * as KeyValue from "../../src/bin/KeyValue.js"
import type { QmpMessage } from "../../src/index.js"

/** Does `value` hold, at any depth, a number that `predicate` accepts? */
const hasNumber = (value: unknown, predicate: (n: number) => boolean): boolean =>
  typeof value === "number"
    ? predicate(value)
    : typeof value === "object" && value !== null && Object.values(value).some((v) => hasNumber(v, predicate))

const hasUnsafeNumber = (value: unknown): boolean =>
  hasNumber(value, (n) => Number.isInteger(n) && !Number.isSafeInteger(n))

const parsed = (tokens: ReadonlyArray<string>, base?: QmpMessage.JsonObject) => {
  const result = KeyValue.parse(tokens, base)
  if (Either.isLeft(result)) throw new Error(`expected a success, got: ${result.left}`)
  return result.right
}

const failure = (tokens: ReadonlyArray<string>, base?: QmpMessage.JsonObject) => {
  const result = KeyValue.parse(tokens, base)
  if (Either.isRight(result)) throw new Error(`expected a failure, got: ${JSON.stringify(result.right)}`)
  return result.left
}

describe("KeyValue.parse", () => {
  it("parses values as JSON when they are JSON, as strings otherwise", () => {
    expect(parsed([
      "size=1048576",
      "ratio=0.5",
      "neg=-3",
      "force=true",
      "off=false",
      "nothing=null",
      "opts={\"a\":[1,\"x\"]}",
      "list=[1,2]",
      "quoted=\"text\"",
      "device=drive0",
      "path=/tmp/a b.img",
      "empty=",
      "leading=01",
      "word=truey"
    ])).toEqual({
      size: 1048576,
      ratio: 0.5,
      neg: -3,
      force: true,
      off: false,
      nothing: null,
      opts: { a: [1, "x"] },
      list: [1, 2],
      quoted: "text",
      device: "drive0",
      path: "/tmp/a b.img",
      empty: "",
      leading: "01",
      word: "truey"
    })
  })

  it("key:=value is always a string", () => {
    expect(parsed(["id:=123", "flag:=true", "obj:={\"a\":1}", "n:=null"])).toEqual({
      id: "123",
      flag: "true",
      obj: "{\"a\":1}",
      n: "null"
    })
  })

  it("splits at the first '=': the value may hold more", () => {
    expect(parsed(["command-line=info status", "url=http://h/?a=b"])).toEqual({
      "command-line": "info status",
      url: "http://h/?a=b"
    })
  })

  it("dotted keys build objects", () => {
    expect(parsed(["a.b=1"])).toEqual({ a: { b: 1 } })
    expect(parsed(["file.driver=file", "file.filename=/tmp/x.img", "node-name=n1", "file.aio.mode:=1"])).toEqual({
      file: { driver: "file", filename: "/tmp/x.img", aio: { mode: "1" } },
      "node-name": "n1"
    })
  })

  it("no tokens: an empty object", () => {
    expect(parsed([])).toEqual({})
  })

  it("adds to the --args object, which it never changes", () => {
    const base = { device: "src", opts: { a: 1 } }
    expect(parsed(["target=tgt", "opts.b=2"], base)).toEqual({ device: "src", target: "tgt", opts: { a: 1, b: 2 } })
    expect(base).toEqual({ device: "src", opts: { a: 1 } })
  })

  it("keeps a \"__proto__\" key as a plain field", () => {
    const result = parsed(["__proto__.polluted=1"])
    expect(Object.keys(result)).toEqual(["__proto__"])
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.getPrototypeOf(result)).toBe(Object.prototype)
  })

  it("rejects a token without '='", () => {
    expect(failure(["driver"])).toBe("expected key=value (or key:=string), got \"driver\"")
  })

  it("reports a token that starts with '-' as an unknown option", () => {
    expect(failure(["--bogus"])).toBe("unknown option \"--bogus\"")
    expect(failure(["--bogus=1"])).toBe("unknown option \"--bogus\"")
  })

  it("rejects empty and malformed keys", () => {
    for (const token of ["=1", ":=1", "a..b=1", ".a=1", "a.=1", "a b=1"]) {
      expect(failure([token])).toMatch(/^bad key in /)
    }
  })

  it("rejects a key given twice, or both as a value and as an object", () => {
    expect(failure(["a=1", "a=2"])).toBe("a is given twice")
    expect(failure(["a=1", "a.b=2"])).toBe("a is given a value and also used as an object (a.b)")
    expect(failure(["a.b=2", "a=1"])).toBe("a is given twice")
    expect(failure(["device=x"], { device: "src" })).toBe("device is given twice")
  })

  it("rejects malformed JSON objects and arrays rather than sending them as strings", () => {
    expect(failure(["opts={\"a\":"])).toMatch(/^opts: invalid JSON \(/)
    expect(failure(["list=[1,"])).toMatch(/^list: invalid JSON \(/)
  })

  it("rejects numbers JavaScript cannot hold exactly, and says how to send them as text", () => {
    expect(failure(["size=18446744073709551615"])).toBe(
      "size: 18446744073709551615 cannot be represented exactly as a number; use size:=18446744073709551615 for a string"
    )
    expect(failure(["big=1e400"])).toMatch(/cannot be represented exactly/)
    expect(failure(["opts={\"n\":9007199254740993}"])).toBe(
      "opts: a number in it is beyond 2^53: it cannot be represented exactly"
    )
    expect(parsed(["max=9007199254740991"])).toEqual({ max: 9007199254740991 })
  })

  it("property: a JSON value written after '=' comes back as that value", () => {
    const json = fc.jsonValue().filter((value) => {
      // Strings that are themselves JSON text are read as that JSON: the documented ambiguity, which
      // key:=value resolves.
      if (typeof value === "string") {
        try {
          JSON.parse(value)
          return false
        } catch {
          return !value.trim().startsWith("{") && !value.trim().startsWith("[")
        }
      }
      // JSON has no -0: JSON.stringify writes it as 0, at any depth.
      return !hasNumber(value, (n) => Object.is(n, -0)) && !hasUnsafeNumber(value)
    })
    fc.assert(fc.property(json, (value) => {
      const text = typeof value === "string" ? value : JSON.stringify(value)
      expect(parsed([`k=${text}`])).toEqual({ k: value })
    }))
  })

  it("property: key:=value gives the text back, whatever it is", () => {
    fc.assert(fc.property(fc.string(), (text) => {
      expect(parsed([`k:=${text}`])).toEqual({ k: text })
    }))
  })
})

describe("KeyValue.parseObject (--args)", () => {
  it("accepts a JSON object", () => {
    expect(KeyValue.parseObject("{\"device\":\"src\",\"speed\":0}")).toEqual(Either.right({ device: "src", speed: 0 }))
  })

  it("rejects invalid JSON, and JSON that is not an object", () => {
    expect(KeyValue.parseObject("{device:")).toEqual(Either.left(expect.stringMatching(/^invalid JSON \(/)))
    expect(KeyValue.parseObject("[1]")).toEqual(Either.left("expected a JSON object, got an array"))
    expect(KeyValue.parseObject("3")).toEqual(Either.left("expected a JSON object, got 3"))
    expect(KeyValue.parseObject("null")).toEqual(Either.left("expected a JSON object, got null"))
  })
})

describe("parseDuration", () => {
  it("reads 500ms, 30s, 2m, 1h, bare seconds and Effect's own form", () => {
    const millis = (text: string) => Either.map(parseDuration(text), Duration.toMillis)
    expect(millis("500ms")).toEqual(Either.right(500))
    expect(millis("30s")).toEqual(Either.right(30_000))
    expect(millis("1.5s")).toEqual(Either.right(1500))
    expect(millis("2m")).toEqual(Either.right(120_000))
    expect(millis("1h")).toEqual(Either.right(3_600_000))
    expect(millis("3")).toEqual(Either.right(3000))
    expect(millis("250 millis")).toEqual(Either.right(250))
    expect(millis("2 seconds")).toEqual(Either.right(2000))
  })

  it("rejects anything else", () => {
    for (const text of ["", "soon", "-1s", "1 parsec", "s"]) {
      expect(Either.isLeft(parseDuration(text))).toBe(true)
    }
  })
})
