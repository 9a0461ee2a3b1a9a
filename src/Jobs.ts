/**
 * Block jobs and the other QEMU jobs (`blockdev-backup`, `blockdev-mirror`, `block-stream`,
 * `block-commit`, `blockdev-create`, ...), followed to their end.
 *
 * - `listener(jobId)` is the seed's `JobListener`: every event of one job, JOB_STATUS_CHANGE and
 *   the BLOCK_JOB_* events, matched on `id` or `device` as QEMU names the job in each, typed.
 * - `run(command, args)` registers such a listener, then starts the job, and follows it to its end:
 *   it finalizes a job that waits for it, completes a mirror that is ready (or hands it back),
 *   dismisses a job that stays, and fails with `JobFailed` and QEMU's error text when the job
 *   aborts. Interrupting it cancels the job in QEMU.
 * - `watch(jobId)` follows a job started elsewhere, without touching it.
 * - `progress(jobId)` reads a job's progress from `query-jobs`, for progress bars.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Jobs, QmpClient } from "effect-qmp"
 *
 * const program = Effect.gen(function*() {
 *   const qmp = yield* QmpClient.QmpClient
 *   yield* qmp.execute("blockdev-add", { driver: "null-co", "node-name": "src", size: 1048576 })
 *   yield* qmp.execute("blockdev-add", { driver: "null-co", "node-name": "tgt", size: 1048576 })
 *   const job = yield* Jobs.run("blockdev-backup", { device: "src", target: "tgt", sync: "full" })
 *   console.log(job.statuses) // ["created", "running", "paused", "running", "waiting", "pending", "concluded", "null"]
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { EventFilter } from "./EventFilter.js"
import * as EventListener from "./EventListener.js"
import * as Internal from "./internal/jobs.js"
import type * as Qemu72 from "./qemu/v7_2/types.js"
import * as QmpClient from "./QmpClient.js"
import type { ExecuteError, JobFailed } from "./QmpError.js"
import { JobNotFound } from "./QmpError.js"
import * as QmpEvents from "./QmpEvents.js"

/**
 * The names of the events of a job: JOB_STATUS_CHANGE, which every job sends, and the BLOCK_JOB_*
 * events of block jobs.
 *
 * @since 0.1.0
 * @category constants
 */
export const eventNames = [
  "JOB_STATUS_CHANGE",
  "BLOCK_JOB_COMPLETED",
  "BLOCK_JOB_CANCELLED",
  "BLOCK_JOB_ERROR",
  "BLOCK_JOB_READY",
  "BLOCK_JOB_PENDING"
] as const

/**
 * @since 0.1.0
 * @category models
 */
export type JobEventName = (typeof eventNames)[number]

/**
 * An event of a job, typed: tell them apart by `event`.
 *
 * @since 0.1.0
 * @category models
 */
export type JobEvent = EventListener.EventOf<JobEventName>

/**
 * The id of the job an event is about: `data.id` in JOB_STATUS_CHANGE and BLOCK_JOB_PENDING,
 * `data.device` in the other BLOCK_JOB_* events (QEMU puts the job's id there).
 *
 * @since 0.1.0
 * @category accessors
 */
export const jobIdOf = (event: JobEvent): string =>
  event.event === "JOB_STATUS_CHANGE" || event.event === "BLOCK_JOB_PENDING" ? event.data.id : event.data.device

/**
 * Accepts the events of one job (the seed's `job_filter(job_id)`, for every job event).
 *
 * @since 0.1.0
 * @category filters
 */
export const filter = (jobId: string): EventFilter<JobEvent> => (event) => jobIdOf(event) === jobId

