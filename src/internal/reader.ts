/**
 * The reader: turns each chunk read from the socket into one batch of work for the connection's
 * processing fiber, synchronously, in the socket's data callback.
 *
 * A chunk is framed into messages, each message is parsed and sorted: events (checked with the fast
 * `isEvent` guard) go into the batch's `events`, in order; everything else (the greeting, replies,
 * malformed events, a fatal error) goes into its `items`, in order.
 *
 * Framing: QEMU writes one message per line (`LineFramer`), unless its monitor is pretty
 * (`pretty=on`): then each message spans many lines, and `JsonFramer` counts brackets. The first
 * bytes tell which: a pretty greeting begins with `{` alone on its line. The choice is made once, on
 * the first chunk, so that the default path pays one boolean check per chunk for it. The guest agent
 * never greets: its lines may be interrupted by a 0xFF (`SentinelFramer`, and `resync`).
 *
 * The reader knows nothing of the protocol's state: the processing fiber decides what a message
 * means (the first one is the greeting). The processing fiber hands a batch's events to
 * `QmpEvents.publishAll` and waits for it before it completes any reply of that batch: that is how an
 * event sent before a command's return reaches every listener before that command's `execute`
 * completes.
 *
 * Flow control: the reader counts the batches that were handed on but not processed yet. When they
 * exceed `highWater` it pauses the socket (the peer then waits, and the kernel's buffers fill), and
 * it resumes reading once processing has caught up. The unprocessed input is thus bounded by a few
 * chunks, plus one partial message of at most `maxMessageBytes`.
 *
 * The state here is mutable and touched only by the socket callback and by the processing fiber
 * (through `processed` and `stop`), never concurrently: JavaScript runs one callback at a time.
 *
 * @internal
 */
import { StringDecoder } from "node:string_decoder"
import { QmpDisconnected, QmpProtocolError } from "../QmpError.js"
import type { JsonObject, QmpEvent } from "../QmpMessage.js"
import { isEvent, isJsonObject } from "../QmpMessage.js"
import { causeMessage, preview } from "./describe.js"
import type { Sink } from "./framer.js"
import { LineFramer } from "./framer.js"
import { JsonFramer } from "./jsonFramer.js"
import { SentinelFramer } from "./sentinelFramer.js"
import { shortLivedArray } from "./shortLived.js"

/** @internal */
export type Item =
  /**
   * A JSON object that is not a valid event, in order: a reply (it has `return`, `error` or `id`), a
   * malformed event (it has `event`), or something else (the greeting is one).
   */
  | { readonly _tag: "Message"; readonly kind: "Reply" | "MalformedEvent" | "Other"; readonly message: JsonObject }
  /** Bad input that ends the connection, and the start of what was seen, if it is text. Nothing follows it. */
  | { readonly _tag: "Fatal"; readonly error: QmpProtocolError; readonly seen?: string | undefined }
  /** The connection ended. Nothing follows it. */
  | { readonly _tag: "End"; readonly reason: QmpDisconnected }

/**
 * What one chunk held: a class, with arrays from `shortLivedArray`, not literals (see `shortLived.ts`).
 *
 * @internal
 */
export class Batch {
  readonly events = shortLivedArray<QmpEvent>()
  readonly items = shortLivedArray<Item>()
  /** The chunk as text, when the wire tap is on. */
  wire: string | undefined = undefined
}

/** @internal */
export interface Options {
  readonly maxMessageBytes: number
  /**
   * `"auto"`: lines, or brackets when the first bytes are a pretty monitor's; `"agent"`: the guest
   * agent's lines, which a 0xFF byte may interrupt (it never greets).
   */
  readonly framing: "auto" | "agent"
  /** Keep each chunk's text on its batch, for the debug wire tap. */
  readonly tapWire: boolean
  /** Unprocessed batches above which the socket is paused. */
  readonly highWater: number
  /** Unprocessed batches at or below which a paused socket resumes. */
  readonly lowWater: number
}

/**
 * Where a reader hands on what it read, and how it holds the socket back: the session, whose methods
 * these are (an object with four closures would cost each connection its own).
 *
 * @internal
 */
export interface Host {
  /** Receives each batch, in order. */
  onBatch(batch: Batch): void
  /** Called once, right after a batch that ends with a `Fatal` item: stop the socket. */
  onFatal(): void
  pause(): void
  resume(): void
}

/**
 * The reader is its framer's `Sink`: the framer hands it each line.
 *
 * @internal
 */
export class Reader implements Sink {
  private framer: LineFramer | JsonFramer | SentinelFramer
  /** The framing is not chosen yet: `held` keeps the first bytes until it is. */
  private detecting: boolean
  private held: Buffer | undefined = undefined
  private batch: Batch | undefined = undefined
  private queued = 0
  private paused = false
  private readonly wire: StringDecoder | undefined

  constructor(private readonly options: Options, private readonly host: Host) {
    this.wire = options.tapWire ? new StringDecoder("utf8") : undefined
    this.detecting = options.framing === "auto"
    this.framer = options.framing === "agent" ?
      new SentinelFramer(options.maxMessageBytes, this) :
      new LineFramer(options.maxMessageBytes, this)
  }

