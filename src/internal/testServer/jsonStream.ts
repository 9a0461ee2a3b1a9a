/**
 * QEMU's JSON streamer, as `QmpTestServer` reads its input with it: the bytes of a connection, in
 * chunks cut anywhere, become messages (values) and parse errors, exactly where QEMU 7.2's lexer and
 * streamer find them. Nothing here looks for newlines.
 *
 * - The lexer reads byte by byte. Whitespace (space, tab, `\r`, `\n`) separates tokens; `[a-z]+` is a
 *   keyword (the parser rejects the unknown ones); numbers follow RFC 8259 (no leading zero, no bare
 *   `.`); strings are double- or single-quoted and may not hold a control character, 0xFE or 0xFF.
 *   A number or a keyword ends only at the byte after it, so a top-level `42` waits for that byte.
 * - A byte that cannot continue the token is a lexical error: "JSON parse error, stray '...'" with
 *   the token so far, and the lexer skips to the next structural character (`{ } [ ] : ,`), control
 *   character, 0xFE or 0xFF, where it starts afresh.
 * - The streamer counts braces and brackets: a message ends when both are back to zero (so a string
 *   or a number alone is a message too), or when either goes below zero (a stray `}` is one of its
 *   own). More than 1024 levels, a message of more than 64 MiB of tokens or of more than 2 Mi tokens
 *   is an error, reported at once; the rest of such a message is then read as new input.
 * - At the end of the input, a message not finished yet is dropped, without a reply: QEMU does not
 *   flush its parser when a client hangs up.
 *
 * @internal
 */
import type { Token, TokenType } from "./jsonParser.js"
import { decodeCString, JsonError, parse } from "./jsonParser.js"
import type { QValue } from "./qobject.js"

// Lexer states, as QEMU numbers them (what matters is that they differ from the tokens below).
const ERROR = 0
const IN_RECOVERY = 1
const IN_DQ_STRING_ESCAPE = 2
const IN_DQ_STRING = 3
const IN_SQ_STRING_ESCAPE = 4
const IN_SQ_STRING = 5
const IN_ZERO = 6
const IN_EXP_DIGITS = 7
const IN_EXP_SIGN = 8
const IN_EXP_E = 9
const IN_MANTISSA = 10
const IN_MANTISSA_DIGITS = 11
const IN_DIGITS = 12
const IN_SIGN = 13
const IN_KEYWORD = 14
const IN_START = 15
const STATES = 16

// Tokens: a transition to one of these ends a token of that type.
const LCURLY = 100
const RCURLY = 101
const LSQUARE = 102
const RSQUARE = 103
const COLON = 104
const COMMA = 105
const INTEGER = 106
const FLOAT = 107
const KEYWORD = 108
const STRING = 109

/** The byte is not part of the token that ends: it is read again in the next state. */
const LOOKAHEAD = 0x80

const tokenTypes: Record<number, TokenType> = {
  [LCURLY]: "{",
  [RCURLY]: "}",
  [LSQUARE]: "[",
  [RSQUARE]: "]",
  [COLON]: ":",
  [COMMA]: ",",
  [INTEGER]: "integer",
  [FLOAT]: "float",
  [KEYWORD]: "keyword",
  [STRING]: "string"
}

const code = (char: string): number => char.charCodeAt(0)