/**
 * The seed's `JobListener(job_id)`: a listener of every event of one job, not registered yet (for
 * `QmpEvents.listen(jobA, jobB)`, or `register`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  jobId: string,
  options?: EventListener.QueueOptions
): Effect.Effect<EventListener.EventListener<JobEvent>> =>
  EventListener.make({ ...options, names: eventNames, filter: filter(jobId) })

/**
 * A listener of every event of one job, registered for the current scope: create it before the
 * command that starts the job (a fast job's whole lifecycle comes before that command returns).
 *
 * @example
 * ```ts
 * const job = yield* Jobs.listener("job4")
 * yield* qmp.execute("blockdev-backup", { "job-id": "job4", device: "src", target: "tgt", sync: "full" })
 * const events = yield* job.clear // JOB_STATUS_CHANGE created ... BLOCK_JOB_COMPLETED ... null
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const listener = (
  jobId: string,
  options?: EventListener.QueueOptions
): Effect.Effect<EventListener.EventListener<JobEvent>, never, QmpEvents.QmpEvents | Scope.Scope> =>
  Effect.flatMap(QmpEvents.QmpEvents, (events) => events.listener(eventNames, filter(jobId), options))

/**
 * The commands that start a job (their arguments have a `job-id`): `blockdev-backup`,
 * `blockdev-mirror`, `block-stream`, `block-commit`, `blockdev-create`, `snapshot-save`, ...
 *
 * @since 0.1.0
 * @category typing
 */
export type JobCommand = {
  readonly [C in keyof QmpClient.DefaultCommands & string]: "job-id" extends keyof QmpClient.DefaultCommands[C]["args"]
    ? C
    : never
}[keyof QmpClient.DefaultCommands & string]

/**
 * The arguments of a job's command, with `job-id` optional: `run` fills in a fresh one.
 *
 * @since 0.1.0
 * @category typing
 */
export type JobArguments<C extends JobCommand> =
  & Omit<QmpClient.DefaultCommands[C]["args"], "job-id">
  & { readonly "job-id"?: string | undefined }

/**
 * A mirror-like job at `ready`, handed back by `run` with `onReady: "return"`: QEMU keeps the
 * source and the target in step until `complete` (or the scope closes, which cancels the job).
 *
 * @since 0.1.0
 * @category models
 */
export interface Ready {
  readonly _tag: "Ready"
  readonly id: string
  readonly type: Qemu72.JobType
  /** The statuses so far, ending with `ready`. */
  readonly statuses: ReadonlyArray<Qemu72.JobStatus>
  /** Completes the job (`job-complete`: a mirror switches to its target) and follows it to its end. */
  readonly complete: Effect.Effect<Concluded, JobFailed | ExecuteError>
}

/**
 * A job that ran to its end and did its work: its id, its type, and every status QEMU reported, in
 * order (from `created` to `null` for a job that `run` started).
 *
 * @since 0.1.0
 * @category models
 */
export type Concluded = Internal.Concluded

/**
 * @since 0.1.0
 * @category models
 */
export interface RunOptions {
  /**
   * What to do when the job reaches `ready` (a mirror, once source and target are in step):
   * `"complete"` (the default) sends `job-complete` and follows the job to its end; `"return"` hands
   * the ready job back (`Ready`), for the current scope.
   */
  readonly onReady?: "complete" | "return" | undefined
  /**
   * How long the clean-up after an interruption may take in all (`job-cancel`, QEMU reporting the
   * end, `job-dismiss`): 5 seconds by default. A job still running then is logged (a warning).
   */
  readonly cancelTimeout?: Duration.DurationInput | undefined
}

/**
 * The default `cancelTimeout`.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultCancelTimeout: Duration.Duration = Duration.seconds(5)

/**
 * A job started for the current scope (`start`): closing the scope cancels it if it is still
 * running then (as interrupting `run` does).
 *
 * @since 0.1.0
 * @category models
 */
export interface Job<A> {
  /** The job's id: the `job-id` given, or the one filled in (`job-` and six base-36 characters). */
  readonly id: string
  /**
   * Follows the job to its end, as `run` does. Run it once: it takes the job's events from the
   * job's listener as it goes.
   */
  readonly result: Effect.Effect<A, JobFailed | ExecuteError>
}

