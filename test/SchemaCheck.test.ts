/**
 * SchemaCheck.compare: the small introspection of test/fixtures against edited copies of itself, as
 * a newer or older QEMU would answer `query-qmp-schema`: each kind of difference found at its path,
 * and judged breaking or not by the direction it goes (what QEMU is sent, what it sends). The check
 * against a live QEMU is in test/qemu/typed.test.ts.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import type { QmpSchema } from "../src/index.js"
import { SchemaCheck } from "../src/index.js"

type Info = QmpSchema.SchemaInfo
type Mutable = { -readonly [K in keyof Info]: any } & Record<string, any>

const here = Path.dirname(fileURLToPath(import.meta.url))
const small = JSON.parse(Fs.readFileSync(Path.join(here, "fixtures", "small-qemu.json"), "utf8")) as ReadonlyArray<Info>

/** A copy of the small introspection, edited by `edit` (given a lookup of its entries by name). */
const edited = (edit: (entry: (name: string) => Mutable, all: Array<Mutable>) => void): ReadonlyArray<Info> => {
  const all = structuredClone(small) as Array<Mutable>
  edit((name) => {
    const found = all.find((info) => info.name === name)
    if (found === undefined) throw new Error(`no ${name}`)
    return found
  }, all)
  return all
}

const member = (entry: Mutable, name: string) => entry.members.find((m: { name: string }) => m.name === name)

