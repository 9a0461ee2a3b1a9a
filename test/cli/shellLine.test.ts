/**
 * What `qmp shell` makes of one line, and what Tab offers, with QEMU 7.2's schema (the committed
 * introspection of src/qemu/v7_2): no connection needed.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as Complete from "../../src/bin/shellComplete.js"
import { parseLine, tokenize } from "../../src/bin/shellLine.js"
import * as ShellSchema from "../../src/bin/shellSchema.js"
import { introspection } from "../../src/qemu/v7_2/introspection.js"

const schema = ShellSchema.make(introspection)

describe("qmp shell lines", () => {
  it("command key=value ..., with exec's value rules", () => {
    expect(parseLine("  stop  ")).toEqual(Either.right({ command: "stop", arguments: undefined }))
    expect(parseLine("blockdev-add driver=null-co size=1048576 a.b=true name:=123")).toEqual(
      Either.right({
        command: "blockdev-add",
        arguments: { driver: "null-co", size: 1048576, a: { b: true }, name: "123" }
      })
    )
    expect(Either.isLeft(parseLine("x =1"))).toBe(true)
  })

  it("quotes, single and double, group words and are removed; a quoted value is a string", () => {
    expect(tokenize(`human-monitor-command command-line="info status"`)).toEqual(
      Either.right(["human-monitor-command", "command-line:=info status"])
    )
    expect(tokenize(`x a='it''s' b="say \\"hi\\" \\\\ 'ok'" c=d"e f"`)).toEqual(
      Either.right(["x", "a:=its", `b:=say "hi" \\ 'ok'`, "c:=de f"])
    )
    // Quoting protects the spaces of JSON, which stays JSON.
    expect(parseLine(`x opts='{"a": 1, "b": [true]}' n="12"`)).toEqual(
      Either.right({ command: "x", arguments: { opts: { a: 1, b: [true] }, n: "12" } })
    )
    expect(parseLine(`x a="open`)).toEqual(Either.left("unterminated double quote"))
    expect(parseLine(`x a='open`)).toEqual(Either.left("unterminated single quote"))
    expect(parseLine(`human-monitor-command command-line='info version'`)).toEqual(
      Either.right({ command: "human-monitor-command", arguments: { "command-line": "info version" } })
    )
  })

  it("a raw JSON command, and what is wrong with a bad one", () => {
    expect(parseLine("{\"execute\": \"cont\"}")).toEqual(Either.right({ command: "cont", arguments: undefined }))
    expect(parseLine("{\"execute\": \"x\", \"arguments\": {\"a\": 1}}")).toEqual(
      Either.right({ command: "x", arguments: { a: 1 } })
    )
    expect(parseLine("{\"execute\": 1}")).toEqual(Either.left("a raw command needs \"execute\": \"NAME\""))
    expect(parseLine("{\"execute\": \"x\", \"arguments\": [1]}")).toEqual(
      Either.left("\"arguments\" must be a JSON object")
    )
    expect(Either.isLeft(parseLine("{\"execute\": "))).toBe(true)
  })

  it("values typed by the schema: a string member takes 123 or true as a string, numbers stay numbers", () => {
    expect(parseLine("blockdev-add driver=null-co node-name=123 size=1048576 read-zeroes=true", schema)).toEqual(
      Either.right({
        command: "blockdev-add",
        arguments: { driver: "null-co", "node-name": "123", size: 1048576, "read-zeroes": true }
      })
    )
    // Through a union's variant (qcow2's members) and an alternate (file: options or a node name).
    expect(parseLine("blockdev-add driver=qcow2 node-name=7 file=42", schema)).toEqual(
      Either.right({ command: "blockdev-add", arguments: { driver: "qcow2", "node-name": "7", file: "42" } })
    )
    expect(parseLine("blockdev-add driver=qcow2 node-name=q file.driver=file file.filename=1", schema)).toEqual(
      Either.right({
        command: "blockdev-add",
        arguments: { driver: "qcow2", "node-name": "q", file: { driver: "file", filename: "1" } }
      })
    )
    // Without the schema, or for a command it lacks, the values are read as exec reads them.
    expect(parseLine("blockdev-add node-name=123")).toEqual(
      Either.right({ command: "blockdev-add", arguments: { "node-name": 123 } })
    )
    expect(parseLine("x-newer id=123", schema)).toEqual(Either.right({ command: "x-newer", arguments: { id: 123 } }))
  })
})

describe("qmp shell completion", () => {
  const words: Complete.Vocabulary = { commands: ["blockdev-add", "query-status", "query-version", "quit"], schema }

  it("command names, then the names of arguments not given yet", () => {
    expect(Complete.complete(words, "query-s")).toEqual([["query-status "], "query-s"])
    expect(Complete.complete(words, "q")).toEqual([["query-status", "query-version", "quit"], "q"])
    expect(Complete.complete(words, "blockdev-add dri")).toEqual([["driver="], "dri"])
    expect(Complete.complete(words, "blockdev-add driver=null-co node-name=n si")).toEqual([["size="], "si"])
    expect(Complete.complete(words, "blockdev-add driver=null-co node-name=n node-")).toEqual([[], "node-"])
  })

  it("an enum's values after key=, and a boolean's", () => {
    expect(Complete.complete(words, "blockdev-add driver=qc")).toEqual([["driver=qcow", "driver=qcow2"], "driver=qc"])
    expect(Complete.complete(words, "blockdev-add driver=null-c")).toEqual([["driver=null-co "], "driver=null-c"])
    expect(Complete.complete(words, "blockdev-add driver=null-co read-zeroes=t")).toEqual([
      ["read-zeroes=true "],
      "read-zeroes=t"
    ])
  })

  it("the members of the variant the tag chose, and dotted members of an object (or an alternate's)", () => {
    const [qcow2] = Complete.complete(words, "blockdev-add driver=qcow2 ")
    expect(qcow2).toEqual(expect.arrayContaining(["file=", "file.", "lazy-refcounts=", "node-name="]))
    expect(qcow2).not.toContain("driver=")
    const [nullCo] = Complete.complete(words, "blockdev-add driver=null-co ")
    expect(nullCo).toContain("read-zeroes=")
    expect(nullCo).not.toContain("lazy-refcounts=")
    // file is BlockdevRef: options (an object) or a node name; file.driver chooses file's variant.
    const [file] = Complete.complete(words, "blockdev-add driver=qcow2 file.driver=file file.")
    expect(file).toEqual(expect.arrayContaining(["file.filename=", "file.aio="]))
    expect(file).not.toContain("file.driver=")
    expect(Complete.complete(words, "blockdev-add driver=qcow2 file.driver=file file.aio=io_")).toEqual([
      ["file.aio=io_uring "],
      "file.aio=io_"
    ])
  })

  it("in a transaction, the actions and their data", () => {
    expect(Complete.complete(words, "block-dirty-bitmap-a", "action")).toEqual([
      ["block-dirty-bitmap-add "],
      "block-dirty-bitmap-a"
    ])
    expect(Complete.complete(words, "block-dirty-bitmap-add na", "action")).toEqual([["name="], "na"])
  })

  it("HMP: phrases, completed whole", () => {
    const hmp: Complete.Vocabulary = {
      commands: ["help stop", "info status", "info version", "stop"],
      schema: undefined
    }
    expect(Complete.complete(hmp, "info s", "hmp")).toEqual([["info status "], "info s"])
    expect(Complete.complete(hmp, "info ", "hmp")).toEqual([["info status", "info version"], "info "])
  })
})
