/**
 * Opening the socket of a QMP connection: one attempt, no retry, its errors named after the address.
 *
 * The client opens the `net.Socket` itself (and builds the `@effect/platform` `Socket` over it with
 * `NodeSocket.fromDuplex`) so that it holds the raw socket: to pause and resume reading, and to map
 * connection errors to `QmpConnectError` reasons.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import * as Net from "node:net"
import type { QmpAddress } from "../QmpAddress.js"
import { QmpConnectError, QmpDisconnected } from "../QmpError.js"

const reasonOf = (cause: unknown): QmpConnectError["reason"] => {
  const code = typeof cause === "object" && cause !== null ? (cause as { readonly code?: unknown }).code : undefined
  switch (code) {
    case "ENOENT":
      return "NotFound"
    case "ECONNREFUSED":
      return "Refused"
    case "ETIMEDOUT":
      return "Timeout"
    default:
      return "Unknown"
  }
}

/**
 * Connects to `address`. The socket is destroyed when the scope closes. It always has an `error`
 * listener, so that an error after `Socket.run` detached its own (a write to a peer that hung up)
 * never becomes an uncaught exception.
 *
 * @internal
 */
export const open = (address: QmpAddress): Effect.Effect<Net.Socket, QmpConnectError, Scope.Scope> =>
  acquireReleaseSync(
    () => {
      const socket = "path" in address ?
        Net.createConnection({ path: address.path }) :
        Net.createConnection({ host: address.host, port: address.port, noDelay: true })
      socket.on("error", ignore)
      return socket
    },
    (socket) => socket.destroy()
  ).pipe(
    Effect.flatMap((socket) =>
      Effect.async<Net.Socket, QmpConnectError>((resume) => {
        const cleanup = () => {
          socket.off("connect", onConnect)
          socket.off("error", onError)
        }
        const onConnect = () => {
          cleanup()
          resume(Effect.succeed(socket))
        }
        const onError = (cause: Error) => {
          cleanup()
          resume(Effect.fail(new QmpConnectError({ address, reason: reasonOf(cause), cause })))
        }
        socket.once("connect", onConnect)
        socket.once("error", onError)
        return Effect.sync(cleanup)
      })
    )
  )

const ignore = (): void => {}

/**
 * `Effect.acquireRelease` for a synchronous acquire and a release that needs nothing of its fiber:
 * the release goes to the scope with `Scope.addFinalizer`. `Effect.addFinalizer` would keep the
 * fiber's refs of the acquire (to run the release with them) for as long as the scope lasts: a
 * copy of them per connection, of which a fleet holds a thousand.
 *
 * @internal
 */
export const acquireReleaseSync = <A>(
  acquire: () => A,
  release: (a: A) => void
): Effect.Effect<A, never, Scope.Scope> =>
  Effect.uninterruptible(Effect.flatMap(Effect.scope, (scope) =>
    Effect.suspend(() => {
      const a = acquire()
      return Effect.as(Scope.addFinalizer(scope, Effect.sync(() => release(a))), a)
    })))

/** What a connection does with its socket's events. @internal */
export interface Handlers {
  /** A chunk was read: a function of its own, the socket's `data` listener. */
  readonly onChunk: (chunk: Buffer) => void
  /** The socket ended: the peer closed it (`Closed`) or it failed (`Lost`). Called once. */
  end(reason: QmpDisconnected): void
}

/**
 * Reads the socket into `handlers` until the scope closes, which detaches them. A socket that had
 * closed before this was called ends at once.
 *
 * @internal
 */
export const attach = (socket: Net.Socket, handlers: Handlers): Effect.Effect<void, never, Scope.Scope> =>
  acquireReleaseSync(() => new Attachment(socket, handlers), (attachment) => attachment.detach())

/** The socket's listeners, and whether the end was handed on. */
class Attachment {
  private ended = false

  constructor(private readonly socket: Net.Socket, private readonly handlers: Handlers) {
    socket.on("data", handlers.onChunk)
    socket.on("end", this.onEnd)
    socket.on("error", this.onError)
    socket.on("close", this.onClose)
    if (socket.destroyed) {
      this.end(new QmpDisconnected({ reason: "Lost", detail: "the socket closed before reading started" }))
    }
  }

  private end(reason: QmpDisconnected): void {
    if (this.ended) return
    this.ended = true
    this.handlers.end(reason)
  }

  private readonly onEnd = (): void => this.end(new QmpDisconnected({ reason: "Closed" }))

  private readonly onError = (error: Error): void =>
    this.end(new QmpDisconnected({ reason: "Lost", detail: error.message }))

  private readonly onClose = (hadError: boolean): void =>
    this.end(
      hadError
        ? new QmpDisconnected({ reason: "Lost", detail: "the socket closed after an error" })
        : new QmpDisconnected({ reason: "Closed" })
    )

  detach(): void {
    this.socket.off("data", this.handlers.onChunk)
    this.socket.off("end", this.onEnd)
    this.socket.off("error", this.onError)
    this.socket.off("close", this.onClose)
  }
}

/**
 * Writes a line, at once (Node buffers it if the kernel's buffer is full). `false` if the socket is
 * no longer writable: the command was not sent.
 *
 * @internal
 */
export const write = (socket: Net.Socket, line: string): boolean => {
  if (socket.destroyed || !socket.writable) return false
  socket.write(line)
  return true
}

/**
 * Writes bytes, at once; `false` if the socket is no longer writable.
 *
 * @internal
 */
export const writeBytes = (socket: Net.Socket, bytes: Uint8Array): boolean => {
  if (socket.destroyed || !socket.writable) return false
  socket.write(bytes)
  return true
}
