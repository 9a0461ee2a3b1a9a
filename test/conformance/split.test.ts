/**
 * Commands written as `qemu.qmp` writes them (no newline), several to a write, cut into writes at
 * arbitrary bytes, well-formed or not: QmpTestServer answers each input exactly as QEMU 7.2 does, for
 * every way of cutting it. QEMU's answer is recorded once per input (its parser does not care where
 * the writes end); QmpTestServer's for several cuts of it.
 */
import { afterAll, beforeAll, expect, it } from "@effect/vitest"
import { Effect, Exit, FastCheck as fc, Scope } from "effect"
import type { QmpAddress } from "../../src/index.js"
import * as QmpTestServer from "../../src/testing/QmpTestServer.js"
import { describeQemu } from "../support/qemu.js"
import { normalise } from "./normalise.js"
import { startQemu } from "./qemu.js"
import { awaitReply, cmd, raw } from "./scenarios.js"
import type { Step } from "./transcript.js"
import { record } from "./transcript.js"

/** Pieces of input: commands, malformed ones, and what may lie between them. */
const pieces: ReadonlyArray<string> = [
  "{\"execute\":\"query-status\"}",
  "{\"execute\":\"query-status\",\"id\":1}",
  "{ \"execute\" : \"query-version\" , \"id\" : [ 1 , { \"a\" : null } ] }",
  "{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"info status\"},\"id\":\"h\"}",
  "{'execute':'query-status','id':'single'}",
  "{\"execute\":\"no-such\",\"id\":\"é\\u00e9\\ud83d\\ude00\"}",
  "{\"execute\":\"query-status\",\"id\":12345678901234567890}",
  "{\"execute\":\"query-status\",\"id\":-1.5e-3}",
  "{\"execute\": }",
  "{\"execute\":\"query-status\",\"execute\":\"x\"}",
  "{\"a\":1]",
  "}",
  "]",
  "@",
  "{1:2}",
  "[1,2]",
  "42 ",
  "\"text\"",
  "true ",
  "nul ",
  "{\"execute\":\"query-status\",\"id\":\"\\x\"}",
  "{\"execute\":\"query-status\",\"id\":01}",
  " ",
  "\r\n",
  "\t"
]

const input = fc.array(fc.constantFrom(...pieces), { minLength: 2, maxLength: 8 }).map((parts) => parts.join(""))

const cutsOf = (length: number) => fc.array(fc.integer({ min: 1, max: Math.max(1, length - 1) }), { maxLength: 12 })

/** The steps for an input: negotiation, then the input cut into writes, then a last command to wait for. */
const stepsOf = (text: string, cuts: ReadonlyArray<number>): ReadonlyArray<Step> => [
  cmd("qmp_capabilities"),
  raw(text, 0, cuts),
  // Anything left unfinished at the end of the input is ended by this message's first byte, and its
  // reply comes after every reply to the input.
  raw(JSON.stringify({ execute: "query-status", id: "end" }), 0),
  awaitReply("end")
]

const cases = fc.sample(input, { numRuns: 12, seed: 13 })

describeQemu("commands without newlines, cut anywhere: QmpTestServer answers as QEMU 7.2", () => {
  let qemu: { readonly address: QmpAddress.QmpAddress; readonly stop: () => void } | undefined
  let scope: Scope.CloseableScope | undefined
  const expected: Array<ReturnType<typeof normalise>> = []

  beforeAll(async () => {
    qemu = await startQemu()
    for (const text of cases) expected.push(normalise(await record(qemu.address, stepsOf(text, []))))
  }, 60_000)

  afterAll(() => {
    qemu?.stop()
    if (scope !== undefined) return Effect.runPromise(Scope.close(scope, Exit.void))
  })

  it.live("every input, cut at random bytes into several writes", () =>
    Effect.gen(function*() {
      scope = yield* Scope.make()
      const server = yield* QmpTestServer.make().pipe(Scope.extend(scope))
      for (const [i, text] of cases.entries()) {
        expect(expected[i].stalls).toEqual([])
        const length = Buffer.byteLength(text)
        for (const cuts of fc.sample(cutsOf(length), { numRuns: 6, seed: i })) {
          const actual = normalise(yield* Effect.promise(() => record(server.address, stepsOf(text, cuts), 10)))
          expect({ text, cuts, ...actual }).toEqual({ text, cuts, ...expected[i] })
        }
      }
    }), 60_000)
})