/** The command started a job, or may have: it timed out, and QEMU may still run it. */
const mayHaveStarted = (exit: Exit.Exit<unknown, ExecuteError>): boolean =>
  Exit.isSuccess(exit) || Option.exists(Cause.failureOption(exit.cause), (error) => error._tag === "QmpTimeoutError")

type Execute = (command: string, args: Readonly<Record<string, unknown>>) => Effect.Effect<unknown, ExecuteError>

/** `start`, given how to run the command. */
const startWith = (execute: (qmp: QmpClient.Service) => Execute) =>
(
  command: string,
  args: Readonly<Record<string, unknown>>,
  options: RunOptions = {}
): Effect.Effect<Job<Concluded | Ready>, ExecuteError, QmpClient.QmpClient | QmpEvents.QmpEvents | Scope.Scope> =>
  Effect.gen(function*() {
    const qmp = yield* QmpClient.QmpClient
    const given = args["job-id"]
    const id = given === undefined ? yield* Internal.makeId : String(given) // not a string: QEMU says so
    const jobListener = yield* listener(id)
    const tracker = Internal.makeTracker(id)
    const cancelTimeout = Duration.decode(options.cancelTimeout ?? defaultCancelTimeout)
    // Sent whole (an acquisition cannot be interrupted): once it has returned, the job exists or
    // not. A command that timed out may still start the job: the clean-up's query-jobs, which QEMU
    // runs after it, finds the job then. A refused command started none (its id may be another
    // job's: "Job ID 'x' already in use").
    const sent = yield* Effect.acquireRelease(
      Effect.exit(execute(qmp)(command, given === undefined ? { ...args, "job-id": id } : args)),
      (exit) => mayHaveStarted(exit) ? Internal.cancel(qmp, jobListener, tracker, cancelTimeout) : Effect.void
    )
    yield* sent
    const policy: Internal.Policy = {
      _tag: "Run",
      autoFinalize: args["auto-finalize"] !== false,
      onReady: options.onReady ?? "complete"
    }
    const completing: Internal.Policy = { ...policy, onReady: "complete" }
    const result = Effect.map(
      Internal.follow(qmp, jobListener, tracker, policy),
      (outcome): Concluded | Ready =>
        outcome !== "ready" ? outcome : {
          _tag: "Ready",
          id,
          type: tracker.type ?? ("unknown" as Qemu72.JobType),
          statuses: [...tracker.statuses],
          complete: Effect.suspend(() => {
            tracker.completing = true
            return Effect.zipRight(
              qmp.execute("job-complete", { id }),
              Internal.follow(qmp, jobListener, tracker, completing)
            )
          }) as Effect.Effect<Concluded, JobFailed | ExecuteError>
        }
    )
    return { id, result }
  })

/**
 * `run`, given how to run the command: the job's scope is the call's own, or (for a ready job handed
 * back) the caller's.
 */
const runWith = (execute: (qmp: QmpClient.Service) => Execute) =>
(
  command: string,
  args: Readonly<Record<string, unknown>>,
  options: RunOptions = {}
): Effect.Effect<any, JobFailed | ExecuteError, any> => {
  const job = Effect.flatMap(startWith(execute)(command, args, options), (job) => job.result)
  if (options.onReady !== "return") return Effect.scoped(job)
  return Effect.gen(function*() {
    const scope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    return yield* job.pipe(
      Scope.extend(scope),
      Effect.onExit((exit) =>
        Exit.isSuccess(exit) && exit.value._tag === "Ready" ? Effect.void : Scope.close(scope, exit)
      )
    )
  })
}

