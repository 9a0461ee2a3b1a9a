/**
 * Following one job to its end, and cancelling one for sure: the state machine behind `Jobs.run`,
 * `Jobs.watch` and a ready job's `complete`.
 *
 * What QEMU 7.2 does, which this relies on:
 *
 * - A job reports each status with JOB_STATUS_CHANGE (`{ id, status }`); block jobs also send
 *   BLOCK_JOB_COMPLETED, BLOCK_JOB_CANCELLED, BLOCK_JOB_READY and BLOCK_JOB_ERROR, which name the
 *   job as `device`, and BLOCK_JOB_PENDING, which names it as `id`. Create jobs (and the other
 *   generic jobs) send only JOB_STATUS_CHANGE.
 * - Every job that ran ends `concluded`, then `null` when it is dismissed. A block job is
 *   dismissed at once unless it was started with `auto-dismiss: false`; then, and for generic jobs
 *   (`blockdev-create`, ...), it stays in `query-jobs` as `concluded` until `job-dismiss`. QEMU
 *   emits `concluded` and the automatic `null` in the same main-loop step, and runs QMP commands in
 *   that loop too: a `query-jobs` sent after `concluded` was seen lists the job if and only if it
 *   stays.
 * - A job that aborts passes through `aborting`. Its error text is BLOCK_JOB_COMPLETED's `error`
 *   (block jobs), and `query-jobs`' `error` for as long as the job is listed: a job dismissed at
 *   once has it only in the event, a job that stays has it only in `query-jobs` (no event carries
 *   a create job's error). A cancelled block job sends BLOCK_JOB_CANCELLED, without an error.
 * - A job QEMU refuses after creating it (a negative `speed`) goes `created`, then `null`, and the
 *   command fails: its events come before the error reply.
 * - A mirror-like job stops at `ready` until `job-complete` (or a cancel); `job-complete` returns
 *   before the rest of the job's events. A job started with `auto-finalize: false` stops at
 *   `pending` until `job-finalize`.
 * - `job-cancel` is accepted in every state but `concluded` and `null` (QEMU's verb table), and
 *   `job-dismiss` only in `concluded`; for a job QEMU no longer knows, both fail ("Job not found").
 * - In-band commands of one monitor run one after another, in the order they were sent.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Random from "effect/Random"
import type * as EventListener from "../EventListener.js"
import type { JobInfo, JobStatus, JobType } from "../qemu/v7_2/types.js"
import type * as QmpClient from "../QmpClient.js"
import type { ExecuteError } from "../QmpError.js"
import { JobFailed } from "../QmpError.js"

/** The events of one job, as a job listener gives them. */
type JobEvent = EventListener.EventOf<
  | "JOB_STATUS_CHANGE"
  | "BLOCK_JOB_COMPLETED"
  | "BLOCK_JOB_CANCELLED"
  | "BLOCK_JOB_ERROR"
  | "BLOCK_JOB_READY"
  | "BLOCK_JOB_PENDING"
>

/** A job that ran to its end and did its work. */
export interface Concluded {
  readonly _tag: "Concluded"
  readonly id: string
  readonly type: JobType
  readonly statuses: ReadonlyArray<JobStatus>
}

/**
 * What is known of one job as its events come: filled by one fiber at a time (the one following
 * the job, then the one cancelling it), never shared between two at once.
 */
export interface Tracker {
  readonly id: string
  type: JobType | undefined
  /** Every JOB_STATUS_CHANGE status, in order. */
  readonly statuses: Array<JobStatus>
  /** QEMU's error text, once it gave one. */
  error: string | undefined
  /** BLOCK_JOB_CANCELLED came. */
  cancelled: boolean
  /** `job-complete` was sent. */
  completing: boolean
  /** `null` came: QEMU no longer knows the job. */
  gone: boolean
}

/** @internal */
export const makeTracker = (id: string): Tracker => ({
  id,
  type: undefined,
  statuses: [],
  error: undefined,
  cancelled: false,
  completing: false,
  gone: false
})

/**
 * What to do along the way: only watch (`Jobs.watch`), or run the job (`Jobs.run`): finalize it
 * when it waits for that, complete it or stop at `ready`, and dismiss it once it concluded.
 */
export type Policy =
  | { readonly _tag: "Watch" }
  | { readonly _tag: "Run"; readonly autoFinalize: boolean; readonly onReady: "complete" | "return" }

/** A fresh job id: `job-` and six base-36 characters (QEMU wants an id that starts with a letter). */
export const makeId: Effect.Effect<string> = Effect.map(
  Random.nextIntBetween(0, 36 ** 6),
  (n) => `job-${n.toString(36).padStart(6, "0")}`
)

/** The job `id` as `query-jobs` lists it, if it does. */
export const findJob = (qmp: QmpClient.Service, id: string): Effect.Effect<JobInfo | undefined, ExecuteError> =>
  Effect.map(qmp.execute("query-jobs"), (jobs) => jobs.find((job) => job.id === id))

/** The listener's next event. Its filter cannot throw: a closed listener is a defect here. */
const next = (listener: EventListener.EventListener<JobEvent>): Effect.Effect<JobEvent, ExecuteError> =>
  Effect.catchTag(listener.take, "ListenerError", (error) => Effect.die(error))

