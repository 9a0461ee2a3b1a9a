/**
 * Readable names for QEMU's masked type names.
 *
 * QEMU's introspection names its types by numbers, which change from build to build. A type is
 * named instead after where it is used: the data of an event (`JobStatusChangeData`), the return or
 * the arguments of a command (`QueryStatusReturn`, `BlockdevAddArguments`), a member of a named type
 * (`QueryStatusReturnStatus`), an array's items (`QueryJobsReturnItem`), a union's variant
 * (`BlockdevAddArgumentsFile`). Where a type is used in several places, its name comes from the
 * first, in a fixed order: level by level from the roots, the events first, then the commands (the
 * return before the arguments), each in name order. So the same introspection always gives the same
 * names, and a newer QEMU keeps most of them.
 *
 * A few well-known types get QEMU's own names (`StatusInfo`, `RunState`, `JobStatus`, ...), found
 * by where they are used (`knownNames`); those paths are facts about QEMU's interface, stable across
 * versions, and no schema text is copied.
 *
 * Only objects, enums and alternates are named; arrays, builtins and the empty object are written
 * in place.
 *
 * @since 0.1.0
 */
import type { Model, Type } from "./model.js"
import { isEmptyObject } from "./model.js"

/**
 * QEMU's names for types that users meet first, by the path of one place where each is used:
 * `command:NAME:return` or `command:NAME:arguments` or `event:NAME`, then `.member` and `[]` (an
 * array's items) as often as needed.
 *
 * @since 0.1.0
 * @category naming
 */
export const knownNames: ReadonlyArray<readonly [path: string, name: string]> = [
  ["command:query-status:return", "StatusInfo"],
  ["command:query-status:return.status", "RunState"],
  ["event:JOB_STATUS_CHANGE.status", "JobStatus"],
  ["command:query-jobs:return[]", "JobInfo"],
  ["command:query-jobs:return[].type", "JobType"],
  ["event:SHUTDOWN.reason", "ShutdownCause"],
  ["command:query-version:return", "VersionInfo"],
  ["command:query-version:return.qemu", "VersionTriple"],
  ["command:query-name:return", "NameInfo"],
  ["command:query-uuid:return", "UuidInfo"],
  ["command:query-kvm:return", "KvmInfo"],
  ["command:query-target:return", "TargetInfo"],
  ["command:query-commands:return[]", "CommandInfo"],
  ["command:query-events:return[]", "EventInfo"],
  ["command:query-machines:return[]", "MachineInfo"],
  ["command:query-cpus-fast:return[]", "CpuInfoFast"],
  ["command:query-iothreads:return[]", "IOThreadInfo"],
  ["command:query-chardev:return[]", "ChardevInfo"],
  ["command:query-block:return[]", "BlockInfo"],
  ["command:query-named-block-nodes:return[]", "BlockDeviceInfo"],
  ["command:query-block-jobs:return[]", "BlockJobInfo"],
  ["command:query-migrate:return", "MigrationInfo"],
  ["event:MIGRATION.status", "MigrationStatus"],
  ["command:query-balloon:return", "BalloonInfo"],
  ["command:qom-list:return[]", "ObjectPropertyInfo"],
  ["command:query-qmp-schema:return[]", "SchemaInfo"],
  ["command:query-yank:return[]", "YankInstance"],
  ["command:blockdev-add:arguments", "BlockdevOptions"],
  ["command:blockdev-add:arguments.driver", "BlockdevDriver"],
  ["command:blockdev-add:arguments.discard", "BlockdevDiscardOptions"],
  ["command:blockdev-add:arguments.detect-zeroes", "BlockdevDetectZeroesOptions"],
  ["command:blockdev-add:arguments.cache", "BlockdevCacheOptions"],
  ["command:blockdev-create:arguments.options", "BlockdevCreateOptions"],
  ["command:blockdev-backup:arguments", "BlockdevBackup"],
  ["command:blockdev-backup:arguments.sync", "MirrorSyncMode"],
  ["command:blockdev-backup:arguments.on-source-error", "BlockdevOnError"],
  ["command:blockdev-mirror:arguments", "BlockdevMirror"],
  ["event:BLOCK_JOB_COMPLETED.type", "JobType"],
  ["event:BLOCK_JOB_ERROR.operation", "IoOperationType"],
  ["event:BLOCK_JOB_ERROR.action", "BlockErrorAction"],
  ["command:query-cpu-definitions:return[]", "CpuDefinitionInfo"],
  ["command:query-memdev:return[]", "Memdev"],
  ["command:query-hotpluggable-cpus:return[]", "HotpluggableCPU"],
  ["command:query-command-line-options:return[]", "CommandLineOptionInfo"]
]

const pascal = (name: string): string => {
  const words = name.split(/[^A-Za-z0-9]+/).filter((word) => word !== "")
  const joined = words.map((word) => word[0].toUpperCase() + word.slice(1).toLowerCase()).join("")
  return /^[0-9]/.test(joined) ? `T${joined}` : joined
}

