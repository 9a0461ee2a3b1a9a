/**
 * QEMU's JSON writer, as `QmpTestServer` writes with it: what QEMU 7.2 puts on the wire for a value.
 *
 * - Members in QEMU's order (`qobject.ts`); `": "` after a name, `", "` between items.
 * - Strings: `"`, `\` and the control characters `\b \f \n \r \t` escaped by name, every other
 *   character below U+0020 or from U+007F on as `\uXXXX` (upper-case hex; a character beyond U+FFFF
 *   as its surrogate pair). The output is plain ASCII.
 * - Integers that QEMU holds as 64-bit integers as digits; every other number as `%.17g` does.
 * - Pretty (`-mon ...,pretty=on`): a newline and four spaces per level before each member and before
 *   each closing bracket, so that even an empty object spans two lines (`{` then `}`).
 *
 * JavaScript values are written as `JSON.stringify` would take them: `toJSON` is used, a member whose
 * value is `undefined`, a function or a symbol is left out, such an item of an array is `null`, a
 * non-finite number is `null`; a `bigint` or a cycle throws a `TypeError`.
 *
 * @internal
 */
import { QDict, qemuOrder, QNum } from "./qobject.js"

/** How deep a value may nest before it is taken for a cycle. */
const maxDepth = 1024

const hex4 = (code: number): string => "\\u" + code.toString(16).toUpperCase().padStart(4, "0")

/** A string as QEMU quotes it. @internal */
export const quote = (text: string): string => {
  let out = "\""
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    switch (code) {
      case 0x22:
        out += "\\\""
        continue
      case 0x5c:
        out += "\\\\"
        continue
      case 0x08:
        out += "\\b"
        continue
      case 0x0c:
        out += "\\f"
        continue
      case 0x0a:
        out += "\\n"
        continue
      case 0x0d:
        out += "\\r"
        continue
      case 0x09:
        out += "\\t"
        continue
    }
    if (code >= 0x20 && code < 0x7f) {
      out += text[i]
    } else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const low = text.charCodeAt(i + 1)
      if (low >= 0xdc00 && low <= 0xdfff) {
        out += hex4(code) + hex4(low)
        i++
      } else {
        out += hex4(0xfffd)
      }
    } else if (code >= 0xd800 && code <= 0xdfff) {
      // A lone surrogate is no character: QEMU writes the replacement character for what it cannot decode.
      out += hex4(0xfffd)
    } else {
      out += hex4(code)
    }
  }
  return out + "\""
}

/**
 * A double as C's `printf("%.17g")` writes it: 17 significant digits, trailing zeros dropped, an
 * exponent (of at least two digits) when it is below -4 or from 17 on.
 *
 * @internal
 */
export const formatDouble = (value: number): string => {
  if (Number.isNaN(value)) return "nan"
  if (!Number.isFinite(value)) return value > 0 ? "inf" : "-inf"
  if (value === 0) return Object.is(value, -0) ? "-0" : "0"
  const [mantissa, exponentText] = value.toExponential(16).split("e")
  const exponent = Number(exponentText)
  const negative = mantissa.startsWith("-")
  const digits = mantissa.replace("-", "").replace(".", "")
  let text: string
  if (exponent < -4 || exponent >= 17) {
    const fraction = digits.slice(1).replace(/0+$/, "")
    const sign = exponent < 0 ? "-" : "+"
    text = digits[0] + (fraction === "" ? "" : "." + fraction) + "e" + sign +
      String(Math.abs(exponent)).padStart(2, "0")
  } else if (exponent >= 0) {
    const whole = digits.slice(0, exponent + 1)
    const fraction = digits.slice(exponent + 1).replace(/0+$/, "")
    text = whole + (fraction === "" ? "" : "." + fraction)
  } else {
    const fraction = ("0".repeat(-exponent - 1) + digits).replace(/0+$/, "")
    text = "0." + fraction
  }
  return negative ? "-" + text : text
}

/** A JavaScript number as QEMU would write the value it parsed from it. */
const formatNumber = (value: number): string => {
  if (!Number.isFinite(value)) return "null"
  if (Number.isSafeInteger(value)) return Object.is(value, -0) ? "-0" : String(value)
  return formatDouble(value)
}

class Writer {
  private out = ""
  constructor(private readonly pretty: boolean) {}

  private newline(depth: number): void {
    if (this.pretty) this.out += "\n" + " ".repeat(depth * 4)
  }

  write(value: unknown, depth: number): void {
    if (depth > maxDepth) throw new TypeError("Converting circular structure to JSON (or nested too deeply)")
    if (value === null) {
      this.out += "null"
      return
    }
    switch (typeof value) {
      case "boolean":
        this.out += value ? "true" : "false"
        return
      case "number":
        this.out += formatNumber(value)
        return
      case "string":
        this.out += quote(value)
        return
      case "bigint":
        throw new TypeError("Do not know how to serialize a BigInt")
      case "object":
        break
      default:
        this.out += "null"
        return
    }
    if (value instanceof QNum) {
      this.out += value.text
      return
    }
    if (value instanceof QDict) {
      const members = new Map(value.entries)
      return this.object(value.keys.map((key) => [key, members.get(key)]), depth)
    }
    if (typeof (value as { toJSON?: unknown }).toJSON === "function") {
      return this.write((value as { toJSON: () => unknown }).toJSON(), depth + 1)
    }
    if (Array.isArray(value)) {
      this.out += "["
      value.forEach((item, i) => {
        if (i > 0) this.out += this.pretty ? "," : ", "
        this.newline(depth + 1)
        this.write(
          item === undefined || typeof item === "function" || typeof item === "symbol" ? null : item,
          depth + 1
        )
      })
      this.newline(depth)
      this.out += "]"
      return
    }
    const record = value as Record<string, unknown>
    const keys = Object.keys(record).filter((key) => {
      const member = record[key]
      return member !== undefined && typeof member !== "function" && typeof member !== "symbol"
    })
    this.object(qemuOrder(keys).map((key) => [key, record[key]]), depth)
  }

  private object(members: ReadonlyArray<readonly [string, unknown]>, depth: number): void {
    this.out += "{"
    members.forEach(([key, member], i) => {
      if (i > 0) this.out += this.pretty ? "," : ", "
      this.newline(depth + 1)
      this.out += quote(key) + ": "
      this.write(member, depth + 1)
    })
    this.newline(depth)
    this.out += "}"
  }

  get text(): string {
    return this.out
  }
}

/**
 * A value as QEMU writes it, without a terminator; pretty as `pretty=on` writes it, with `\n` between
 * lines (the monitor turns each into `\r\n`).
 *
 * @internal
 */
export const stringify = (value: unknown, pretty = false): string => {
  const writer = new Writer(pretty)
  writer.write(value, 0)
  return writer.text
}

/**
 * A message as QEMU's monitor sends it: the JSON, a newline, and every `\n` turned into `\r\n`.
 *
 * @internal
 */
export const message = (value: unknown, pretty = false): string =>
  (pretty ? stringify(value, true).replaceAll("\n", "\r\n") : stringify(value)) + "\r\n"