/** The job ended (`null`, or `concluded` for a watched job that stays): done, or why not. */
export const ended = (tracker: Tracker): Effect.Effect<Concluded, JobFailed> => {
  // A job seen to reach `null` without `concluded` never ran (QEMU refused it after creating it).
  const failed = tracker.cancelled || tracker.error !== undefined || tracker.statuses.includes("aborting") ||
    !tracker.statuses.includes("concluded")
  // Every job's type reaches us (a block job's events carry it, a job that stays is in query-jobs):
  // "unknown" is for a kind of job that a newer QEMU dismisses without a block job's events.
  const type = tracker.type ?? ("unknown" as JobType)
  return failed ?
    Effect.fail(
      new JobFailed({
        id: tracker.id,
        type,
        reason: tracker.cancelled ? "Cancelled" : "Error",
        error: tracker.error
      })
    ) :
    Effect.succeed({ _tag: "Concluded", id: tracker.id, type, statuses: [...tracker.statuses] })
}

/**
 * Follows the job through its events until it ends: gives how it ended, or "ready" when the policy
 * hands a ready job back. The events that came before (a fast job's whole lifecycle) are taken from
 * the listener first.
 */
export const follow = (
  qmp: QmpClient.Service,
  listener: EventListener.EventListener<JobEvent>,
  tracker: Tracker,
  policy: Policy
): Effect.Effect<Concluded | "ready", JobFailed | ExecuteError> =>
  Effect.gen(function*() {
    const id = tracker.id
    while (true) {
      const event = yield* next(listener)
      switch (event.event) {
        case "BLOCK_JOB_COMPLETED":
          tracker.type = event.data.type
          if (event.data.error !== undefined) tracker.error = event.data.error
          break
        case "BLOCK_JOB_CANCELLED":
          tracker.type = event.data.type
          tracker.cancelled = true
          break
        case "BLOCK_JOB_READY":
        case "BLOCK_JOB_PENDING":
          tracker.type = event.data.type
          break
        case "BLOCK_JOB_ERROR":
          // What follows says what the error did: the job goes on (`ignore`), pauses (`stop`: it
          // waits for job-resume or job-cancel), or aborts (`report`).
          break
        case "JOB_STATUS_CHANGE": {
          const status = event.data.status
          tracker.statuses.push(status)
          switch (status) {
            case "null":
              tracker.gone = true
              return yield* ended(tracker)
            case "concluded": {
              const info = yield* findJob(qmp, id)
              // Not listed: dismissed at once, its `null` on the way. Listed: it stays, and its
              // error, if any, is only here.
              if (info !== undefined) {
                tracker.type = info.type
                if (info.error !== undefined) tracker.error = info.error
                if (policy._tag === "Watch") return yield* ended(tracker)
                yield* qmp.execute("job-dismiss", { id })
              }
              break
            }
            case "ready":
              if (policy._tag === "Run" && !tracker.completing) {
                if (policy.onReady === "return") {
                  // BLOCK_JOB_READY, which carries the type, comes after this status.
                  tracker.type = (yield* findJob(qmp, id))?.type ?? tracker.type
                  return "ready" as const
                }
                tracker.completing = true
                yield* qmp.execute("job-complete", { id })
              }
              break
            case "pending":
              if (policy._tag === "Run" && !policy.autoFinalize) yield* qmp.execute("job-finalize", { id })
              break
          }
        }
      }
    }
  })

/** Takes events until the job's status is `concluded` or `null`, and gives that status. */
const untilEnd = (listener: EventListener.EventListener<JobEvent>): Effect.Effect<"concluded" | "null", ExecuteError> =>
  Effect.gen(function*() {
    while (true) {
      const event = yield* next(listener)
      if (event.event === "JOB_STATUS_CHANGE" && (event.data.status === "concluded" || event.data.status === "null")) {
        return event.data.status
      }
    }
  })

/**
 * Ends a job that was left running (its follower was interrupted, or its scope closed): cancels it
 * and waits, up to `timeout` in all, until QEMU reports it ended, then dismisses it if it stays. A
 * job QEMU does not know (never created, or gone already) needs nothing; one already concluded is
 * dismissed. Never fails: what goes wrong is logged.
 *
 * It runs whole in a fiber of its own: run from the finalizer of an interrupted fiber, any
 * interruptible region (the timeout) would end at once.
 */
export const cancel = (
  qmp: QmpClient.Service,
  listener: EventListener.EventListener<JobEvent>,
  tracker: Tracker,
  timeout: Duration.Duration
): Effect.Effect<void> => {
  const id = tracker.id
  return Effect.gen(function*() {
    if (tracker.gone) return
    const info = yield* findJob(qmp, id)
    if (info === undefined || info.status === "null") return
    if (info.status !== "concluded") {
      // It may end between query-jobs and job-cancel: QEMU then refuses the verb, and the end
      // comes as events all the same.
      if (info.status !== "aborting") yield* Effect.ignore(qmp.execute("job-cancel", { id }))
      if ((yield* untilEnd(listener)) === "null") return
      if ((yield* findJob(qmp, id)) === undefined) return
    }
    yield* qmp.execute("job-dismiss", { id })
    yield* Effect.logDebug(`Cancelled job '${id}' and dismissed it`)
  }).pipe(
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () => `it did not end within ${Duration.format(timeout)} of job-cancel: it may still run in QEMU`
    }),
    Effect.catchAll((error) =>
      typeof error !== "string" && error._tag === "QmpDisconnected" ?
        Effect.logDebug(`Job '${id}' was left running when the connection ended`) :
        Effect.logWarning(
          `Job '${id}' was left running, and ending it failed: ${typeof error === "string" ? error : error.message}`
        )
    ),
    Effect.annotateLogs({ module: "Jobs", job: id }),
    // A fiber forked from a finalizer inherits its uninterruptibility: the timeout needs it back.
    Effect.interruptible,
    Effect.forkDaemon,
    Effect.flatMap(Fiber.await),
    Effect.asVoid
  )
}
