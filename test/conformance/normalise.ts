/**
 * The one normalisation under which a transcript from QEMU 7.2 and one from `QmpTestServer` must be
 * equal. It keeps every byte of every message except these, which are masked:
 *
 * 1. timestamps: `"timestamp": {"seconds": S, "microseconds": U}` becomes `"timestamp": T`;
 * 2. the version and the package: the greeting's and `query-version`'s `qemu` triple and `package`,
 *    and the text of HMP `info version`;
 * 3. job progress: `offset` (BLOCK_JOB_* events, `query-block-jobs`) and `current-progress`
 *    (`query-jobs`), which depend on how far a job got in real time.
 *
 * Then it compares what QEMU promises, and nothing else:
 *
 * - the replies (every `return` and `error`), in order, and whether the server closed the connection;
 * - each job's events, in order (a job's events are those whose `id`, or `device` for BLOCK_JOB_*,
 *   names it); the other events, in order, as one more stream;
 * - the position of an event among the replies (`≺k`: it came before reply number k and after the one
 *   before), which QEMU guarantees for an event that a command causes: it comes before that command's
 *   return. A scenario names the events that QEMU sends in its own time (a throttled job finishing):
 *   those are compared within their stream only.
 *
 * HMP's `help` text is left out: no scenario asks for it (QmpTestServer lists only the HMP commands it has).
 */
import type { Received, Transcript } from "./transcript.js"
import { isEvent, isReply } from "./transcript.js"

export interface Normalised {
  readonly greeting: string
  readonly replies: ReadonlyArray<string>
  readonly streams: Readonly<Record<string, ReadonlyArray<string>>>
  readonly closed: boolean
  /** Lines that are neither a reply nor an event (there should be none). */
  readonly other: ReadonlyArray<string>
  readonly stalls: ReadonlyArray<string>
}

// Whitespace-tolerant, so that a pretty monitor's messages are masked alike.
const masks: ReadonlyArray<readonly [RegExp, string]> = [
  [/"timestamp": \{\s*"seconds": -?\d+,\s*"microseconds": -?\d+\s*\}/g, "\"timestamp\": T"],
  [
    /"qemu": \{\s*"micro": \d+,\s*"minor": \d+,\s*"major": \d+\s*\},\s*"package": "(?:[^"\\]|\\.)*"/g,
    "\"qemu\": V, \"package\": P"
  ],
  [/"offset": \d+/g, "\"offset\": N"],
  [/"current-progress": \d+/g, "\"current-progress\": N"]
]

/** The text of an HMP `info version` reply: the version and the package, then `\r\n`. */
const infoVersion = /^\{\s*"return": "\d+\.\d+\.\d+[^"]*\\r\\n"/

export const mask = (text: string): string => {
  let masked = text
  for (const [pattern, replacement] of masks) masked = masked.replace(pattern, replacement)
  return masked.replace(infoVersion, "{\"return\": \"VERSION\\r\\n\"")
}

/** The stream an event belongs to: its job, or the VM. */
const streamOf = (message: Received): string => {
  const data = message.json.data
  if (typeof data === "object" && data !== null) {
    if (message.json.event.startsWith("BLOCK_JOB_") && typeof data.device === "string") return `job ${data.device}`
    if (typeof data.id === "string" && /JOB/.test(message.json.event)) return `job ${data.id}`
  }
  return "vm"
}

/**
 * Normalises a transcript. `asynchronous` tells the events whose position among the replies QEMU
 * does not fix.
 */
export const normalise = (
  transcript: Transcript,
  asynchronous: (event: any) => boolean = () => false
): Normalised => {
  const [greeting, ...rest] = transcript.received
  const replies: Array<string> = []
  const streams: Record<string, Array<string>> = {}
  const other: Array<string> = []
  for (const message of rest) {
    if (isReply(message)) {
      replies.push(mask(message.text))
    } else if (isEvent(message)) {
      const position = asynchronous(message.json) ? "" : ` ≺${replies.length}`
      ;(streams[streamOf(message)] ??= []).push(mask(message.text) + position)
    } else {
      other.push(message.text)
    }
  }
  return {
    greeting: greeting === undefined ? "" : mask(greeting.text),
    replies,
    streams,
    closed: transcript.closed,
    other,
    stalls: transcript.stalls
  }
}