describe("SchemaCheck.compare", () => {
  it("an introspection against itself: no difference, compatible, said so", () => {
    const report = SchemaCheck.compare(small, small)
    expect(report).toEqual({ missingCommands: [], newCommands: [], missingEvents: [], newEvents: [], differences: [] })
    expect(SchemaCheck.isCompatible(report)).toBe(true)
    expect(SchemaCheck.format(report, { qemu: "0.1.0" })).toEqual([
      "This QEMU's schema is QEMU 0.1.0's module's, exactly."
    ])
  })

  it("a newer QEMU's additions: found, none breaking", () => {
    const newer = edited((entry, all) => {
      all.push({ name: "13", "meta-type": "object", members: [] })
      all.push({ name: "query-new", "meta-type": "command", "arg-type": "13", "ret-type": "13" })
      all.push({ name: "NEW_EVENT", "meta-type": "event", "arg-type": "13" })
      entry("2").members.push({ name: "temperature", type: "int" }) // a member in a return
      entry("10").members.push({ name: "timeout", type: "int", default: null }) // an optional argument
      entry("1").values.push("sleeping") // an enum value
      entry("1").members.push({ name: "sleeping" })
      entry("3").values.push("gpu") // a union's tag, and its variant
      entry("3").members.push({ name: "gpu" })
      entry("4").variants.push({ case: "gpu", type: "13" })
      member(entry("5"), "size").default = null // a returned member now optional... in arguments (device-add)
    })
    const report = SchemaCheck.compare(small, newer)
    expect(report.newCommands).toEqual(["query-new"])
    expect(report.newEvents).toEqual(["NEW_EVENT"])
    expect(report.differences).toEqual(expect.arrayContaining([
      {
        path: "command:query-machine return.temperature",
        kind: "MemberAdded",
        detail: "required int",
        breaking: false
      },
      { path: "command:device-del arguments.timeout", kind: "MemberAdded", detail: "optional int", breaking: false },
      { path: "command:query-machine return.state", kind: "EnumValuesAdded", detail: "sleeping", breaking: false },
      { path: "command:query-devices return[]|gpu", kind: "VariantAdded", detail: "a new variant", breaking: false }
    ]))
    // device-add's arguments reach type 5 first: a member QEMU now lets callers leave out.
    expect(report.differences).toContainEqual({
      path: "command:device-add arguments.device|disk.size",
      kind: "NowOptional",
      detail: "required in the module, optional now",
      breaking: false
    })
    // The same type, as QEMU sends it (query-devices' return): a member that may now be missing.
    expect(report.differences).toContainEqual({
      path: "command:query-devices return[]|disk.size",
      kind: "NowOptional",
      detail: "required in the module, optional now",
      breaking: true
    })
  })

  it("only additions: compatible, and format says so", () => {
    const newer = edited((entry, all) => {
      all.push({ name: "NEW_EVENT", "meta-type": "event", "arg-type": "0" })
      entry("2").members.push({ name: "temperature", type: "int" })
    })
    const report = SchemaCheck.compare(small, newer)
    expect(SchemaCheck.isCompatible(report)).toBe(true)
    expect(SchemaCheck.format(report, { qemu: "0.1.0" })).toEqual([
      "Events this QEMU has that QEMU 0.1.0's module lacks (listen with listenerUnknown) (1): NEW_EVENT",
      "command:query-machine return.temperature: MemberAdded: required int",
      "Compatible: the differences are additions, which still decode."
    ])
  })

  it("an older QEMU: what it lacks, and what changed under the module, breaking where it can trip a call", () => {
    const older = edited((entry, all) => {
      all.splice(all.findIndex((info) => info.name === "x-old-reset"), 1)
      all.splice(all.findIndex((info) => info.name === "DEVICE_ADDED"), 1)
      const machine = entry("2")
      machine.members = machine.members.filter((m: { name: string }) => m.name !== "uptime" && m.name !== "load")
      member(entry("10"), "force").default = undefined // an optional argument now required
      delete member(entry("10"), "force").default
      entry("12").members.push({ name: "bus", type: "str" }) // a required argument added
      entry("11").members[0].type = "int" // an event's member retyped
      entry("1").values = ["idle", "busy"] // an enum value gone
      entry("1").members = [{ name: "idle" }, { name: "busy" }]
      entry("4").variants = entry("4").variants.filter((v: { case: string }) => v.case !== "net")
    })
    const report = SchemaCheck.compare(small, older)
    expect(report.missingCommands).toEqual(["x-old-reset"])
    expect(report.missingEvents).toEqual(["DEVICE_ADDED"])
    const byPath = new Map(report.differences.map((d) => [`${d.path} ${d.kind}`, d.breaking]))
    expect(Object.fromEntries(byPath)).toMatchObject({
      // What QEMU sends: a required member gone breaks a typed decode, an optional one does not.
      "command:query-machine return.uptime MemberRemoved": true,
      "command:query-machine return.load MemberRemoved": false,
      // An enum value gone from what QEMU sends: the decode still passes.
      "command:query-machine return.state EnumValuesRemoved": false,
      // What QEMU is sent.
      "command:device-del arguments.force NowRequired": true,
      "command:query-devices arguments.bus MemberAdded": true,
      "command:device-add arguments.device|net VariantRemoved": true,
      "event:DEVICE_CHANGED data.id Retyped": true
    })
    expect(report.differences).toContainEqual({
      path: "event:DEVICE_CHANGED data.id",
      kind: "Retyped",
      detail: "string in the module, int in the running QEMU",
      breaking: true
    })
    expect(SchemaCheck.isCompatible(report)).toBe(false)
    const lines = SchemaCheck.format(report, { qemu: "0.1.0" })
    expect(lines[0]).toBe("Commands of QEMU 0.1.0's module that this QEMU lacks (1): x-old-reset")
    expect(lines).toContain("! command:query-machine return.uptime: MemberRemoved: the running QEMU has no such member")
    expect(lines).toContain("command:query-machine return.load: MemberRemoved: the running QEMU has no such member")
    expect(lines.at(-1)).toMatch(/^Not compatible/)
  })

  it("an alternate whose branches changed is retyped", () => {
    const older = edited((entry) => {
      entry("8").members = [{ type: "str" }, { type: "int" }]
    })
    expect(SchemaCheck.compare(small, older).differences).toContainEqual({
      path: "command:device-add arguments.device|net.backend",
      kind: "Retyped",
      detail: "null | string in the module, int | string in the running QEMU",
      breaking: true
    })
  })

  it("type names play no part: the same structure under other masks is the same schema", () => {
    const renamed = edited((_, all) => {
      const rename = (name: string) => /^\d+$/.test(name) ? String(Number(name) + 100) : name
      for (const info of all) {
        info.name = rename(info.name)
        for (const key of ["arg-type", "ret-type", "element-type"]) if (key in info) info[key] = rename(info[key])
        for (const m of info.members ?? []) if ("type" in m) m.type = rename(m.type)
        for (const v of info.variants ?? []) v.type = rename(v.type)
      }
    })
    expect(SchemaCheck.compare(small, renamed).differences).toEqual([])
  })
})
