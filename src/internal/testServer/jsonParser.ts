/**
 * QEMU's JSON parser, as `QmpTestServer` runs it on the tokens of one message (`jsonStream.ts`
 * delimits them): the values it builds and the errors it reports, with QEMU 7.2's texts.
 *
 * Past RFC 8259, QEMU accepts single-quoted strings and `\'` in strings, rejects a duplicate member
 * name ("duplicate key"), and decodes strings as modified UTF-8 (`\xC0\x80` is U+0000): an invalid
 * sequence, a surrogate, a noncharacter or an overlong form is an error. Only the first error of a
 * message is reported.
 *
 * @internal
 */
import type { QValue } from "./qobject.js"
import { QDict, QNum } from "./qobject.js"
import { formatDouble } from "./writer.js"

/** @internal */
export type TokenType = "{" | "}" | "[" | "]" | ":" | "," | "integer" | "float" | "keyword" | "string"

/** One token: its type and its bytes. @internal */
export interface Token {
  readonly type: TokenType
  readonly bytes: Uint8Array
}

/** A parse error: the description QEMU gives. @internal */
export class JsonError {
  constructor(readonly desc: string) {}
}

const isValidCodepoint = (cp: number): boolean =>
  cp <= 0x10ffff && !(cp >= 0xfdd0 && cp <= 0xfdef) && (cp & 0xfffe) !== 0xfffe && !(cp >= 0xd800 && cp <= 0xdfff)

const minCodepoint = [0x80, 0x800, 0x10000, 0x200000, 0x4000000]

/**
 * Decodes the modified-UTF-8 sequence at `bytes[at]`: its code point (-1 if invalid) and where it ends.
 * A sequence short of continuation bytes ends after the ones it has.
 *
 * @internal
 */
export const codepointAt = (bytes: Uint8Array, at: number): { readonly cp: number; readonly end: number } => {
  const first = bytes[at]
  if (first < 0x80) return { cp: first, end: at + 1 }
  if (first >= 0xfe || (first & 0x40) === 0) return { cp: -1, end: at + 1 }
  let length = 0
  let mask = 0x80
  for (; (first & mask) !== 0; mask >>= 1) length++
  let cp = first & (mask - 1)
  let p = at + 1
  for (let i = 1; i < length; i++) {
    const byte = p < bytes.length ? bytes[p] : 0
    if ((byte & 0xc0) !== 0x80) return { cp: -1, end: p }
    p++
    cp = cp * 64 + (byte & 0x3f)
  }
  if (!isValidCodepoint(cp)) return { cp: -1, end: p }
  if (cp < minCodepoint[length - 2] && !(cp === 0 && length === 2)) return { cp: -1, end: p }
  return { cp, end: p }
}

const hexValue = (byte: number): number =>
  byte >= 0x30 && byte <= 0x39 ? byte - 0x30 : byte >= 0x61 && byte <= 0x66 ?
    byte - 0x57 :
    byte >= 0x41 && byte <= 0x46
    ? byte - 0x37
    : -1

/** Four hex digits at `at`, or -1. */
const hex4 = (bytes: Uint8Array, at: number): number => {
  let cp = 0
  for (let i = 0; i < 4; i++) {
    const digit = at + i < bytes.length ? hexValue(bytes[at + i]) : -1
    if (digit < 0) return -1
    cp = cp * 16 + digit
  }
  return cp
}

const latin1 = (bytes: Uint8Array, start: number, end: number): string =>
  String.fromCharCode(...bytes.subarray(start, end))

/**
 * Bytes as QEMU quotes a C string it did not check: up to the first NUL byte, decoded as modified
 * UTF-8, each invalid sequence one U+FFFD.
 *
 * @internal
 */
export const decodeCString = (bytes: Uint8Array): string => {
  let out = ""
  for (let p = 0; p < bytes.length && bytes[p] !== 0;) {
    const { cp, end } = codepointAt(bytes, p)
    out += String.fromCodePoint(cp < 0 ? 0xfffd : cp)
    p = Math.max(end, p + 1)
  }
  return out
}

/** The string a string token stands for, or the error QEMU reports. */
const parseString = (bytes: Uint8Array): string | JsonError => {
  const quote = bytes[0]
  let out = ""
  let p = 1
  while (bytes[p] !== quote) {
    if (bytes[p] === 0x5c) {
      const begin = p
      p++
      const escape = bytes[p++]
      switch (escape) {
        case 0x22:
          out += "\""
          break
        case 0x27:
          out += "'"
          break
        case 0x5c:
          out += "\\"
          break
        case 0x2f:
          out += "/"
          break
        case 0x62:
          out += "\b"
          break
        case 0x66:
          out += "\f"
          break
        case 0x6e:
          out += "\n"
          break
        case 0x72:
          out += "\r"
          break
        case 0x74:
          out += "\t"
          break
        case 0x75: {
          let cp = hex4(bytes, p)
          p += 4
          if (cp >= 0xd800 && cp <= 0xdbff && bytes[p] === 0x5c && bytes[p + 1] === 0x75) {
            const trailing = hex4(bytes, p + 2)
            if (trailing >= 0xdc00 && trailing <= 0xdfff) {
              cp = 0x10000 + ((cp & 0x3ff) << 10) + (trailing & 0x3ff)
              p += 6
            } else {
              cp = -1
            }
          }
          if (cp < 0 || !isValidCodepoint(cp)) {
            return new JsonError(
              `${decodeCString(bytes.subarray(begin, Math.min(p, bytes.length)))} is not a valid Unicode character`
            )
          }
          out += String.fromCodePoint(cp)
          break
        }
        default:
          return new JsonError("invalid escape sequence in string")
      }
    } else {
      const { cp, end } = codepointAt(bytes, p)
      if (cp < 0) return new JsonError("invalid UTF-8 sequence in string")
      out += String.fromCodePoint(cp)
      p = end
    }
  }
  return out
}

