/**
 * The default commands of `QmpTestServer`: a small stand-in for a `-machine none` QEMU 7.2, with
 * its run state, `null-co` block nodes and `blockdev-backup` jobs, answering as QEMU does (the
 * events, their order relative to the reply, the error classes and descriptions were taken from a
 * real QEMU 7.2 over a raw socket).
 *
 * The state lives in a `SynchronizedRef`: every command that reads or changes it, and every tick of
 * a throttled job, runs under its lock, events included, so that a job's events never interleave
 * with another command's.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as SynchronizedRef from "effect/SynchronizedRef"
import type * as Qemu72 from "../../qemu/v7_2/types.js"
import type { CommandError, Handler, RunState } from "../../testing/QmpTestServer.js"
import type { Registration } from "./dispatch.js"
import { genericError } from "./wire.js"

/** @internal */
export interface Options {
  readonly status: RunState
  readonly version: { readonly major: number; readonly minor: number; readonly micro: number }
  readonly package: string
  readonly emit: (event: string, data?: Readonly<Record<string, unknown>>) => Effect.Effect<void>
  /** Every command the server knows now, for `query-commands`. */
  readonly commandNames: Effect.Effect<ReadonlyArray<string>>
  /** What happens after `quit` has replied: QEMU exits. */
  readonly exit: Effect.Effect<void>
}

/** @internal */
export interface Vm {
  readonly status: Effect.Effect<RunState>
  readonly handlers: ReadonlyArray<Registration>
}

/** What a job's status can be here (QEMU's `undefined` is never reported). */
type JobStatus = Exclude<Qemu72.JobStatus, "undefined">

interface Node {
  readonly name: string
  readonly driver: string
  readonly size: number
}

interface Job {
  readonly id: string
  readonly type: "backup"
  readonly source: string
  readonly target: string
  readonly len: number
  /** Bytes copied so far, as a real number: the progress reported is rounded down to a cluster. */
  readonly done: number
  /** Bytes per second; 0 is unlimited. */
  readonly speed: number
  readonly status: JobStatus
  readonly userPaused: boolean
  readonly autoFinalize: boolean
  readonly autoDismiss: boolean
  /** When the job last made progress, in milliseconds. */
  readonly lastTick: number
}

interface State {
  readonly status: RunState
  readonly nodes: ReadonlyMap<string, Node>
  /** Jobs that were not dismissed yet, in creation order. */
  readonly jobs: ReadonlyMap<string, Job>
}

/** The size of a `null-co` node without `size`: 1 GiB, as QEMU. */
const defaultNullSize = 1024 * 1024 * 1024

/** A backup job copies cluster by cluster: its progress moves in these steps. */
const cluster = 64 * 1024

/** How often a throttled job makes progress (QEMU's rate limit works in 100 ms slices). */
const tickMillis = 100

const fail = (desc: string): Effect.Effect<never, CommandError> => Effect.fail(genericError(desc))

type ParamType = "string" | "int" | "bool" | "array" | "any"
type ParamSpec = ParamType | `${ParamType}?`

const expected: Record<ParamType, string> = {
  string: "string",
  int: "integer",
  bool: "boolean",
  array: "array",
  any: "value"
}

const hasType = (type: ParamType, value: unknown): boolean => {
  switch (type) {
    case "string":
      return typeof value === "string"
    case "int":
      return Number.isSafeInteger(value)
    case "bool":
      return typeof value === "boolean"
    case "array":
      return Array.isArray(value)
    case "any":
      return true
  }
}

/** Checks arguments as QEMU's input visitor does: missing members first, then types, then extra members. */
const params = (
  args: Readonly<Record<string, unknown>>,
  spec: Readonly<Record<string, ParamSpec>>
): Effect.Effect<void, CommandError> =>
  Effect.suspend(() => {
    for (const [name, declared] of Object.entries(spec)) {
      const optional = declared.endsWith("?")
      const type = (optional ? declared.slice(0, -1) : declared) as ParamType
      if (!Object.hasOwn(args, name)) {
        if (!optional) return fail(`Parameter '${name}' is missing`)
        continue
      }
      if (!hasType(type, args[name])) return fail(`Invalid parameter type for '${name}', expected: ${expected[type]}`)
    }
    for (const name of Object.keys(args)) {
      if (!Object.hasOwn(spec, name)) return fail(`Parameter '${name}' is unexpected`)
    }
    return Effect.void
  })

