/**
 * Block nodes and backup jobs of `QmpTestServer`'s VM, as QEMU 7.2 runs them over `null-co` nodes:
 * the JOB_STATUS_CHANGE lifecycle, BLOCK_JOB_* events, progress, and the drains that pause and resume
 * running jobs, in QEMU's order (all of it taken from QEMU 7.2 over a raw socket, and held to it by
 * the conformance suite).
 *
 * - Jobs are kept oldest first; `query-jobs` and `query-block-jobs` list them newest first.
 * - A drain of everything (`stop`, whether the VM runs or not; the start of `blockdev-backup`) pauses
 *   every running job, oldest first, then resumes them in the same order. A drain of one node (the
 *   source of a new backup, for the length of the command; the source of a finishing job, as its
 *   filter is dropped) pauses the running jobs that use the node, newest first, and resumes them in
 *   the same order when it ends. A job paused by its user is left alone.
 * - A new job is created, runs, pauses for the drain of its source and runs again when the drain
 *   ends; without a `speed` it then copies everything before the command returns.
 * - A job that finishes waits, is pending (BLOCK_JOB_PENDING without `auto-finalize`), completes
 *   (BLOCK_JOB_COMPLETED), concludes, and goes (`null`) unless it waits for `job-dismiss`.
 * - A cancelled job runs again if it was paused, aborts (BLOCK_JOB_CANCELLED), concludes with the
 *   error "Operation canceled", and goes unless it waits for `job-dismiss`.
 * - `quit` drains everything for good, then cancels every job left, newest first (a concluded one
 *   just goes).
 *
 * Every function here runs inside one transaction of the VM's state (`vm.ts`), on a draft that the
 * transaction keeps only if it succeeds.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Qemu72 from "../../qemu/v7_2/types.js"
import type { CommandError, Handler, RunState } from "../../testing/QmpTestServer.js"
import type { ParamSpec } from "./params.js"
import { fail, oneOf, params } from "./params.js"

/** @internal */
export type JobStatus = Exclude<Qemu72.JobStatus, "undefined">

/** @internal */
export interface Node {
  readonly name: string
  readonly driver: string
  readonly size: number
}

/** A job, changed in place on a draft. @internal */
export interface Job {
  readonly id: string
  readonly type: "backup"
  readonly source: string
  readonly target: string
  readonly len: number
  /** Bytes copied so far, as a real number: the progress reported is rounded down to a cluster. */
  done: number
  /** Bytes per second; 0 is unlimited. */
  speed: number
  status: JobStatus
  userPaused: boolean
  readonly autoFinalize: boolean
  readonly autoDismiss: boolean
  /** When the job last made progress, in milliseconds. */
  lastTick: number
  /** Why it ended without completing. */
  error: string | undefined
}

/** The VM's state, as a transaction changes it. @internal */
export interface Draft {
  status: RunState
  readonly nodes: Map<string, Node>
  /** Jobs not dismissed yet, oldest first. */
  jobs: Array<Job>
}

/** @internal */
export interface Context {
  readonly emit: (event: string, data?: Readonly<Record<string, unknown>>) => Effect.Effect<void>
}

/** The size of a `null-co` node without `size`: 1 GiB, as QEMU. */
const defaultNullSize = 1024 * 1024 * 1024

/** A backup job copies cluster by cluster: its progress moves in these steps. */
const cluster = 64 * 1024

/** Which job states accept which verb (QEMU's `JobVerbTable`). */
const verbs: Record<string, ReadonlyArray<JobStatus>> = {
  cancel: ["created", "running", "paused", "ready", "standby", "waiting", "pending", "aborting"],
  pause: ["created", "running", "paused", "ready", "standby"],
  resume: ["created", "running", "paused", "ready", "standby"],
  "set-speed": ["created", "running", "paused", "ready", "standby"],
  finalize: ["pending"],
  dismiss: ["concluded"]
}

const verb = (job: Job, name: keyof typeof verbs): Effect.Effect<void, CommandError> =>
  verbs[name].includes(job.status) ?
    Effect.void :
    fail(`Job '${job.id}' in state '${job.status}' cannot accept command verb '${name}'`)

const offsetOf = (job: Job): number => Math.min(job.len, Math.floor(job.done / cluster) * cluster)

/** A job ID QEMU accepts: a letter, then letters, digits, `-`, `.` and `_`. */
const wellFormed = (id: string): boolean => /^[A-Za-z][A-Za-z0-9._-]*$/.test(id)

/** The job has not concluded: it still holds its nodes. */
const holdsNodes = (job: Job): boolean => job.status !== "concluded" && job.status !== "null"

const busy = (node: string): string => `Node '${node}' is busy: block device is in use by block job: backup`

/** Jobs, newest first. */
const newestFirst = (draft: Draft): Array<Job> => draft.jobs.slice().reverse()

