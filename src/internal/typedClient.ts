/**
 * A client's typed face: `execute` and `executeOob` run as their untyped doors, and their returns
 * are decoded with a generated module's Schemas.
 *
 * Clients are class instances (a connection's, a fleet's handle of a VM): the state is in fields and
 * the shared behaviour on the prototype, so that a client costs its fields and its four commands,
 * where a client built of closures over an object of getters cost some kilobytes (a fleet holds two
 * per VM). The commands are own properties, bound to their client, so that they can be passed on or
 * destructured as those of any Effect service.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import type { QmpAddress } from "../QmpAddress.js"
import type { ExecuteOptions, Runstate, Service } from "../QmpClient.js"
import type { ExecuteError, QmpDisconnected } from "../QmpError.js"
import type { Greeting } from "../QmpMessage.js"
import type { Generated } from "../QmpSchema.js"
import { loadDefaultModule } from "./defaultModule.js"
import { makeReturnDecoder } from "./typedDecode.js"

type Untyped = (
  command: string,
  args?: Readonly<Record<string, unknown>>,
  options?: ExecuteOptions
) => Effect.Effect<unknown, ExecuteError>

/** Decodes a command's return with the default module (QEMU 7.2's), loaded with the first typed return. */
const decodeDefault = makeReturnDecoder(loadDefaultModule)

/**
 * A client typed by the default module: subclasses give the untyped doors and the connection's
 * state.
 *
 * @internal
 */
export abstract class TypedClient implements Service<any> {
  abstract readonly address: QmpAddress
  abstract readonly greeting: Greeting
  abstract readonly oob: boolean
  abstract readonly executeUnknown: Untyped
  abstract readonly executeOobUnknown: Untyped
  abstract readonly disconnect: Effect.Effect<void>
  abstract readonly closed: Effect.Effect<QmpDisconnected>
  abstract readonly runstate: {
    readonly get: Effect.Effect<Runstate>
    readonly changes: Stream.Stream<Runstate>
  }

  readonly execute = (command: string, args?: object, options?: ExecuteOptions): Effect.Effect<unknown, ExecuteError> =>
    Effect.flatMap(
      this.executeUnknown(command, args as Readonly<Record<string, unknown>> | undefined, options),
      (reply) => decodeDefault(command, reply)
    )

  readonly executeOob = (
    command: string,
    args?: object,
    options?: ExecuteOptions
  ): Effect.Effect<unknown, ExecuteError> =>
    Effect.flatMap(
      this.executeOobUnknown(command, args as Readonly<Record<string, unknown>> | undefined, options),
      (reply) => decodeDefault(command, reply)
    )
}

/**
 * The same client, its typed commands decoded with the module `load` gives. Everything else is the
 * client's own, read through the prototype: a fleet's handle reads `greeting` from its current
 * connection each time.
 *
 * @internal
 */
export const retype = (client: Service<any>, load: () => Promise<Generated<any, any>>): Service<any> => {
  const decode = makeReturnDecoder(load)
  const typedCall = (run: Untyped) => (command: string, args?: object, options?: ExecuteOptions) =>
    Effect.flatMap(
      run(command, args as Readonly<Record<string, unknown>> | undefined, options),
      (reply) => decode(command, reply)
    )
  return Object.create(client, {
    execute: { value: typedCall(client.executeUnknown), enumerable: true },
    executeOob: { value: typedCall(client.executeOobUnknown), enumerable: true }
  }) as Service<any>
}