/** A name that only some types get: objects (with members or variants), enums and alternates. */
const isNamed = (type: Type): boolean =>
  (type["meta-type"] === "object" && !isEmptyObject(type)) || type["meta-type"] === "enum" ||
  type["meta-type"] === "alternate"

/** One place where a type is used: its path, and the name it would get from there. */
interface Use {
  readonly type: string
  readonly path: string
  readonly name: string
}

/** The places one level deeper than `use`. */
const children = (model: Model, use: Use): ReadonlyArray<Use> => {
  const type = model.types.get(use.type)!
  switch (type["meta-type"]) {
    case "object": {
      const members = type.members.map((member) => ({
        type: member.type,
        path: `${use.path}.${member.name}`,
        name: `${use.name}${pascal(member.name)}`
      }))
      const variants = (type.variants ?? []).map((variant) => ({
        type: variant.type,
        path: `${use.path}|${variant.case}`,
        name: `${use.name}${pascal(variant.case)}`
      }))
      return [...members, ...variants]
    }
    case "array":
      return [{ type: type["element-type"], path: `${use.path}[]`, name: `${use.name}Item` }]
    case "alternate":
      return type.members.map((member, i) => ({
        type: member.type,
        path: `${use.path}|${i}`,
        name: `${use.name}${["A", "B", "C", "D", "E", "F"][i] ?? String(i)}`
      }))
    default:
      return []
  }
}

/** The roots: each event's data, each command's return and arguments. */
const roots = (model: Model): ReadonlyArray<Use> => [
  ...model.events.map((event) => ({
    type: event["arg-type"],
    path: `event:${event.name}`,
    name: `${pascal(event.name)}Data`
  })),
  ...model.commands.flatMap((command) => [
    { type: command["ret-type"], path: `command:${command.name}:return`, name: `${pascal(command.name)}Return` },
    { type: command["arg-type"], path: `command:${command.name}:arguments`, name: `${pascal(command.name)}Arguments` }
  ])
]

/**
 * The key under which `assignNames` keeps the name of a flat union's base interface.
 *
 * @since 0.1.0
 * @category naming
 */
export const baseKey = (type: string): string => `${type}#base`

/**
 * Names every object, enum and alternate the commands and events reach: a map from QEMU's masked
 * name to a readable one, unique.
 *
 * @since 0.1.0
 * @category naming
 */
export const assignNames = (model: Model): ReadonlyMap<string, string> => {
  const names = new Map<string, string>()
  // The generated module's own names.
  const taken = new Set<string>(["Empty", "Commands", "Events", "Schema", "T"])
  const give = (type: string, name: string) => {
    let candidate = name
    for (let n = 2; taken.has(candidate); n++) candidate = `${name}${n}`
    names.set(type, candidate)
    taken.add(candidate)
  }
  // QEMU's own names, where their path leads to a type that gets a name.
  const known = new Map<string, string>()
  for (const [path, name] of knownNames) {
    const type = resolvePath(model, path)
    if (type !== undefined && isNamed(model.types.get(type)!) && !known.has(type)) known.set(type, name)
  }
  // Level by level from the roots, each type visited once; a type's members are named after the
  // name it got, so that `BlockdevOptions` has `BlockdevOptionsFile`.
  const visited = new Set<string>()
  for (let level = roots(model); level.length > 0;) {
    const next: Array<Use> = []
    for (const use of level) {
      if (visited.has(use.type)) continue
      visited.add(use.type)
      const type = model.types.get(use.type)!
      if (isNamed(type)) {
        give(use.type, known.get(use.type) ?? use.name)
        // A flat union's members other than its tag, which every variant has.
        if (type["meta-type"] === "object" && type.tag !== undefined) {
          give(baseKey(use.type), `${names.get(use.type)}Base`)
        }
      }
      next.push(...children(model, { ...use, name: names.get(use.type) ?? use.name }))
    }
    level = next
  }
  return names
}

/** The type a path leads to, following members and array items from its root. */
const resolvePath = (model: Model, path: string): string | undefined => {
  const match = /^(command:[^:]+:(?:return|arguments)|event:[^.[]+)(.*)$/.exec(path)
  if (match === null) return undefined
  const root = roots(model).find((use) => use.path === match[1])
  if (root === undefined) return undefined
  let type: string | undefined = root.type
  for (const step of match[2].match(/\.[^.[]+|\[\]/g) ?? []) {
    const current: Type | undefined = type === undefined ? undefined : model.types.get(type)
    if (current === undefined) return undefined
    if (step === "[]") {
      type = current["meta-type"] === "array" ? current["element-type"] : undefined
    } else {
      type = current["meta-type"] === "object" ? current.members.find((m) => m.name === step.slice(1))?.type : undefined
    }
  }
  return type
}