/** QEMU's transition table: `table[state][byte]`, each entry a state or token, maybe with LOOKAHEAD. */
const table: ReadonlyArray<Uint8Array> = (() => {
  const rows = Array.from({ length: STATES }, () => new Uint8Array(256)) // ERROR everywhere by default
  const range = (row: Uint8Array, from: number, to: number, value: number) => row.fill(value, from, to + 1)
  const set = (row: Uint8Array, chars: string, value: number) => {
    for (const char of chars) row[code(char)] = value
  }
  const terminal = (row: Uint8Array, token: number) => row.fill(token | LOOKAHEAD)
  const digits = "0123456789"

  // Error recovery: skip to a structural character, a control character other than tab, or 0xFE/0xFF.
  const recovery = rows[IN_RECOVERY]
  range(recovery, 0x00, 0x1f, IN_START | LOOKAHEAD)
  range(recovery, 0x20, 0xfd, IN_RECOVERY)
  range(recovery, 0xfe, 0xff, IN_START | LOOKAHEAD)
  recovery[code("\t")] = IN_RECOVERY
  set(recovery, "[]{}:,", IN_START | LOOKAHEAD)

  range(rows[IN_DQ_STRING_ESCAPE], 0x20, 0xfd, IN_DQ_STRING)
  range(rows[IN_DQ_STRING], 0x20, 0xfd, IN_DQ_STRING)
  rows[IN_DQ_STRING][code("\\")] = IN_DQ_STRING_ESCAPE
  rows[IN_DQ_STRING][code("\"")] = STRING
  range(rows[IN_SQ_STRING_ESCAPE], 0x20, 0xfd, IN_SQ_STRING)
  range(rows[IN_SQ_STRING], 0x20, 0xfd, IN_SQ_STRING)
  rows[IN_SQ_STRING][code("\\")] = IN_SQ_STRING_ESCAPE
  rows[IN_SQ_STRING][code("'")] = STRING

  terminal(rows[IN_ZERO], INTEGER)
  set(rows[IN_ZERO], digits, ERROR)
  rows[IN_ZERO][code(".")] = IN_MANTISSA

  terminal(rows[IN_EXP_DIGITS], FLOAT)
  set(rows[IN_EXP_DIGITS], digits, IN_EXP_DIGITS)
  set(rows[IN_EXP_SIGN], digits, IN_EXP_DIGITS)
  set(rows[IN_EXP_E], "-+", IN_EXP_SIGN)
  set(rows[IN_EXP_E], digits, IN_EXP_DIGITS)

  terminal(rows[IN_MANTISSA_DIGITS], FLOAT)
  set(rows[IN_MANTISSA_DIGITS], digits, IN_MANTISSA_DIGITS)
  set(rows[IN_MANTISSA_DIGITS], "eE", IN_EXP_E)
  set(rows[IN_MANTISSA], digits, IN_MANTISSA_DIGITS)

  terminal(rows[IN_DIGITS], INTEGER)
  set(rows[IN_DIGITS], digits, IN_DIGITS)
  set(rows[IN_DIGITS], "eE", IN_EXP_E)
  rows[IN_DIGITS][code(".")] = IN_MANTISSA
  rows[IN_SIGN][code("0")] = IN_ZERO
  set(rows[IN_SIGN], "123456789", IN_DIGITS)

  terminal(rows[IN_KEYWORD], KEYWORD)
  range(rows[IN_KEYWORD], code("a"), code("z"), IN_KEYWORD)

  const start = rows[IN_START]
  start[code("\"")] = IN_DQ_STRING
  start[code("'")] = IN_SQ_STRING
  start[code("0")] = IN_ZERO
  set(start, "123456789", IN_DIGITS)
  start[code("-")] = IN_SIGN
  start[code("{")] = LCURLY
  start[code("}")] = RCURLY
  start[code("[")] = LSQUARE
  start[code("]")] = RSQUARE
  start[code(",")] = COMMA
  start[code(":")] = COLON
  range(start, code("a"), code("z"), IN_KEYWORD)
  set(start, " \t\r\n", IN_START)
  return rows
})()

const maxTokenSize = 64 * 1024 * 1024
const maxTokenCount = 2 * 1024 * 1024
const maxNesting = 1024

/** What the streamer hands on: a value, or QEMU's description of why the input is not one. @internal */
export type Message = QValue | JsonError

/**
 * One connection's streamer: `push` its bytes as they come; each message is handed to `emit` as soon
 * as its last byte (or, for a number or keyword, the byte after it) is read.
 *
 * @internal
 */
export class JsonStream {
  private state = IN_START
  private token: Array<number> = []
  private tokens: Array<Token> = []
  private tokenSize = 0
  private braces = 0
  private brackets = 0

  constructor(private readonly emit: (message: Message) => void) {}

  push(chunk: Uint8Array): void {
    for (let i = 0; i < chunk.length; i++) this.feed(chunk[i])
  }

  private feed(byte: number): void {
    let consumed = false
    while (!consumed) {
      const entry = table[this.state][byte]
      let next = entry & ~LOOKAHEAD
      consumed = (entry & LOOKAHEAD) === 0
      if (consumed) this.token.push(byte)
      if (next >= LCURLY) {
        this.process(next)
        this.token = []
        next = IN_START
      } else if (next === IN_START) {
        this.token = []
      } else if (next === ERROR) {
        this.process(ERROR)
        this.token = []
        next = IN_RECOVERY
      } else if (next === IN_RECOVERY) {
        this.token = []
      }
      this.state = next
    }
    // No single token may grow without bound: one this long is handed on as it is, and fails.
    if (this.token.length > maxTokenSize) {
      this.process(this.state)
      this.token = []
      this.state = IN_START
    }
  }

  /** The streamer's part: message boundaries and limits, for one token. */
  private process(type: number): void {
    const bytes = Uint8Array.from(this.token)
    switch (type) {
      case LCURLY:
        this.braces++
        break
      case RCURLY:
        this.braces--
        break
      case LSQUARE:
        this.brackets++
        break
      case RSQUARE:
        this.brackets--
        break
      case ERROR:
        return this.done(new JsonError(`JSON parse error, stray '${decodeCString(bytes)}'`))
    }
    if (this.tokenSize + bytes.length + 1 > maxTokenSize) {
      return this.done(new JsonError("JSON token size limit exceeded"))
    }
    if (this.tokens.length + 1 > maxTokenCount) return this.done(new JsonError("JSON token count limit exceeded"))
    if (this.brackets + this.braces > maxNesting) return this.done(new JsonError("JSON nesting depth limit exceeded"))
    // A token the table cut short for its size has a lexer state as its type: it parses as no value.
    this.tokens.push({ type: tokenTypes[type] ?? ",", bytes })
    this.tokenSize += bytes.length
    if ((this.braces > 0 || this.brackets > 0) && this.braces >= 0 && this.brackets >= 0) return
    this.done(parse(this.tokens))
  }

  private done(message: Message): void {
    this.braces = 0
    this.brackets = 0
    this.tokens = []
    this.tokenSize = 0
    this.emit(message)
  }
}