/** @internal */
export const make = (context: Context) => {
  const { emit } = context

  // QAPI's member order for every event and reply built here; the server writes them in QEMU's.
  const statusChange = (job: Job, status: JobStatus) => {
    job.status = status
    return emit("JOB_STATUS_CHANGE", { id: job.id, status })
  }

  /** A transient pause and resume that leaves the job running. */
  const emitStatus = (job: Job, status: JobStatus) => emit("JOB_STATUS_CHANGE", { id: job.id, status })

  const blockJobData = (job: Job, offset: number) => ({
    type: job.type,
    device: job.id,
    len: job.len,
    offset,
    speed: job.speed
  })

  const remove = (draft: Draft, job: Job) => {
    draft.jobs = draft.jobs.filter((j) => j !== job)
  }

  /** Drains everything: every running job pauses, oldest first, then resumes in the same order. */
  const drainAll = (draft: Draft): Effect.Effect<void> =>
    Effect.suspend(() => {
      const running = draft.jobs.filter((job) => job.status === "running")
      return Effect.zipRight(
        Effect.forEach(running, (job) => emitStatus(job, "paused"), { discard: true }),
        Effect.forEach(running, (job) => emitStatus(job, "running"), { discard: true })
      )
    })

  /** Starts a drain of `node`: the running jobs that use it pause, newest first. Gives them, for `drainEnd`. */
  const drainBegin = (draft: Draft, node: string, except?: Job): Effect.Effect<ReadonlyArray<Job>> =>
    Effect.suspend(() => {
      const held = newestFirst(draft).filter((job) =>
        job !== except && job.status === "running" && (job.source === node || job.target === node)
      )
      return Effect.as(Effect.forEach(held, (job) => emitStatus(job, "paused"), { discard: true }), held)
    })

  const drainEnd = (held: ReadonlyArray<Job>): Effect.Effect<void> =>
    Effect.forEach(held, (job) => emitStatus(job, "running"), { discard: true })

  /** BLOCK_JOB_COMPLETED and concluded, then null unless the job waits for `job-dismiss`. */
  const finalize = (draft: Draft, job: Job): Effect.Effect<void> =>
    Effect.gen(function*() {
      // Dropping the job's filter drains its source.
      yield* drainEnd(yield* drainBegin(draft, job.source, job))
      yield* emit("BLOCK_JOB_COMPLETED", blockJobData(job, job.len))
      yield* statusChange(job, "concluded")
      if (job.autoDismiss) {
        yield* statusChange(job, "null")
        remove(draft, job)
      }
    })

  /** The copy is done: waiting, pending, then finalized unless the job waits for `job-finalize`. */
  const complete = (draft: Draft, job: Job): Effect.Effect<void> =>
    Effect.gen(function*() {
      job.done = job.len
      yield* statusChange(job, "waiting")
      yield* statusChange(job, "pending")
      if (!job.autoFinalize) return yield* emit("BLOCK_JOB_PENDING", { type: job.type, id: job.id })
      yield* finalize(draft, job)
    })

  /** Cancels a job: it runs again if paused, aborts, concludes with an error, and goes unless kept. */
  const cancel = (draft: Draft, job: Job, dismiss = job.autoDismiss): Effect.Effect<void> =>
    Effect.gen(function*() {
      if (job.status === "paused") yield* statusChange(job, "running")
      yield* statusChange(job, "aborting")
      yield* emit("BLOCK_JOB_CANCELLED", blockJobData(job, offsetOf(job)))
      yield* statusChange(job, "concluded")
      job.error = "Operation canceled"
      if (dismiss) {
        yield* statusChange(job, "null")
        remove(draft, job)
      }
    })

  /** What `quit` does to the jobs, after SHUTDOWN: a drain that never ends, then each job cancelled. */
  const quit = (draft: Draft): Effect.Effect<void> =>
    Effect.gen(function*() {
      for (const job of draft.jobs) {
        if (job.status === "running") yield* statusChange(job, "paused")
      }
      for (const job of newestFirst(draft)) {
        if (job.status === "concluded") {
          yield* statusChange(job, "null")
          remove(draft, job)
        } else {
          yield* cancel(draft, job, true)
        }
      }
    })

  /** A throttled job makes progress; it completes once it has copied everything. */
  const tick = (draft: Draft, now: number): Effect.Effect<void> =>
    Effect.forEach(draft.jobs.slice(), (job) => {
      if (job.status !== "running" || !draft.jobs.includes(job)) return Effect.void
      const done = job.speed === 0 ? job.len : job.done + job.speed * Math.max(0, now - job.lastTick) / 1000
      job.done = Math.min(done, job.len)
      job.lastTick = now
      return done >= job.len ? complete(draft, job) : Effect.void
    }, { discard: true })

  const findJob = (draft: Draft, id: unknown): Effect.Effect<Job, CommandError> => {
    const job = draft.jobs.find((j) => j.id === id)
    return job === undefined ? fail("Job not found") : Effect.succeed(job)
  }

  const findBlockJob = (draft: Draft, device: unknown): Effect.Effect<Job, CommandError> => {
    const job = draft.jobs.find((j) => j.id === device)
    return job === undefined ?
      Effect.fail({ class: "DeviceNotActive", desc: `Block job '${String(device)}' not found` }) :
      Effect.succeed(job)
  }

  const findNode = (draft: Draft, name: string): Effect.Effect<Node, CommandError> => {
    const node = draft.nodes.get(name)
    return node === undefined ? fail(`Cannot find device='${name}' nor node-name='${name}'`) : Effect.succeed(node)
  }

  const pauseJob = (job: Job): Effect.Effect<void, CommandError> =>
    Effect.gen(function*() {
      yield* verb(job, "pause")
      if (job.userPaused) return yield* fail("Job is already paused")
      job.userPaused = true
      if (job.status === "running") yield* statusChange(job, "paused")
    })

  const resumeJob = (job: Job): Effect.Effect<void, CommandError> =>
    Effect.gen(function*() {
      yield* verb(job, "resume")
      if (!job.userPaused) return yield* fail("Can't resume a job that was not paused")
      job.userPaused = false
      if (job.status === "paused") {
        yield* statusChange(job, "running")
        job.lastTick = yield* Clock.currentTimeMillis
      }
    })

  const speedError = "Parameter 'speed' expects a non-negative value"

  /** `blockdev-backup`, after its arguments were checked: QEMU's transaction, drains and checks in its order. */
  const startBackup = (draft: Draft, args: Readonly<Record<string, unknown>>): Effect.Effect<void, CommandError> =>
    Effect.gen(function*() {
      yield* drainAll(draft)
      const source = yield* findNode(draft, args.device as string)
      const target = yield* findNode(draft, args.target as string)
      const held = yield* drainBegin(draft, source.name)
      const created = yield* Effect.either(Effect.gen(function*() {
        if (source === target) return yield* fail("Source and target cannot be the same")
        for (const node of [source, target]) {
          if (draft.jobs.some((job) => holdsNodes(job) && job.target === node.name)) return yield* fail(busy(node.name))
        }
        if (source.size !== target.size) return yield* fail("Source and target image have different sizes")
        const id = typeof args["job-id"] === "string" ? args["job-id"] : ""
        if (!wellFormed(id)) return yield* fail(`Invalid job ID '${id}'`)
        if (draft.jobs.some((job) => job.id === id)) return yield* fail(`Job ID '${id}' already in use`)
        const speed = typeof args.speed === "number" ? args.speed : 0
        const job: Job = {
          id,
          type: "backup",
          source: source.name,
          target: target.name,
          len: source.size,
          done: 0,
          speed,
          status: "created",
          userPaused: false,
          autoFinalize: args["auto-finalize"] !== false,
          autoDismiss: args["auto-dismiss"] !== false,
          lastTick: yield* Clock.currentTimeMillis,
          error: undefined
        }
        yield* statusChange(job, "created")
        if (speed < 0) {
          yield* statusChange(job, "null")
          return yield* fail(speedError)
        }
        draft.jobs.push(job)
        yield* statusChange(job, "running")
        yield* statusChange(job, "paused")
        return job
      }))
      if (created._tag === "Left") {
        yield* drainEnd(held)
        return yield* Effect.fail(created.left)
      }
      const job = created.right
      yield* statusChange(job, "running")
      yield* drainEnd(held)
      // Unthrottled, QEMU 7.2 copies a null-co node before the reply: the job's whole lifecycle comes
      // before `blockdev-backup` returns.
      if (job.speed === 0) yield* complete(draft, job)
    })

  /** The commands, each given the transaction to run in. */
  const handlers = (
    transact: <A>(f: (draft: Draft) => Effect.Effect<A, CommandError>) => Effect.Effect<A, CommandError>,
    read: Effect.Effect<Draft>
  ): ReadonlyArray<readonly [string, Handler]> => {
    /** A job command: finds the job (by `id`, or by `device` for the block-job-* family), changes it. */
    const jobCommand = (
      key: "id" | "device",
      spec: Readonly<Record<string, ParamSpec>>,
      f: (draft: Draft, job: Job, args: Readonly<Record<string, unknown>>) => Effect.Effect<void, CommandError>
    ): Handler =>
    (args) =>
      Effect.zipRight(
        params(args, { [key]: "string", ...spec }),
        transact((draft) =>
          Effect.flatMap(key === "id" ? findJob(draft, args.id) : findBlockJob(draft, args.device), (job) =>
            f(draft, job, args))
        )
      )

    return [
      ["blockdev-add", (args) =>
        Effect.zipRight(
          params(args, {
            driver: "string",
            "node-name": "string?",
            discard: "string?",
            cache: "any?",
            "read-only": "bool?",
            "auto-read-only": "bool?",
            "force-share": "bool?",
            "detect-zeroes": "string?",
            size: "int?",
            "latency-ns": "int?",
            "read-zeroes": "bool?"
          }),
          transact((draft) =>
            Effect.gen(function*() {
              const driver = args.driver as string
              if (driver !== "null-co" && driver !== "null-aio") {
                return yield* fail(`QmpTestServer supports the null-co and null-aio drivers only, not '${driver}'`)
              }
              const name = args["node-name"]
              if (typeof name !== "string") return yield* fail("'node-name' must be specified for the root node")
              if (draft.nodes.has(name)) return yield* fail(`Duplicate nodes with node-name='${name}'`)
              draft.nodes.set(name, { name, driver, size: typeof args.size === "number" ? args.size : defaultNullSize })
            })
          )
        )],
      ["blockdev-del", (args) =>
        Effect.zipRight(
          params(args, { "node-name": "string" }),
          transact((draft) =>
            Effect.gen(function*() {
              const name = args["node-name"] as string
              if (!draft.nodes.has(name)) return yield* fail(`Failed to find node with node-name='${name}'`)
              const users = draft.jobs.filter(holdsNodes)
              if (users.some((job) => job.target === name)) return yield* fail(busy(name))
              if (users.some((job) => job.source === name)) return yield* fail(`Block device ${name} is in use`)
              draft.nodes.delete(name)
            })
          )
        )],
      ["blockdev-backup", (args) =>
        Effect.gen(function*() {
          yield* params(args, {
            "job-id": "string?",
            device: "string",
            sync: "string",
            speed: "int?",
            bitmap: "string?",
            "bitmap-mode": "string?",
            compress: "bool?",
            "on-source-error": "string?",
            "on-target-error": "string?",
            "auto-finalize": "bool?",
            "auto-dismiss": "bool?",
            "filter-node-name": "string?",
            target: "string"
          })
          yield* oneOf("sync", args.sync, ["top", "full", "none", "incremental", "bitmap"])
          yield* transact((draft) => startBackup(draft, args))
        })],
      ["query-jobs", (args) =>
        Effect.zipRight(
          params(args, {}),
          Effect.map(read, (draft) =>
            newestFirst(draft).map((job) => ({
              id: job.id,
              type: job.type,
              status: job.status,
              "current-progress": offsetOf(job),
              "total-progress": job.len,
              ...(job.error === undefined ? {} : { error: job.error })
            })))
        )],
      ["query-block-jobs", (args) =>
        Effect.zipRight(
          params(args, {}),
          Effect.map(read, (draft) =>
            newestFirst(draft).map((job) => ({
              type: job.type,
              device: job.id,
              len: job.len,
              offset: offsetOf(job),
              busy: false,
              paused: job.userPaused,
              speed: job.speed,
              "io-status": "ok",
              ready: false,
              status: job.status,
              "auto-finalize": job.autoFinalize,
              "auto-dismiss": job.autoDismiss,
              ...(job.error === undefined ? {} : { error: job.error })
            })))
        )],
      ["job-pause", jobCommand("id", {}, (_, job) => pauseJob(job))],
      ["job-resume", jobCommand("id", {}, (_, job) => resumeJob(job))],
      ["job-cancel", jobCommand("id", {}, (draft, job) => Effect.zipRight(verb(job, "cancel"), cancel(draft, job)))],
      [
        "job-finalize",
        jobCommand("id", {}, (draft, job) => Effect.zipRight(verb(job, "finalize"), finalize(draft, job)))
      ],
      [
        "job-dismiss",
        jobCommand("id", {}, (draft, job) =>
          Effect.gen(function*() {
            yield* verb(job, "dismiss")
            yield* statusChange(job, "null")
            remove(draft, job)
          }))
      ],
      ["block-job-pause", jobCommand("device", {}, (_, job) => pauseJob(job))],
      ["block-job-resume", jobCommand("device", {}, (_, job) => resumeJob(job))],
      [
        "block-job-cancel",
        jobCommand(
          "device",
          { force: "bool?" },
          (draft, job) => Effect.zipRight(verb(job, "cancel"), cancel(draft, job))
        )
      ],
      [
        "block-job-set-speed",
        jobCommand("device", { speed: "int" }, (_, job, args) =>
          Effect.gen(function*() {
            yield* verb(job, "set-speed")
            const speed = args.speed as number
            if (speed < 0) return yield* fail(speedError)
            job.speed = speed
          }))
      ]
    ]
  }

  return { drainAll, quit, tick, handlers }
}
