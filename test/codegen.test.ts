/**
 * The generator: a small hand-written introspection with every meta-type (builtins, enums with a
 * deprecated value, structs with optional and deprecated and unstable members and an `if` key, a flat
 * union with a variant shared by nothing and a case with no variant, alternates, arrays, a recursive
 * type, commands with and without arguments, an out-of-band command, a deprecated command, events
 * with and without data), its committed output (and QEMU 7.2's) proven current, and the Schemas it
 * gives rejecting each kind of wrong shape.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { generate } from "../src/codegen/generate.js"
import { QmpSchema } from "../src/index.js"
import { introspection as qemu72 } from "../src/qemu/v7_2/introspection.js"
import * as Small from "./fixtures/small-qemu/schemas.js"

const here = Path.dirname(fileURLToPath(import.meta.url))
const small: unknown = JSON.parse(Fs.readFileSync(Path.join(here, "fixtures", "small-qemu.json"), "utf8"))

/** Each file of a generated module against what is committed. */
const expectCommitted = (files: ReadonlyArray<{ path: string; content: string }>, directory: string) => {
  for (const file of files) {
    expect(Fs.readFileSync(Path.join(directory, file.path), "utf8"), `${directory}/${file.path}`).toBe(file.content)
  }
}

describe("the committed modules are the generator's output", () => {
  it("src/qemu/v7_2 (regenerate with npm run codegen)", () => {
    expectCommitted(
      generate(qemu72, { qemu: "7.2.22", runtime: "../../QmpSchema.js" }),
      Path.join(here, "..", "src", "qemu", "v7_2")
    )
  })

  it("test/fixtures/small-qemu", () => {
    expectCommitted(
      generate(small, { qemu: "0.1.0", runtime: "../../../src/QmpSchema.js" }),
      Path.join(here, "fixtures", "small-qemu")
    )
  })
})

describe("generate", () => {
  const files = generate(small, { qemu: "0.1.0" })
  const types = files.find((file) => file.path === "types.ts")!.content
  const index = files.find((file) => file.path === "index.ts")!.content

  it("gives the same output for the same input, whatever the order of its entries", () => {
    const shuffled = [...(small as Array<unknown>)].reverse()
    expect(generate(shuffled, { qemu: "0.1.0" }).filter((f) => f.path !== "introspection.ts"))
      .toEqual(files.filter((f) => f.path !== "introspection.ts"))
  })

  it("names types after where they are used, readable and unique", () => {
    const names = [...types.matchAll(/^export (?:type|interface) (\w+)/gm)].map((m) => m[1])
    expect(new Set(names).size).toBe(names.length)
    expect(names).toEqual(expect.arrayContaining([
      "QueryMachineReturn", // a command's return
      "DeviceDelArguments", // a command's arguments
      "DeviceChangedData", // an event's data
      "DeviceChangedDataState", // a member's enum, named from its first use (events come first)
      "DeviceAddedDataDevice", // a flat union
      "DeviceAddedDataDeviceBase", // its base, without the tag
      "DeviceAddedDataDeviceDisk" // a variant
    ]))
    // QEMU's masked names never appear.
    expect(types).not.toMatch(/\b(?:T\d+|"\d+")\b/)
  })

  it("writes every meta-type", () => {
    expect(types).toContain(`export type DeviceChangedDataState =\n  | "idle"\n  | "busy"\n  | "legacy"`) // enum
    expect(types).toContain(`readonly load?: number`) // optional member
    expect(types).toContain(`readonly tags?: ReadonlyArray<string>`) // array
    expect(types).toContain(`export type DeviceAddedDataDeviceDiskFile = string | DeviceAddedDataDevice`) // alternate, recursive
    expect(types).toContain(`export type DeviceAddedDataDeviceNetBackend = string | null`) // null
    expect(types).toContain(`readonly "x-debug"?: unknown`) // any, and a name that needs quotes
    expect(types).toContain(`| (DeviceAddedDataDeviceBase & { readonly kind: "rng" })`) // a case with no variant
    expect(types).toContain(`readonly MACHINE_STOPPED: { readonly data: undefined }`) // an event without data
    expect(types).toContain(`readonly argsRequired: true`)
    expect(types).toContain(`readonly allowOob: true`)
  })

  it("marks deprecated and unstable features, and ignores `if` (introspection has resolved it)", () => {
    expect(types).toMatch(
      /@deprecated QEMU marks it deprecated: it will be removed\.\s+\*\/\s+readonly label\?: string/
    )
    expect(types).toMatch(/@deprecated[^\n]*\s+\*\/\s+readonly "x-old-reset"/)
    expect(types).toMatch(/@deprecated[^\n]*\s+\*\/\s+readonly DEVICE_ADDED/)
    expect(types).toMatch(/Unstable: QEMU may change or remove it without notice\. \*\/\s+readonly "x-debug"/)
    expect(types).toContain("/** Deprecated values: legacy. */")
    expect(index).toContain(`"x-old-reset": { argsRequired: false, allowOob: false, features: ["deprecated"] }`)
    expect(types).not.toContain("CONFIG_DEBUG")
  })

  it("refuses what is not QEMU's introspection, saying where", () => {
    expect(() => generate({ return: [] }, { qemu: "x" })).toThrow(/not a query-qmp-schema reply/)
    expect(() => generate([{ name: "c", "meta-type": "command", "arg-type": "9", "ret-type": "9" }], { qemu: "x" }))
      .toThrow(/command c refers to type "9", which the introspection lacks/)
    expect(() => generate([{ name: "e", "meta-type": "event" }], { qemu: "x" })).toThrow(/arg-type/)
  })
})

