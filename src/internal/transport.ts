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
import type * as Scope from "effect/Scope"
import * as Net from "node:net"
import type { QmpAddress } from "../QmpAddress.js"
import { QmpConnectError } from "../QmpError.js"

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
  Effect.acquireRelease(
    Effect.sync(() => {
      const socket = "path" in address ?
        Net.createConnection({ path: address.path }) :
        Net.createConnection({ host: address.host, port: address.port, noDelay: true })
      socket.on("error", ignore)
      return socket
    }),
    (socket) => Effect.sync(() => socket.destroy())
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