  /** A message longer than allowed: the framer has stopped. */
  tooLong(bytes: number): void {
    this.current().items.push({
      _tag: "Fatal",
      error: new QmpProtocolError({
        reason: "MessageTooLarge",
        detail: `a message of more than ${this.options.maxMessageBytes} bytes (${bytes} seen)`
      })
    })
  }

  /** The socket's data callback. */
  readonly onChunk = (chunk: Buffer): void => {
    if (this.framer.isStopped) return
    if (this.wire !== undefined) this.current().wire = this.wire.write(chunk)
    if (this.detecting) {
      const start = this.detect(chunk)
      if (start === undefined) return
      chunk = start
    }
    this.framer.push(chunk)
    const fatal = this.framer.isStopped
    this.flush()
    if (fatal) this.host.onFatal()
  }

  /**
   * Chooses the framing from the first bytes: a pretty greeting begins with `{` and a line end. Gives
   * the bytes to frame once it has chosen, or `undefined` while it holds them (at most two).
   */
  private detect(chunk: Buffer): Buffer | undefined {
    const bytes = this.held === undefined ? chunk : Buffer.concat([this.held, chunk])
    this.held = undefined
    const pretty = bytes[0] === 0x7b && (bytes[1] === 0x0a || (bytes[1] === 0x0d && bytes[2] === 0x0a))
    const undecided = bytes[0] === 0x7b && (bytes.length === 1 || (bytes.length === 2 && bytes[1] === 0x0d))
    if (undecided) {
      this.held = bytes
      return undefined
    }
    this.detecting = false
    if (pretty) this.framer = new JsonFramer(this.options.maxMessageBytes, this)
    return bytes
  }

  /**
   * The guest agent's resynchronisation: drops every byte read from now on up to the 0xFF that the
   * agent sends before its answer to `guest-sync-delimited`, and the partial message before it.
   */
  resync(): void {
    if (this.framer instanceof SentinelFramer) this.framer.resync()
  }

  /**
   * The connection ended: hands on an `End` item, behind every batch already handed on. Once the
   * framer has stopped (after bad input, or an earlier end), nothing more is handed on.
   */
  end(reason: QmpDisconnected): void {
    if (this.framer.isStopped) return
    const partial = this.framer.pendingBytes + (this.held?.length ?? 0)
    this.framer.stop()
    const detail = partial > 0 ?
      `in the middle of a message (${partial} bytes dropped)${
        reason.detail === undefined ? "" : `; ${reason.detail}`
      }` :
      reason.detail
    this.current().items.push({
      _tag: "End",
      reason: detail === reason.detail ? reason : new QmpDisconnected({ reason: reason.reason, detail })
    })
    this.flush()
  }

  /** Ignores every later chunk. */
  stop(): void {
    this.framer.stop()
  }

  /** Batches handed on and not processed yet. */
  get unprocessed(): number {
    return this.queued
  }

  /** The processing fiber finished `count` batches: resume reading if it has caught up. */
  processed(count: number): void {
    this.queued -= count
    if (this.paused && this.queued <= this.options.lowWater && !this.framer.isStopped) {
      this.paused = false
      this.host.resume()
    }
  }

  private current(): Batch {
    if (this.batch === undefined) this.batch = new Batch()
    return this.batch
  }

  private flush(): void {
    const batch = this.batch
    if (batch === undefined) return
    this.batch = undefined
    this.queued++
    this.host.onBatch(batch)
    if (!this.paused && this.queued > this.options.highWater && !this.framer.isStopped) {
      this.paused = true
      this.host.pause()
    }
  }

  /** One complete line: parse and sort it. Returns `false` on fatal input. */
  line(text: string): boolean {
    if (text.length === 0) return true
    let message: unknown
    try {
      message = JSON.parse(text)
    } catch (cause) {
      if (text.trim() === "") return true
      this.current().items.push({
        _tag: "Fatal",
        error: new QmpProtocolError({
          reason: "NotJson",
          detail: `${causeMessage(cause)}: ${preview(text, 100)}`
        }),
        seen: `${preview(text, 100)}, which is not JSON`
      })
      return false
    }
    if (isEvent(message)) {
      this.current().events.push(message)
      return true
    }
    if (!isJsonObject(message)) {
      const kind = message === null ? "null" : Array.isArray(message) ? "an array" : typeof message
      this.current().items.push({
        _tag: "Fatal",
        error: new QmpProtocolError({ reason: "NotObject", detail: `got ${kind}: ${preview(text, 100)}` }),
        seen: `${preview(text, 100)}, which is ${kind === "null" ? "null" : kind === "an array" ? kind : `a ${kind}`}`
      })
      return false
    }
    const kind = Object.hasOwn(message, "event") ?
      "MalformedEvent" :
      Object.hasOwn(message, "return") || Object.hasOwn(message, "error") || Object.hasOwn(message, "id") ?
      "Reply" :
      "Other"
    this.current().items.push({ _tag: "Message", kind, message })
    return true
  }
}