const int64Min = -(2n ** 63n)
const int64Max = 2n ** 63n - 1n
const uint64Max = 2n ** 64n - 1n

/** A number token as QEMU holds it: a 64-bit integer if it is one, else a double. */
const parseNumber = (token: Token): QNum => {
  const text = latin1(token.bytes, 0, token.bytes.length)
  if (token.type === "integer") {
    const value = BigInt(text)
    if (value >= int64Min && value <= int64Max || (!text.startsWith("-") && value <= uint64Max)) {
      return new QNum(value.toString(), Number(value))
    }
  }
  const double = Number(text)
  return new QNum(formatDouble(double), double)
}

class Parser {
  private at = 0
  private error: JsonError | undefined = undefined

  constructor(private readonly tokens: ReadonlyArray<Token>) {}

  private fail(desc: string): undefined {
    this.error ??= new JsonError(desc)
    return undefined
  }

  private peek(): Token | undefined {
    return this.tokens[this.at]
  }

  private pop(): Token | undefined {
    return this.tokens[this.at++]
  }

  value(): QValue | undefined {
    const token = this.peek()
    if (token === undefined) return this.fail("premature EOI")
    switch (token.type) {
      case "{":
        return this.object()
      case "[":
        return this.array()
      case "integer":
      case "float":
        this.pop()
        return parseNumber(token)
      case "string": {
        this.pop()
        const text = parseString(token.bytes)
        return text instanceof JsonError ? this.fail(text.desc) : text
      }
      case "keyword": {
        this.pop()
        const word = latin1(token.bytes, 0, token.bytes.length)
        if (word === "true") return true
        if (word === "false") return false
        if (word === "null") return null
        return this.fail(`invalid keyword '${word}'`)
      }
      default:
        return this.fail("expecting value")
    }
  }

  private pair(entries: Array<readonly [string, QValue]>): boolean {
    if (this.peek() === undefined) return !!this.fail("premature EOI")
    const key = this.value()
    if (typeof key !== "string") return !!this.fail("key is not a string in object")
    const colon = this.pop()
    if (colon === undefined) return !!this.fail("premature EOI")
    if (colon.type !== ":") return !!this.fail("missing : in object pair")
    const value = this.value()
    if (value === undefined) return !!this.fail("Missing value in dict")
    if (entries.some(([name]) => name === key)) return !!this.fail("duplicate key")
    entries.push([key, value])
    return true
  }

  private object(): QValue | undefined {
    this.pop()
    const entries: Array<readonly [string, QValue]> = []
    const peek = this.peek()
    if (peek === undefined) return this.fail("premature EOI")
    if (peek.type === "}") {
      this.pop()
      return new QDict(entries)
    }
    if (!this.pair(entries)) return undefined
    for (let token = this.pop(); token?.type !== "}"; token = this.pop()) {
      if (token === undefined) return this.fail("premature EOI")
      if (token.type !== ",") return this.fail("expected separator in dict")
      if (!this.pair(entries)) return undefined
    }
    return new QDict(entries)
  }

  private array(): QValue | undefined {
    this.pop()
    const items: Array<QValue> = []
    const peek = this.peek()
    if (peek === undefined) return this.fail("premature EOI")
    if (peek.type === "]") {
      this.pop()
      return items
    }
    const first = this.value()
    if (first === undefined) return this.fail("expecting value")
    items.push(first)
    for (let token = this.pop(); token?.type !== "]"; token = this.pop()) {
      if (token === undefined) return this.fail("premature EOI")
      if (token.type !== ",") return this.fail("expected separator in list")
      const item = this.value()
      if (item === undefined) return this.fail("expecting value")
      items.push(item)
    }
    return items
  }

  get failure(): JsonError | undefined {
    return this.error
  }
}

/**
 * Parses the tokens of one message: the value, or QEMU's error text (`"JSON parse error, ..."`).
 *
 * @internal
 */
export const parse = (tokens: ReadonlyArray<Token>): QValue | JsonError => {
  const parser = new Parser(tokens)
  const value = parser.value()
  const error = parser.failure
  if (error !== undefined || value === undefined) {
    return new JsonError(`JSON parse error, ${error?.desc ?? "expecting value"}`)
  }
  return value
}