const oneOf = (name: string, value: unknown, values: ReadonlyArray<string>): Effect.Effect<void, CommandError> =>
  typeof value === "string" && values.includes(value) ?
    Effect.void :
    fail(`Parameter '${name}' does not accept value '${String(value)}'`)

/** QEMU's refusal of a negative `speed`, at a job's start and in `block-job-set-speed`. */
const negativeSpeed = "Parameter 'speed' expects a non-negative value"

/** Which job states accept which verb (QEMU's `JobVerbTable`). */
const verbs: Record<string, ReadonlyArray<JobStatus>> = {
  cancel: ["created", "running", "paused", "ready", "standby", "waiting", "pending"],
  pause: ["created", "running", "paused", "ready", "standby", "waiting", "pending"],
  resume: ["created", "running", "paused", "ready", "standby", "waiting", "pending"],
  "set-speed": ["created", "running", "paused", "ready", "standby", "waiting", "pending"],
  finalize: ["pending"],
  dismiss: ["concluded"]
}

const verb = (job: Job, name: keyof typeof verbs): Effect.Effect<void, CommandError> =>
  verbs[name].includes(job.status) ?
    Effect.void :
    fail(`Job '${job.id}' in state '${job.status}' cannot accept command verb '${name}'`)

const offsetOf = (job: Job): number => Math.min(job.len, Math.floor(job.done / cluster) * cluster)

const withJob = (state: State, job: Job | undefined, id: string): State => {
  const jobs = new Map(state.jobs)
  if (job === undefined) jobs.delete(id)
  else jobs.set(id, job)
  return { ...state, jobs }
}

