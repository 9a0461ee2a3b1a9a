/**
 * The conformance suite: every scenario (`scenarios.ts`) runs against a real QEMU 7.2 and against
 * `QmpTestServer`, from a plain `net` client (`transcript.ts`), and the two transcripts must be equal
 * under the one normalisation of `normalise.ts`. Where `QmpTestServer` differs from QEMU on purpose,
 * `QmpTestServer.differences` says so (and no scenario goes there).
 *
 * One QEMU per group of scenarios, started with a single QMP socket and nothing else on it.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import type { QmpAddress } from "../../src/index.js"
import * as QmpTestServer from "../../src/testing/QmpTestServer.js"
import { describeQemu } from "../support/qemu.js"
import type { Normalised } from "./normalise.js"
import { normalise } from "./normalise.js"
import { startQemu } from "./qemu.js"
import type { Group, Scenario } from "./scenarios.js"
import { cmd, groups } from "./scenarios.js"
import { record } from "./transcript.js"

const steps = (scenario: Scenario) =>
  scenario.negotiate === false ? scenario.steps : [cmd("qmp_capabilities"), ...scenario.steps]

const run = async (address: QmpAddress.QmpAddress, scenario: Scenario): Promise<Normalised> =>
  normalise(await record(address, steps(scenario)), scenario.asynchronous)

/** Runs a group's scenarios, in order, against QEMU and against a QmpTestServer, and compares each. */
const suite = (group: Group) => {
  const results = new Map<string, Normalised>()
  let stopQemu: (() => void) | undefined
  let scope: Scope.CloseableScope | undefined

  beforeAll(async () => {
    const qemu = await startQemu(group.pretty)
    stopQemu = qemu.stop
    for (const scenario of group.scenarios) results.set(scenario.name, await run(qemu.address, scenario))
  }, 120_000)

  afterAll(() => {
    stopQemu?.()
    if (scope !== undefined) return Effect.runPromise(Scope.close(scope, Exit.void))
  })

  it.live("QmpTestServer answers every scenario as QEMU does", () =>
    Effect.gen(function*() {
      scope = yield* Scope.make()
      const server = yield* QmpTestServer.make({ pretty: group.pretty }).pipe(Scope.extend(scope))
      for (const scenario of group.scenarios) {
        const qemu = results.get(scenario.name)!
        expect(qemu.stalls, `QEMU stalled in "${scenario.name}"`).toEqual([])
        const actual = yield* Effect.promise(() => run(server.address, scenario))
        expect.soft({ scenario: scenario.name, ...actual }).toEqual({ scenario: scenario.name, ...qemu })
      }
    }), 60_000)
}

describeQemu("conformance with QEMU 7.2", () => {
  for (const group of groups) describe(group.name, () => suite(group))
})
