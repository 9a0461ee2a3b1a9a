/**
 * Where a QMP server listens: a Unix socket path, or a TCP host and port. QEMU serves QMP on the
 * socket its `-qmp` option names (`-qmp unix:/run/vm1/qmp.sock,server=on,wait=off`, or
 * `-qmp tcp:127.0.0.1:4444,server=on,wait=off`).
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"

/**
 * @since 0.1.0
 * @category schemas
 */
export const QmpAddress = Schema.Union(
  Schema.Struct({ path: Schema.String }),
  Schema.Struct({ host: Schema.String, port: Schema.Number })
).annotations({ identifier: "QmpAddress" })

/**
 * @since 0.1.0
 * @category models
 */
export type QmpAddress = Schema.Schema.Type<typeof QmpAddress>

/**
 * Renders an address for messages, logs and metric tags: `unix:/run/qemu.sock` or
 * `tcp:127.0.0.1:4444` (QEMU's own spelling in `-qmp`).
 *
 * @since 0.1.0
 * @category formatting
 */
export const format = (address: QmpAddress): string =>
  "path" in address ? `unix:${address.path}` : `tcp:${address.host}:${address.port}`

/**
 * Parses `HOST:PORT` (`127.0.0.1:4444`, `[::1]:4444`) into a TCP address, or says what is wrong.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseTcpAddress = (text: string): Either.Either<QmpAddress, string> => {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text.trim())
  const port = match === null ? Number.NaN : Number(match[3])
  if (match === null || !Number.isInteger(port) || port < 1 || port > 65535) {
    return Either.left(`expected HOST:PORT with a port from 1 to 65535, got ${JSON.stringify(text)}`)
  }
  return Either.right({ host: match[1] ?? match[2], port })
}

/**
 * Where to connect, from the environment (or any `ConfigProvider`): `QMP_SOCKET` (a Unix socket
 * path), else `QMP_TCP` (`HOST:PORT`).
 *
 * @since 0.1.0
 * @category config
 */
export const addressConfig: Config.Config<QmpAddress> = Config.orElse(
  Config.map(Config.string("QMP_SOCKET"), (path): QmpAddress => ({ path })),
  () =>
    Config.mapOrFail(
      Config.string("QMP_TCP"),
      (text) => Either.mapLeft(parseTcpAddress(text), (message) => ConfigError.InvalidData(["QMP_TCP"], message))
    )
)