describe("the generated Schemas", () => {
  const decode = <A>(schema: Schema.Schema<A>, u: unknown) =>
    Schema.decodeUnknownEither(schema, { onExcessProperty: "preserve" })(u)
  const rejects = <A>(schema: Schema.Schema<A>, u: unknown) => Either.isLeft(decode(schema, u))
  const machine = { state: "idle", uptime: 5 }

  it("accept what QEMU sends, keeping members a newer QEMU added", () => {
    expect(decode(Small.QueryMachineReturn, { ...machine, load: 0.5, tags: ["a"], extra: { x: 1 } }))
      .toEqual(Either.right({ ...machine, load: 0.5, tags: ["a"], extra: { x: 1 } }))
    const disk = { kind: "disk", id: "d0", file: { kind: "rng", id: "r0" }, size: 1 }
    expect(decode(Small.DeviceAddedDataDevice, disk)).toEqual(Either.right(disk))
    expect(decode(Small.DeviceAddedDataDevice, { kind: "net", id: "n0", backend: null })).toMatchObject({
      _tag: "Right"
    })
  })

  it("reject each kind of wrong shape", () => {
    expect(rejects(Small.QueryMachineReturn, { ...machine, uptime: "5" })).toBe(true) // a wrong builtin
    expect(rejects(Small.QueryMachineReturn, { state: "idle" })).toBe(true) // a missing required member
    expect(rejects(Small.QueryMachineReturn, { ...machine, state: 3 })).toBe(true) // an enum that is no string
    expect(rejects(Small.QueryMachineReturn, { ...machine, tags: ["a", 1] })).toBe(true) // an array's item
    expect(rejects(Small.QueryMachineReturn, { ...machine, load: null })).toBe(true) // null where none is allowed
    expect(rejects(Small.QueryMachineReturn, [])).toBe(true) // not an object
    expect(rejects(Small.DeviceAddedDataDevice, { kind: "disk", id: "d0", size: 1 })).toBe(true) // a variant's member
    expect(rejects(Small.DeviceAddedDataDevice, { kind: "disk", id: "d0", file: 1, size: 1 })).toBe(true) // an alternate
    expect(rejects(Small.DeviceAddedDataDevice, { id: "d0" })).toBe(true) // no tag
    expect(rejects(Small.DeviceAddedDataDeviceNetBackend, 1)).toBe(true)
    const explanation = Either.getLeft(decode(Small.QueryMachineReturn, { state: "idle", uptime: "5" }))
    expect(explanation._tag === "Some" && explanation.value.message).toContain(`["uptime"]`)
  })

  it("are open where QEMU may grow: a newer enum value or union tag decodes, and is reported once", () => {
    QmpSchema.takeUnknownEnumValues()
    expect(decode(Small.QueryMachineReturn, { ...machine, state: "sleeping" })).toMatchObject({ _tag: "Right" })
    expect(decode(Small.QueryMachineReturn, { ...machine, state: "sleeping" })).toMatchObject({ _tag: "Right" })
    expect(decode(Small.DeviceAddedDataDevice, { kind: "gpu", id: "g0" })).toMatchObject({ _tag: "Right" })
    expect(QmpSchema.takeUnknownEnumValues()).toEqual([
      { enumName: "DeviceChangedDataState", value: "sleeping" },
      { enumName: "DeviceAddedDataDevice", value: "gpu" }
    ])
    // A newer tag still needs the base's members.
    expect(rejects(Small.DeviceAddedDataDevice, { kind: "gpu" })).toBe(true)
  })
})