/**
 * Starts a job and follows it to its end: its listener is registered before the command is sent,
 * and a missing `job-id` is filled in
 * (`job-` and six base-36 characters).
 *
 * - It succeeds with `Concluded` (the statuses from `created` to `null`) once QEMU no longer knows
 *   the job: a job that stays concluded (`auto-dismiss: false`, create jobs) is dismissed first.
 * - A job started with `auto-finalize: false` is finalized when it reaches `pending`.
 * - A mirror-like job at `ready` is completed (`job-complete`), or with `onReady: "return"` handed
 *   back as `Ready`, for the current scope: closing the scope cancels it unless it was completed.
 * - A job that aborts fails with `JobFailed`: QEMU's error text (BLOCK_JOB_COMPLETED's `error` for a
 *   block job dismissed at once, `query-jobs`' for a job that stays), or `Cancelled` when it was
 *   cancelled. A command QEMU refuses fails with `QmpExecuteError`.
 * - Interrupted, it cancels the job (`job-cancel`), waits until QEMU reports its end (up to
 *   `cancelTimeout`), and dismisses it if it stays, uninterruptibly: no job is left running.
 *
 * @example
 * ```ts
 * const done = yield* Jobs.run("blockdev-create", {
 *   options: { driver: "qcow2", file: "proto", size: 16 * 1024 * 1024 }
 * })
 *
 * // A mirror at ready, handed back: complete it when the time has come
 * const mirror = yield* Jobs.run("blockdev-mirror", { device: "src", target: "tgt", sync: "full" }, {
 *   onReady: "return"
 * })
 * if (mirror._tag === "Ready") yield* mirror.complete
 * ```
 *
 * @since 0.1.0
 * @category running
 */
export const run: {
  <C extends JobCommand>(
    command: C,
    args: JobArguments<C>,
    options: RunOptions & { readonly onReady: "return" }
  ): Effect.Effect<
    Concluded | Ready,
    JobFailed | ExecuteError,
    QmpClient.QmpClient | QmpEvents.QmpEvents | Scope.Scope
  >
  <C extends JobCommand>(
    command: C,
    args: JobArguments<C>,
    options?: RunOptions & { readonly onReady?: "complete" | undefined }
  ): Effect.Effect<Concluded, JobFailed | ExecuteError, QmpClient.QmpClient | QmpEvents.QmpEvents>
} = runWith((qmp) => qmp.execute as unknown as Execute)

/**
 * `run` for any command, its arguments unchecked: a newer QEMU's job commands, names known only at
 * run time (`qmp job run`).
 *
 * @since 0.1.0
 * @category running
 */
export const runUnknown: {
  (
    command: string,
    args: Readonly<Record<string, unknown>>,
    options: RunOptions & { readonly onReady: "return" }
  ): Effect.Effect<
    Concluded | Ready,
    JobFailed | ExecuteError,
    QmpClient.QmpClient | QmpEvents.QmpEvents | Scope.Scope
  >
  (
    command: string,
    args: Readonly<Record<string, unknown>>,
    options?: RunOptions & { readonly onReady?: "complete" | undefined }
  ): Effect.Effect<Concluded, JobFailed | ExecuteError, QmpClient.QmpClient | QmpEvents.QmpEvents>
} = runWith((qmp) => qmp.executeUnknown)

/**
 * Starts a job as `run` does, for the current scope, and gives it once the command has returned
 * (the job exists then, unless it ended already): `id` for `progress`, and `result` to follow it to
 * its end. Closing the scope cancels the job if it is still running, as interrupting `run` does.
 *
 * @example
 * ```ts
 * const job = yield* Jobs.start("blockdev-backup", { device: "src", target: "tgt", sync: "full", speed: 8388608 })
 * const [done] = yield* Effect.all([
 *   job.result,
 *   Jobs.progress(job.id).pipe(Stream.runForEach((info) => Console.log(info["current-progress"])))
 * ], { concurrency: "unbounded" })
 * ```
 *
 * @since 0.1.0
 * @category running
 */
export const start: {
  <C extends JobCommand>(
    command: C,
    args: JobArguments<C>,
    options: RunOptions & { readonly onReady: "return" }
  ): Effect.Effect<Job<Concluded | Ready>, ExecuteError, QmpClient.QmpClient | QmpEvents.QmpEvents | Scope.Scope>
  <C extends JobCommand>(
    command: C,
    args: JobArguments<C>,
    options?: RunOptions & { readonly onReady?: "complete" | undefined }
  ): Effect.Effect<Job<Concluded>, ExecuteError, QmpClient.QmpClient | QmpEvents.QmpEvents | Scope.Scope>
} = startWith((qmp) => qmp.execute as unknown as Execute) as any

