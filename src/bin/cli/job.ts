/**
 * The command line of `qmp job run` and `qmp job watch`.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as CliCommand from "@effect/cli/Command"
import type * as Effect from "effect/Effect"
import type * as Job from "../job.js"
import type { Examples } from "./help.js"
import * as Shared from "./options.js"

/**
 * @since 0.1.0
 * @category examples
 */
export const runExamples: Examples = [
  [
    "qmp job run blockdev-backup device=disk0 target=backup0 sync=full",
    "Copy node disk0 to node backup0, with a progress bar; exit code 1 with QEMU's error if the job fails."
  ],
  [
    "qmp job run blockdev-mirror job-id=m1 device=disk0 target=mirror0 sync=full",
    "Mirror disk0 to mirror0, and complete the mirror once it is ready."
  ],
  [
    "qmp job run blockdev-create --args '{\"options\":{\"driver\":\"qcow2\",\"file\":\"proto\",\"size\":1073741824}}'",
    "Format node proto as a 1 GiB qcow2 image."
  ]
]

/**
 * @since 0.1.0
 * @category examples
 */
export const watchExamples: Examples = [
  ["qmp job watch job0", "Draw job0's progress until it ends; Ctrl-C stops watching and leaves the job alone."],
  ["qmp job watch -s /tmp/qmp2.sock job0 && echo done", "From a second QMP socket, while another client drives QEMU."]
]

/**
 * @since 0.1.0
 * @category descriptions
 */
export const runDescription =
  "Start a job and follow it to its end with a progress bar, finalizing, completing (a mirror at ready) and " +
  "dismissing it as it needs. Exit code 0 when it concluded, 1 with QEMU's error when it failed. Ctrl-C " +
  "cancels the job."

/**
 * `qmp job run`, running `handler`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeRun = (handler: (config: Job.RunConfig) => Effect.Effect<void, unknown>) =>
  CliCommand.make(
    "run",
    {
      ...Shared.connection,
      args: Shared.args,
      command: Args.text({ name: "COMMAND" }).pipe(
        Args.withDescription("The command that starts the job: blockdev-backup, blockdev-mirror, blockdev-create, ...")
      ),
      params: Args.text({ name: "key=value" }).pipe(
        Args.withDescription("Its arguments, as for exec; a missing job-id is filled in (job- and six characters)."),
        Args.repeated
      )
    },
    handler
  ).pipe(CliCommand.withDescription(runDescription))

/**
 * @since 0.1.0
 * @category descriptions
 */
export const watchDescription =
  "Draw a job's progress bar until it ends, without touching the job. Exit code 0 when it concluded, 1 with " +
  "QEMU's error when it failed."

/**
 * `qmp job watch`, running `handler`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeWatch = (handler: (config: Job.WatchConfig) => Effect.Effect<void, unknown>) =>
  CliCommand.make(
    "watch",
    {
      ...Shared.connection,
      id: Args.text({ name: "ID" }).pipe(Args.withDescription("The job's id (query-jobs lists them)."))
    },
    handler
  ).pipe(CliCommand.withDescription(watchDescription))
