/**
 * A `QmpClient` on a `QmpTestServer`, in this process: the server is scripted by the test, the
 * client is the real one, over a real socket.
 */
import { Effect } from "effect"
import type { Fiber, Scope } from "effect"
import type { QmpAddress, QmpError } from "../../src/index.js"
import { QmpClient, QmpEvents } from "../../src/index.js"
import * as QmpTestServer from "../../src/testing/QmpTestServer.js"

/** A client, with a registry of its own. */
export interface Client {
  readonly client: QmpClient.Service
  readonly events: QmpEvents.Service
}

export interface Connected extends Client {
  readonly server: QmpTestServer.Service
}

/** A client of the server at `address`, with a registry of its own, for the current scope. */
export const clientOf = (
  address: QmpAddress.QmpAddress,
  options: QmpClient.Options = {}
): Effect.Effect<Client, QmpError.QmpConnectError | QmpError.QmpNegotiationError, Scope.Scope> =>
  Effect.gen(function*() {
    const events = yield* QmpEvents.make
    const client = yield* QmpClient.make(address, options).pipe(Effect.provideService(QmpEvents.QmpEvents, events))
    return { client, events }
  })

/**
 * A fresh server and a client connected to it, for the current scope. The server's `accept` and
 * `nextCommand` still give the client's connection and its `qmp_capabilities`.
 */
export const connect = (
  serverOptions: QmpTestServer.Options = {},
  clientOptions: QmpClient.Options = {}
): Effect.Effect<Connected, QmpError.QmpConnectError | QmpError.QmpNegotiationError, Scope.Scope> =>
  Effect.gen(function*() {
    const server = yield* QmpTestServer.make(serverOptions)
    return { server, ...yield* clientOf(server.address, clientOptions) }
  })

/**
 * Connecting to `address` in the background, with a registry of its own, while the test scripts
 * the server: `fiber` gives the client, or why connecting failed.
 */
export const attempt = (
  address: QmpAddress.QmpAddress,
  options: QmpClient.Options = {}
): Effect.Effect<
  {
    readonly fiber: Fiber.RuntimeFiber<QmpClient.Service, QmpError.QmpConnectError | QmpError.QmpNegotiationError>
    readonly events: QmpEvents.Service
  },
  never,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const events = yield* QmpEvents.make
    const fiber = yield* QmpClient.make(address, options).pipe(
      Effect.provideService(QmpEvents.QmpEvents, events),
      Effect.fork
    )
    return { fiber, events }
  })
