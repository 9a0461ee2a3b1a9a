/**
 * A scenario's transcript: what a plain `net` client reads while it writes a scenario's input, step
 * by step, to a QMP server (a real QEMU or `QmpTestServer`). No QMP client is involved: the bytes go
 * out exactly as the scenario gives them (several commands to a write, no newline, split anywhere),
 * and every message that comes back is recorded as it came: a message ends with the line on which
 * its outermost bracket closes, so that a pretty monitor's messages (over many lines) are whole too.
 */
import * as Net from "node:net"
import type { QmpAddress } from "../../src/index.js"

/** A step of a scenario. */
export type Step =
  /** Writes bytes as they are (in pieces, one write each, when `pieces` are given), then waits for `replies` replies. */
  | {
    readonly _tag: "Send"
    readonly data: string | Uint8Array
    readonly replies: number
    /** Byte offsets at which the data is cut into writes of their own. */
    readonly cuts?: ReadonlyArray<number> | undefined
  }
  /** Waits for an event. */
  | { readonly _tag: "Await"; readonly what: string; readonly matches: (message: Received) => boolean }
  /** Ends the client's side of the connection, then waits for the server's end. */
  | { readonly _tag: "End" }

/** One message received, as text (without its last `\r\n`) and parsed (`undefined` if it is not JSON). */
export interface Received {
  readonly text: string
  readonly json: any
}

export interface Transcript {
  /** Every message received, in order; the greeting first. */
  readonly received: ReadonlyArray<Received>
  /** The server closed the connection. */
  readonly closed: boolean
  /** Steps that did not get what they waited for in time: a divergence, shown in the comparison. */
  readonly stalls: ReadonlyArray<string>
}

/** A reply: a message with `return` or `error`. */
export const isReply = (message: Received): boolean =>
  typeof message.json === "object" && message.json !== null &&
  (Object.hasOwn(message.json, "return") || Object.hasOwn(message.json, "error"))

export const isEvent = (message: Received): boolean =>
  typeof message.json === "object" && message.json !== null && typeof message.json.event === "string"

/** How long a step waits for what it expects: a real QEMU answers in milliseconds. */
const stepTimeout = 5_000
/** After the last step: how long the line must stay quiet for the transcript to end, by default. */
const defaultQuietMillis = 60

/**
 * Connects to `address`, waits for the greeting, runs the steps, waits until the server is quiet,
 * and disconnects.
 */
export const record = (
  address: QmpAddress.QmpAddress,
  steps: ReadonlyArray<Step>,
  quietMillis = defaultQuietMillis
): Promise<Transcript> =>
  new Promise((resolve, reject) => {
    const socket = "path" in address ?
      Net.createConnection({ path: address.path }) :
      Net.createConnection({ host: address.host, port: address.port })
    const received: Array<Received> = []
    const stalls: Array<string> = []
    let buffer = ""
    // How far `buffer` was framed, and the state there: the depth of brackets, inside a string or not.
    let scanned = 0
    let depth = 0
    let inString = false
    let escaped = false
    let closed = false
    let lastData = Date.now()
    let wake: (() => void) | undefined
    const notify = () => {
      const w = wake
      wake = undefined
      w?.()
    }
    socket.setEncoding("latin1")
    socket.on("data", (chunk: string) => {
      lastData = Date.now()
      buffer += chunk
      for (; scanned < buffer.length; scanned++) {
        const char = buffer[scanned]
        if (inString) {
          if (escaped) escaped = false
          else if (char === "\\") escaped = true
          else if (char === "\"") inString = false
        } else if (char === "\"") {
          inString = true
        } else if (char === "{" || char === "[") {
          depth++
        } else if (char === "}" || char === "]") {
          depth--
        } else if (char === "\n" && depth <= 0) {
          const text = buffer.slice(0, scanned).replace(/\r$/, "")
          buffer = buffer.slice(scanned + 1)
          scanned = -1
          depth = 0
          if (text.trim() !== "") received.push({ text, json: parse(text) })
        }
      }
      notify()
    })
    socket.on("end", () => {
      closed = true
      notify()
    })
    socket.on("close", () => {
      closed = true
      notify()
    })
    socket.on("error", () => {})

    /** Waits until `done` holds, the connection closes, or the step times out (a stall). */
    const until = async (done: () => boolean, what: string): Promise<void> => {
      const deadline = Date.now() + stepTimeout
      while (!done()) {
        if (closed) return
        const left = deadline - Date.now()
        if (left <= 0) {
          stalls.push(what)
          return
        }
        await new Promise<void>((resume) => {
          const timer = setTimeout(resume, left)
          wake = () => {
            clearTimeout(timer)
            resume()
          }
        })
      }
    }
    const replies = () => received.filter(isReply).length

    const write = (data: string | Uint8Array, cuts: ReadonlyArray<number> | undefined): Promise<void> => {
      const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : Buffer.from(data)
      const at = [...new Set(cuts ?? [])].filter((cut) => cut > 0 && cut < bytes.length).sort((a, b) => a - b)
      const pieces = [0, ...at].map((start, i) => bytes.subarray(start, at[i] ?? bytes.length))
      return pieces.reduce(
        (previous, piece) =>
          previous.then(() =>
            new Promise<void>((resume) => {
              socket.write(piece, () => resume())
            })
          ).then(() => new Promise<void>((resume) => setImmediate(resume))),
        Promise.resolve()
      ).then(() => {
        // The quiet period counts from the last write too: an answer to it may be on its way.
        lastData = Date.now()
      })
    }

    const run = async () => {
      await until(() => received.length > 0, "the greeting")
      // What an awaited event may be among: what came since the last write began (it may have come
      // before that write's reply).
      let since = received.length
      for (const step of steps) {
        if (closed) break
        switch (step._tag) {
          case "Send": {
            since = received.length
            const expected = replies() + step.replies
            await write(step.data, step.cuts)
            await until(() => replies() >= expected, `${step.replies} replies to ${preview(step.data)}`)
            break
          }
          case "Await": {
            await until(() => received.slice(since).some(step.matches), step.what)
            break
          }
          case "End": {
            socket.end()
            await until(() => closed, "the server's end")
            break
          }
        }
      }
      // Whatever else comes (a divergence: an extra reply, an event), until the line is quiet.
      for (;;) {
        const quiet = quietMillis - (Date.now() - lastData)
        if (quiet <= 0 || closed) break
        await new Promise((resume) => setTimeout(resume, quiet))
      }
      socket.destroy()
      resolve({ received: received.slice(), closed, stalls })
    }
    socket.once("connect", () => run().catch(reject))
    socket.once("error", reject)
  })

const preview = (data: string | Uint8Array): string => {
  const text = typeof data === "string" ? data : Buffer.from(data).toString("latin1")
  return JSON.stringify(text.length > 60 ? text.slice(0, 60) + "..." : text)
}

const parse = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