/** @internal */
export const make = (options: Options): Effect.Effect<Vm, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { emit } = options
    const state = yield* SynchronizedRef.make<State>({ status: options.status, nodes: new Map(), jobs: new Map() })

    /** Runs `f` under the lock; its new state is kept only if it succeeds. */
    const transact = <A>(
      f: (state: State) => Effect.Effect<readonly [A, State], CommandError>
    ): Effect.Effect<A, CommandError> => SynchronizedRef.modifyEffect(state, f)

    const statusChange = (job: Pick<Job, "id">, status: JobStatus) => emit("JOB_STATUS_CHANGE", { status, id: job.id })

    const blockJobData = (job: Job, offset: number) => ({
      device: job.id,
      len: job.len,
      offset,
      speed: job.speed,
      type: job.type
    })

    /** Jobs that are running pause and resume whenever QEMU drains the block layer (stop, a new job, quit). */
    const drain = (jobs: ReadonlyMap<string, Job>) =>
      Effect.forEach(
        jobs.values(),
        (job) =>
          job.status === "running"
            ? Effect.zipRight(statusChange(job, "paused"), statusChange(job, "running"))
            : Effect.void,
        { discard: true }
      )

    /** BLOCK_JOB_COMPLETED and concluded, then null unless the job waits for `job-dismiss`. */
    const finalize = (job: Job): Effect.Effect<Job | undefined> =>
      Effect.gen(function*() {
        yield* emit("BLOCK_JOB_COMPLETED", blockJobData(job, job.len))
        yield* statusChange(job, "concluded")
        if (!job.autoDismiss) return { ...job, status: "concluded" as const, done: job.len }
        yield* statusChange(job, "null")
        return undefined
      })

    /** The copy is done: waiting, pending, then finalized unless the job waits for `job-finalize`. */
    const complete = (job: Job): Effect.Effect<Job | undefined> =>
      Effect.gen(function*() {
        yield* statusChange(job, "waiting")
        yield* statusChange(job, "pending")
        const done = { ...job, done: job.len, status: "pending" as const }
        if (!job.autoFinalize) {
          yield* emit("BLOCK_JOB_PENDING", { type: job.type, id: job.id })
          return done
        }
        return yield* finalize(done)
      })

    const cancel = (job: Job): Effect.Effect<Job | undefined> =>
      Effect.gen(function*() {
        yield* statusChange(job, "aborting")
        yield* emit("BLOCK_JOB_CANCELLED", blockJobData(job, offsetOf(job)))
        yield* statusChange(job, "concluded")
        if (!job.autoDismiss) return { ...job, status: "concluded" as const }
        yield* statusChange(job, "null")
        return undefined
      })

    // A throttled job makes progress on its own, tick after tick, until it is done.
    yield* Effect.gen(function*() {
      yield* Effect.sleep(tickMillis)
      const now = yield* Clock.currentTimeMillis
      yield* SynchronizedRef.updateEffect(state, (current) =>
        Effect.reduce(current.jobs.values(), current, (s, job) => {
          if (job.status !== "running") return Effect.succeed(s)
          const done = job.speed === 0 ? job.len : job.done + job.speed * Math.max(0, now - job.lastTick) / 1000
          const moved = { ...job, done: Math.min(done, job.len), lastTick: now }
          return done >= job.len ?
            Effect.map(complete(moved), (next) => withJob(s, next, job.id)) :
            Effect.succeed(withJob(s, moved, job.id))
        }))
    }).pipe(Effect.forever, Effect.interruptible, Effect.forkScoped)

    const findJob = (s: State, id: unknown): Effect.Effect<Job, CommandError> => {
      const job = typeof id === "string" ? s.jobs.get(id) : undefined
      return job === undefined ? fail("Job not found") : Effect.succeed(job)
    }

    const findBlockJob = (s: State, device: unknown): Effect.Effect<Job, CommandError> => {
      const job = typeof device === "string" ? s.jobs.get(device) : undefined
      return job === undefined ?
        Effect.fail({ class: "DeviceNotActive", desc: `Block job '${String(device)}' not found` }) :
        Effect.succeed(job)
    }

    const findNode = (s: State, name: string): Effect.Effect<Node, CommandError> => {
      const node = s.nodes.get(name)
      return node === undefined ? fail(`Cannot find device='${name}' nor node-name='${name}'`) : Effect.succeed(node)
    }

    const pauseJob = (job: Job): Effect.Effect<Job, CommandError> =>
      Effect.gen(function*() {
        yield* verb(job, "pause")
        if (job.userPaused) return yield* fail("Job is already paused")
        if (job.status !== "running") return { ...job, userPaused: true }
        yield* statusChange(job, "paused")
        return { ...job, userPaused: true, status: "paused" as const }
      })

    const resumeJob = (job: Job): Effect.Effect<Job, CommandError> =>
      Effect.gen(function*() {
        yield* verb(job, "resume")
        if (!job.userPaused) return yield* fail("Can't resume a job that was not paused")
        if (job.status !== "paused") return { ...job, userPaused: false }
        yield* statusChange(job, "running")
        return { ...job, userPaused: false, status: "running" as const, lastTick: yield* Clock.currentTimeMillis }
      })

    const setSpeed = (job: Job, speed: number): Effect.Effect<Job, CommandError> =>
      Effect.gen(function*() {
        yield* verb(job, "set-speed")
        if (speed < 0) return yield* fail(negativeSpeed)
        return { ...job, speed }
      })

    const cancelJob = (job: Job): Effect.Effect<Job | undefined, CommandError> =>
      Effect.zipRight(verb(job, "cancel"), cancel(job))

    const handlers: Array<Registration> = []
    const add = (name: string, handler: Handler, oob = false) => handlers.push({ name, handler, oob })

    add("query-status", (args) =>
      Effect.zipRight(
        params(args, {}),
        Effect.map(SynchronizedRef.get(state), (s) => ({
          status: s.status,
          singlestep: false,
          running: s.status === "running"
        }))
      ))

    add("stop", (args) =>
      Effect.zipRight(
        params(args, {}),
        transact((s) =>
          Effect.gen(function*() {
            const stops = s.status === "running"
            if (stops) yield* emit("STOP")
            yield* drain(s.jobs)
            return [{}, stops ? { ...s, status: "paused" as const } : s] as const
          })
        )
      ))

    add("cont", (args) =>
      Effect.zipRight(
        params(args, {}),
        transact((s) =>
          s.status === "running" ?
            Effect.succeed([{}, s] as const) :
            Effect.as(emit("RESUME"), [{}, { ...s, status: "running" as const }] as const)
        )
      ))

    add("system_reset", (args) =>
      Effect.zipRight(params(args, {}), emit("RESET", { guest: false, reason: "host-qmp-system-reset" })))

    add("system_powerdown", (args) =>
      Effect.zipRight(params(args, {}), emit("POWERDOWN")))

    add("quit", (args, ctx) =>
      Effect.zipRight(
        params(args, {}),
        transact((s) =>
          Effect.gen(function*() {
            yield* emit("SHUTDOWN", { guest: false, reason: "host-qmp-quit" })
            // QEMU cancels what is left of the jobs as it exits, before quit's return.
            yield* drain(s.jobs)
            for (const job of s.jobs.values()) {
              if (job.status === "concluded") yield* statusChange(job, "null")
              else yield* cancel({ ...job, autoDismiss: true })
            }
            yield* ctx.reply({})
            yield* options.exit
            return [{}, { ...s, jobs: new Map() }] as const
          })
        )
      ))

    add("query-version", (args) =>
      Effect.as(params(args, {}), {
        qemu: { micro: options.version.micro, minor: options.version.minor, major: options.version.major },
        package: options.package
      }))

    add("query-commands", (args) =>
      Effect.zipRight(
        params(args, {}),
        Effect.map(options.commandNames, (names) => names.map((name) => ({ name })))
      ))

    add("query-yank", (args) => Effect.as(params(args, {}), [{ type: "chardev", id: "compat_monitor0" }]), true)

    add("blockdev-add", (args) =>
      Effect.zipRight(
        params(args, {
          driver: "string",
          "node-name": "string?",
          size: "int?",
          "latency-ns": "int?",
          "read-zeroes": "bool?",
          discard: "string?",
          cache: "any?",
          "read-only": "bool?",
          "auto-read-only": "bool?",
          "force-share": "bool?",
          "detect-zeroes": "string?"
        }),
        transact((s) =>
          Effect.gen(function*() {
            const driver = args.driver as string
            if (driver !== "null-co" && driver !== "null-aio") {
              return yield* fail(`QmpTestServer supports the null-co and null-aio drivers only, not '${driver}'`)
            }
            const name = args["node-name"]
            if (typeof name !== "string") return yield* fail("'node-name' must be specified for the root node")
            if (s.nodes.has(name)) return yield* fail(`Duplicate nodes with node-name='${name}'`)
            const size = typeof args.size === "number" ? args.size : defaultNullSize
            const nodes = new Map(s.nodes).set(name, { name, driver, size })
            return [{}, { ...s, nodes }] as const
          })
        )
      ))

    add("blockdev-del", (args) =>
      Effect.zipRight(
        params(args, { "node-name": "string" }),
        transact((s) =>
          Effect.gen(function*() {
            const name = args["node-name"] as string
            if (!s.nodes.has(name)) return yield* fail(`Failed to find node with node-name='${name}'`)
            for (const job of s.jobs.values()) {
              if (job.source === name || job.target === name) return yield* fail(`Block device ${name} is in use`)
            }
            const nodes = new Map(s.nodes)
            nodes.delete(name)
            return [{}, { ...s, nodes }] as const
          })
        )
      ))

    add("blockdev-backup", (args) =>
      Effect.gen(function*() {
        yield* params(args, {
          "job-id": "string?",
          device: "string",
          target: "string",
          sync: "string",
          speed: "int?",
          bitmap: "string?",
          "bitmap-mode": "string?",
          compress: "bool?",
          "on-source-error": "string?",
          "on-target-error": "string?",
          "auto-finalize": "bool?",
          "auto-dismiss": "bool?",
          "filter-node-name": "string?"
        })
        yield* oneOf("sync", args.sync, ["top", "full", "none", "incremental", "bitmap"])
        return yield* transact((s) =>
          Effect.gen(function*() {
            const source = yield* findNode(s, args.device as string)
            const target = yield* findNode(s, args.target as string)
            yield* drain(s.jobs)
            if (source.size !== target.size) return yield* fail("Source and target image have different sizes")
            const id = typeof args["job-id"] === "string" ? args["job-id"] : ""
            if (id === "") return yield* fail("Invalid job ID ''")
            if (s.jobs.has(id)) return yield* fail(`Job ID '${id}' already in use`)
            for (const job of s.jobs.values()) {
              if (job.target === target.name && job.status !== "concluded") {
                return yield* fail(`Node '${target.name}' is busy: block device is in use by block job: ${job.type}`)
              }
            }
            const speed = typeof args.speed === "number" ? args.speed : 0
            if (speed < 0) {
              // QEMU creates the job before it checks the speed, and drops it at once.
              for (const status of ["created", "null"] as const) yield* statusChange({ id }, status)
              return yield* fail(negativeSpeed)
            }
            let job: Job | undefined = {
              id,
              type: "backup",
              source: source.name,
              target: target.name,
              len: source.size,
              done: 0,
              speed,
              status: "running",
              userPaused: false,
              autoFinalize: args["auto-finalize"] !== false,
              autoDismiss: args["auto-dismiss"] !== false,
              lastTick: yield* Clock.currentTimeMillis
            }
            for (const status of ["created", "running", "paused", "running"] as const) {
              yield* statusChange(job, status)
            }
            // Unthrottled, QEMU 7.2 copies a null-co node before the reply: the job's whole lifecycle,
            // created to null, comes before `blockdev-backup` returns.
            if (speed === 0) job = yield* complete(job)
            return [{}, withJob(s, job, id)] as const
          })
        )
      }))

    add("query-jobs", (args) =>
      Effect.zipRight(
        params(args, {}),
        Effect.map(SynchronizedRef.get(state), (s) =>
          Array.from(s.jobs.values(), (job) => ({
            "current-progress": offsetOf(job),
            status: job.status,
            "total-progress": job.len,
            type: job.type,
            id: job.id
          })))
      ))

    add("query-block-jobs", (args) =>
      Effect.zipRight(
        params(args, {}),
        Effect.map(SynchronizedRef.get(state), (s) =>
          Array.from(s.jobs.values(), (job) => ({
            "auto-finalize": job.autoFinalize,
            "io-status": "ok",
            device: job.id,
            "auto-dismiss": job.autoDismiss,
            busy: false,
            len: job.len,
            offset: offsetOf(job),
            status: job.status,
            paused: job.userPaused,
            speed: job.speed,
            ready: false,
            type: job.type
          })))
      ))

    /** A job command: finds the job (by `id`, or by `device` for the block-job-* family), changes it. */
    const jobCommand = (
      name: string,
      key: "id" | "device",
      spec: Readonly<Record<string, ParamSpec>>,
      f: (job: Job, args: Readonly<Record<string, unknown>>) => Effect.Effect<Job | undefined, CommandError>
    ) =>
      add(name, (args) =>
        Effect.zipRight(
          params(args, { [key]: "string", ...spec }),
          transact((s) =>
            Effect.gen(function*() {
              const job = yield* (key === "id" ? findJob(s, args.id) : findBlockJob(s, args.device))
              const next = yield* f(job, args)
              return [{}, withJob(s, next, job.id)] as const
            })
          )
        ))

    jobCommand("job-pause", "id", {}, pauseJob)
    jobCommand("job-resume", "id", {}, resumeJob)
    jobCommand("job-cancel", "id", {}, cancelJob)
    jobCommand("job-finalize", "id", {}, (job) => Effect.zipRight(verb(job, "finalize"), finalize(job)))
    jobCommand("job-dismiss", "id", {}, (job) =>
      Effect.zipRight(verb(job, "dismiss"), Effect.as(statusChange(job, "null"), undefined)))
    jobCommand("block-job-pause", "device", {}, pauseJob)
    jobCommand("block-job-resume", "device", {}, resumeJob)
    jobCommand("block-job-cancel", "device", { force: "bool?" }, cancelJob)
    jobCommand("block-job-set-speed", "device", { speed: "int" }, (job, args) =>
      setSpeed(job, args.speed as number))

    return {
      status: Effect.map(SynchronizedRef.get(state), (s) =>
        s.status),
      handlers
    }
  })
