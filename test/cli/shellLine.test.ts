/**
 * What `qmp shell` makes of one line, and what Tab offers: no connection needed.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as Shell from "../../src/bin/shell.js"

describe("qmp shell lines", () => {
  it("command key=value ..., with exec's value rules", () => {
    expect(Shell.parseLine("  stop  ")).toEqual(Either.right({ command: "stop", arguments: undefined }))
    expect(Shell.parseLine("blockdev-add driver=null-co size=1048576 a.b=true name:=123")).toEqual(
      Either.right({
        command: "blockdev-add",
        arguments: { driver: "null-co", size: 1048576, a: { b: true }, name: "123" }
      })
    )
    expect(Either.isLeft(Shell.parseLine("x =1"))).toBe(true)
  })

  it("a raw JSON command, and what is wrong with a bad one", () => {
    expect(Shell.parseLine("{\"execute\": \"cont\"}")).toEqual(Either.right({ command: "cont", arguments: undefined }))
    expect(Shell.parseLine("{\"execute\": \"x\", \"arguments\": {\"a\": 1}}")).toEqual(
      Either.right({ command: "x", arguments: { a: 1 } })
    )
    expect(Shell.parseLine("{\"execute\": 1}")).toEqual(Either.left("a raw command needs \"execute\": \"NAME\""))
    expect(Shell.parseLine("{\"execute\": \"x\", \"arguments\": [1]}")).toEqual(
      Either.left("\"arguments\" must be a JSON object")
    )
    expect(Either.isLeft(Shell.parseLine("{\"execute\": "))).toBe(true)
  })

  it("Tab completes command names, then the names of arguments not given yet", () => {
    const words = {
      commands: ["query-status", "query-version", "quit", "stop"],
      argumentsOf: new Map([["blockdev-add", ["driver", "node-name", "size"]]])
    }
    expect(Shell.complete(words, "query-s")).toEqual([["query-status "], "query-s"])
    expect(Shell.complete(words, "q")).toEqual([["query-status", "query-version", "quit"], "q"])
    expect(Shell.complete(words, "blockdev-add ")).toEqual([["driver=", "node-name=", "size="], ""])
    expect(Shell.complete(words, "blockdev-add driver=null-co s")).toEqual([["size="], "s"])
    expect(Shell.complete(words, "blockdev-add driver=x d")).toEqual([[], "d"])
  })
})
