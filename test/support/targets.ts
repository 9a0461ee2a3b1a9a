/**
 * Where a suite that needs a VM can run: on `QmpTestServer`, in this process, or on a real QEMU.
 * A suite written once against a `Target` runs on both:
 *
 * ```ts
 * for (const target of targets) target.describe(`my suite on ${target.name}`, () => mySuite(target))
 * ```
 */
import { describe } from "@effect/vitest"
import { Effect } from "effect"
import type { Scope } from "effect"
import type { QmpClient, QmpEvents } from "../../src/index.js"
import { connect } from "./connect.js"
import { describeQemu, session } from "./qemu.js"

/** A client connected to a fresh VM, with its registry. */
export interface Vm {
  readonly qmp: QmpClient.Service
  readonly events: QmpEvents.Service
}

export interface Target {
  readonly name: string
  /** `describe` for this target: on real QEMU, skipped without QEMU, or failing under QMP_REQUIRE_QEMU=1. */
  readonly describe: (name: string, body: () => void) => void
  /** A fresh VM and a client connected to it, for the current scope. */
  readonly connect: Effect.Effect<Vm, unknown, Scope.Scope>
  /**
   * `true` when the VM sends a job's events in one fixed sequence (the scripted server). Real QEMU
   * makes no such promise: a job's transient states (the `paused`/`running` of a drain) may vary.
   */
  readonly deterministic: boolean
}

/** The scripted server: a `-machine none` QEMU 7.2 as `QmpTestServer` plays it. */
export const testServer: Target = {
  name: "QmpTestServer",
  describe,
  connect: Effect.map(connect(), ({ client, events }) => ({ qmp: client, events })),
  deterministic: true
}

/** A real `qemu-system-x86_64 -machine none`, started for each test. */
export const qemu: Target = {
  name: "real QEMU",
  describe: describeQemu,
  connect: session(),
  deterministic: false
}

export const targets: ReadonlyArray<Target> = [testServer, qemu]
