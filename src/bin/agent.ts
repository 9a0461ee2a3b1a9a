/**
 * A connection to the QEMU guest agent for the length of one `qmp` command (`--agent`): loaded only
 * when a command line asks for it.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as GuestAgent from "../GuestAgent.js"
import type { ConnectionOptions } from "./connection.js"
import { resolveAddress, withVerbosity } from "./connection.js"

/**
 * Connects to the guest agent at the address the options give (resynchronising first) and runs
 * `body` with it.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withAgent = <A, E>(
  options: ConnectionOptions,
  agentOptions: GuestAgent.Options,
  body: (agent: GuestAgent.Service) => Effect.Effect<A, E>
) =>
  resolveAddress(options).pipe(
    Effect.flatMap((address) =>
      Effect.flatMap(
        GuestAgent.make(
          address,
          Option.match(options.connectTimeout, {
            onNone: () => agentOptions,
            onSome: (connectTimeout) => ({ ...agentOptions, connectTimeout })
          })
        ),
        body
      )
    ),
    Effect.scoped,
    withVerbosity(options.verbose)
  )
