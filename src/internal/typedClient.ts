/**
 * A client's typed face: `execute` and `executeOob` run as their untyped doors, and their returns
 * are decoded with a generated module's Schemas.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type { ExecuteOptions, Service } from "../QmpClient.js"
import type { ExecuteError } from "../QmpError.js"
import type { Generated } from "../QmpSchema.js"
import { makeReturnDecoder } from "./typedDecode.js"

type Untyped = (
  command: string,
  args?: Readonly<Record<string, unknown>>,
  options?: ExecuteOptions
) => Effect.Effect<unknown, ExecuteError>

/**
 * The same connection, its typed commands decoded with the module `load` gives. Every other member
 * is carried over as it is defined, getters included: a fleet's client reads `greeting` from its
 * current connection each time.
 *
 * @internal
 */
export const retype = (client: Service<any>, load: () => Promise<Generated<any, any>>): Service<any> => {
  const decode = makeReturnDecoder(load)
  const typedCall =
    (run: Untyped) =>
    (command: string, args?: object, options?: ExecuteOptions): Effect.Effect<unknown, ExecuteError> =>
      Effect.flatMap(
        run(command, args as Readonly<Record<string, unknown>> | undefined, options),
        (reply) => decode(command, reply)
      )
  return Object.defineProperties({}, {
    ...Object.getOwnPropertyDescriptors(client),
    execute: { value: typedCall(client.executeUnknown), enumerable: true },
    executeOob: { value: typedCall(client.executeOobUnknown), enumerable: true }
  }) as Service<any>
}
