/**
 * `qmp job run COMMAND [key=value ...]` and `qmp job watch ID`: a job followed to its end with a
 * progress bar (`Jobs.startUnknown`, `Jobs.watch`, `Jobs.progress`). Exit 0 when the job concluded;
 * 1 with QEMU's error when it failed. Ctrl-C during `run` cancels the job; during `watch`, it only
 * stops watching.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import * as Jobs from "../Jobs.js"
import type { JobInfo } from "../qemu/v7_2/types.js"
import * as QmpClient from "../QmpClient.js"
import type { ExecuteError, JobFailed, JobNotFound } from "../QmpError.js"
import * as QmpEvents from "../QmpEvents.js"
import * as Arguments from "./arguments.js"
import type { ConnectionOptions } from "./connection.js"
import { withConnection } from "./connection.js"
import * as Progress from "./progress.js"

/**
 * The command line of `qmp job run`, parsed.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunConfig extends ConnectionOptions {
  readonly args: Option.Option<string>
  readonly command: string
  readonly params: ReadonlyArray<string>
}

/**
 * The command line of `qmp job watch`, parsed.
 *
 * @since 0.1.0
 * @category models
 */
export interface WatchConfig extends ConnectionOptions {
  readonly id: string
}

/** Block jobs count their progress in bytes: shown in MiB. Other jobs' units mean nothing alone. */
const inBytes = new Set(["backup", "mirror", "stream", "commit"])

/** The bar's label: `job1  backup  4.0/16.0 MiB  running`. */
const label = (id: string, type: string, status: string, info: JobInfo | undefined): string => {
  const progress = info !== undefined && inBytes.has(type) ?
    `  ${Progress.mib(info["current-progress"])}/${Progress.mib(info["total-progress"])} MiB` :
    ""
  return `${id}  ${type}${progress}  ${status}`
}

/**
 * Draws the job's progress until `result` (the job's end) gives how it ended, and the last bar:
 * full when it concluded.
 */
const follow = <R>(
  id: string,
  result: Effect.Effect<Jobs.Concluded, JobFailed | JobNotFound | ExecuteError, R>
): Effect.Effect<void, JobFailed | JobNotFound | ExecuteError, R | QmpClient.QmpClient> =>
  Effect.gen(function*() {
    const screen = yield* Progress.makeScreen()
    const last = yield* Ref.make<JobInfo | undefined>(undefined)
    // The bar of a concluded job is drawn below, full, once the job is known to have done its work.
    const draw = Jobs.progress(id).pipe(
      Stream.filter((info) => info.status !== "concluded"),
      Stream.runForEach((info) =>
        Effect.zipRight(
          Ref.set(last, info),
          screen.progress(
            Progress.ratio(info["current-progress"], info["total-progress"]),
            Progress.bar(
              Progress.ratio(info["current-progress"], info["total-progress"]),
              label(id, info.type, info.status, info)
            )
          )
        )
      )
    )
    const [done] = yield* Effect.all([result, draw], { concurrency: "unbounded" }).pipe(
      Effect.ensuring(screen.finish)
    )
    const info = yield* Ref.get(last)
    const total = info === undefined ? undefined : { ...info, "current-progress": info["total-progress"] }
    yield* screen.progress(1, Progress.bar(1, label(id, done.type, "concluded", total)))
    yield* screen.finish
  })

/** Connects, and runs `body` with the client and its registry as services. */
const connected = <A, E>(
  config: ConnectionOptions,
  body: Effect.Effect<A, E, QmpClient.QmpClient | QmpEvents.QmpEvents>
) =>
  withConnection(config, {}, (events) => Effect.succeed(events), (qmp, events) =>
    body.pipe(
      Effect.provideService(QmpClient.QmpClient, qmp),
      Effect.provideService(QmpEvents.QmpEvents, events)
    ))

/**
 * Runs `qmp job run`: starts the job (filling in a `job-id` if none was given) and follows it.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (config: RunConfig) =>
  Effect.gen(function*() {
    const name = yield* Arguments.commandName(config.command)
    const args = yield* Arguments.commandArguments(config.params, config.args)
    yield* connected(
      config,
      Effect.scoped(Effect.gen(function*() {
        const job = yield* Jobs.startUnknown(name, args ?? {})
        yield* follow(job.id, job.result)
      }))
    )
  })

/**
 * Runs `qmp job watch`: follows a job started elsewhere, without touching it.
 *
 * @since 0.1.0
 * @category running
 */
export const watch = (config: WatchConfig) =>
  Effect.flatMap(
    // An id that starts with "-" is an option that `@effect/cli` did not know (no QEMU id does).
    Arguments.commandName(config.id),
    (id) => connected(config, follow(id, Jobs.watch(id)))
  )
