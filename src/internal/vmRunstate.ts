/**
 * The state of one VM of a fleet: connecting for the first time, connected, in a gap (reconnecting),
 * or gone for good. A fleet's client of the VM shows it as a `QmpClient.Runstate`.
 *
 * @internal
 */
import * as Data from "effect/Data"
import type { QmpDisconnected } from "../QmpError.js"
import { Runstate as ClientRunstate } from "./runstate.js"

/**
 * The state of a VM of a fleet. Times are milliseconds since the epoch, on the fleet's `Clock`.
 *
 * @internal
 */
export type Runstate = Data.TaggedEnum<{
  /** Its first connection is being made. */
  Connecting: Record<never, never>
  /** It has a connection, since `since`. */
  Connected: { readonly since: number }
  /**
   * A gap: its connection was lost at `lost`, for `reason` (`Unresponsive` when it did not answer a
   * ping); `attempts` to reconnect have failed so far. Commands fail at once meanwhile.
   */
  Reconnecting: { readonly lost: number; readonly reason: QmpDisconnected; readonly attempts: number }
  /** Gone for good: its first connection failed, reconnecting gave up, or it was let go. Listeners ended. */
  Gone: { readonly reason: QmpDisconnected }
}>

/** @internal */
export const Runstate = Data.taggedEnum<Runstate>()

/**
 * The VM's state as a `QmpClient` shows it: `Running` while it has a connection, `Disconnected`
 * during a gap and once gone (final only once `closed` completes).
 *
 * @internal
 */
export const toClientRunstate = (state: Runstate): ClientRunstate =>
  state._tag === "Reconnecting" || state._tag === "Gone" ?
    ClientRunstate.Disconnected({ reason: state.reason }) :
    ClientRunstate.Running()
