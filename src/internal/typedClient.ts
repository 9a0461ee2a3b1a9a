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

/** How a command is written: `execute`, or `exec-oob` (run at once, beside in-band commands). */
type Kind = "execute" | "exec-oob"

type Decode = (command: string, reply: unknown) => Effect.Effect<unknown, ExecuteError>

/** A command's untyped reply, decoded with `decode`. */
const decoded = (
  decode: Decode,
  command: string,
  reply: Effect.Effect<unknown, ExecuteError>
): Effect.Effect<unknown, ExecuteError> => Effect.flatMap(reply, (value) => decode(command, value))

/** Decodes a command's return with the default module (QEMU 7.2's), loaded with the first typed return. */
const decodeDefault = makeReturnDecoder(loadDefaultModule)

/**
 * A client typed by the default module: subclasses run the commands (`run`) and give the
 * connection's state.
 *
 * @internal
 */
export abstract class TypedClient implements Service<any> {
  abstract readonly address: QmpAddress
  abstract readonly greeting: Greeting
  abstract readonly oob: boolean
  abstract readonly disconnect: Effect.Effect<void>
  abstract readonly closed: Effect.Effect<QmpDisconnected>
  abstract readonly runstate: {
    readonly get: Effect.Effect<Runstate>
    readonly changes: Stream.Stream<Runstate>
  }

  /** Runs a command, its reply untyped. */
  protected abstract run(
    kind: Kind,
    command: string,
    args: Readonly<Record<string, unknown>> | undefined,
    options: ExecuteOptions | undefined
  ): Effect.Effect<unknown, ExecuteError>

  readonly executeUnknown = (
    command: string,
    args?: Readonly<Record<string, unknown>>,
    options?: ExecuteOptions
  ): Effect.Effect<unknown, ExecuteError> => this.run("execute", command, args, options)

  readonly executeOobUnknown = (
    command: string,
    args?: Readonly<Record<string, unknown>>,
    options?: ExecuteOptions
  ): Effect.Effect<unknown, ExecuteError> => this.run("exec-oob", command, args, options)

  readonly execute = (command: string, args?: object, options?: ExecuteOptions): Effect.Effect<unknown, ExecuteError> =>
    decoded(decodeDefault, command, this.executeUnknown(command, args as Readonly<Record<string, unknown>>, options))

  readonly executeOob = (
    command: string,
    args?: object,
    options?: ExecuteOptions
  ): Effect.Effect<unknown, ExecuteError> =>
    decoded(decodeDefault, command, this.executeOobUnknown(command, args as Readonly<Record<string, unknown>>, options))
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
  const execute = (command: string, args?: object, options?: ExecuteOptions) =>
    decoded(decode, command, client.executeUnknown(command, args as Readonly<Record<string, unknown>>, options))
  const executeOob = (command: string, args?: object, options?: ExecuteOptions) =>
    decoded(decode, command, client.executeOobUnknown(command, args as Readonly<Record<string, unknown>>, options))
  return Object.create(client, {
    execute: { value: execute, enumerable: true },
    executeOob: { value: executeOob, enumerable: true }
  }) as Service<any>
}