/**
 * `start` for any command, its arguments unchecked (`qmp job run` starts its jobs with it).
 *
 * @since 0.1.0
 * @category running
 */
export const startUnknown: {
  (
    command: string,
    args: Readonly<Record<string, unknown>>,
    options: RunOptions & { readonly onReady: "return" }
  ): Effect.Effect<Job<Concluded | Ready>, ExecuteError, QmpClient.QmpClient | QmpEvents.QmpEvents | Scope.Scope>
  (
    command: string,
    args: Readonly<Record<string, unknown>>,
    options?: RunOptions & { readonly onReady?: "complete" | undefined }
  ): Effect.Effect<Job<Concluded>, ExecuteError, QmpClient.QmpClient | QmpEvents.QmpEvents | Scope.Scope>
} = startWith((qmp) => qmp.executeUnknown) as any

/**
 * Follows a job started elsewhere (by another client, say) to its end, without touching it: it
 * neither finalizes, completes, dismisses nor cancels it, and interrupting it leaves the job alone.
 * It ends when QEMU dismisses the job, or when the job concluded and stays (`auto-dismiss: false`,
 * create jobs), with `Concluded` (the statuses seen from the start of the watch), or `JobFailed`
 * as `run`. A job QEMU does not know fails with `JobNotFound`.
 *
 * @since 0.1.0
 * @category running
 */
export const watch = (
  jobId: string
): Effect.Effect<Concluded, JobFailed | JobNotFound | ExecuteError, QmpClient.QmpClient | QmpEvents.QmpEvents> =>
  Effect.scoped(Effect.gen(function*() {
    const qmp = yield* QmpClient.QmpClient
    const jobListener = yield* listener(jobId)
    const tracker = Internal.makeTracker(jobId)
    const info = yield* Internal.findJob(qmp, jobId)
    if (info === undefined) {
      // Not listed: unknown, unless its end came between the listener and query-jobs.
      if (yield* jobListener.isEmpty) return yield* new JobNotFound({ id: jobId })
    } else {
      tracker.type = info.type
      if (info.status === "concluded") {
        tracker.statuses.push(info.status)
        tracker.error = info.error
        return yield* Internal.ended(tracker)
      }
    }
    return (yield* Internal.follow(qmp, jobListener, tracker, { _tag: "Watch" })) as Concluded
  }))

/**
 * @since 0.1.0
 * @category models
 */
export interface ProgressOptions {
  /** How often to read `query-jobs`: every 100 milliseconds by default. */
  readonly interval?: Duration.DurationInput | undefined
}

/**
 * The job's entry of `query-jobs` (`status`, `current-progress`, `total-progress`, ...), read every
 * `interval` and given when it changed, for progress bars. The units of progress are the job's
 * own (bytes for block jobs): only their ratio means something. It ends when the job does: after
 * its `concluded` entry, or when `query-jobs` no longer lists it (a job dismissed at once is
 * usually gone before a read sees it concluded), at once for a job QEMU does not know.
 *
 * @since 0.1.0
 * @category running
 */
export const progress = (
  jobId: string,
  options: ProgressOptions = {}
): Stream.Stream<Qemu72.JobInfo, ExecuteError, QmpClient.QmpClient> =>
  Stream.unwrap(Effect.map(QmpClient.QmpClient, (qmp) =>
    Stream.repeatEffectWithSchedule(
      Internal.findJob(qmp, jobId),
      Schedule.spaced(options.interval ?? Duration.millis(100))
    ).pipe(
      Stream.takeUntil((info) => info === undefined || info.status === "concluded" || info.status === "null"),
      Stream.filter((info): info is Qemu72.JobInfo => info !== undefined),
      Stream.changesWith((a, b) =>
        a.status === b.status && a["current-progress"] === b["current-progress"] &&
        a["total-progress"] === b["total-progress"]
      )
    )))
