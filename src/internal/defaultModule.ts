/**
 * QEMU 7.2's generated module: what clients and listeners are typed by when no module is given,
 * loaded the first time a typed decode needs it (it is kept out of the start-up of a plain
 * connection and of the CLI).
 *
 * @internal
 */
import type { Generated } from "../QmpSchema.js"

/** @internal */
export const loadDefaultModule = (): Promise<Generated<any, any>> =>
  import("../qemu/v7_2/index.js").then((m) => m.module)
