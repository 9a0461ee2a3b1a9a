/**
 * The default commands of `QmpTestServer`: a small stand-in for a `-machine none` QEMU 7.2, with
 * its run state, `null-co` block nodes and `blockdev-backup` jobs (`blockJobs.ts`), and a few HMP
 * commands (`hmp.ts`), answering as QEMU does (the events, their order relative to the reply, the
 * error classes and descriptions were taken from a real QEMU 7.2 over a raw socket, and the
 * conformance suite holds them to it).
 *
 * The state lives in a `SynchronizedRef`: every command that reads or changes it, and every tick of
 * a throttled job, runs under its lock, events included, so that a job's events never interleave
 * with another command's. A command changes a draft of the state, which is kept only if the command
 * succeeds (its events are sent either way, as QEMU sends them).
 *
 * Replies are built with their members in QAPI's order: the server writes them in QEMU's.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as SynchronizedRef from "effect/SynchronizedRef"
import type { CommandError, Handler, RunState } from "../../testing/QmpTestServer.js"
import type { Draft, Job, Node } from "./blockJobs.js"
import * as BlockJobs from "./blockJobs.js"
import type { Registration } from "./dispatch.js"
import * as Hmp from "./hmp.js"
import { params } from "./params.js"

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

interface State {
  readonly status: RunState
  readonly nodes: ReadonlyMap<string, Node>
  readonly jobs: ReadonlyArray<Job>
}

/** How often a throttled job makes progress (QEMU's rate limit works in 100 ms slices). */
const tickMillis = 100

const draftOf = (state: State): Draft => ({
  status: state.status,
  nodes: new Map(state.nodes),
  jobs: state.jobs.map((job) => ({ ...job }))
})

const stateOf = (draft: Draft): State => ({ status: draft.status, nodes: draft.nodes, jobs: draft.jobs })

/** @internal */
export const make = (options: Options): Effect.Effect<Vm, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { emit } = options
    const state = yield* SynchronizedRef.make<State>({ status: options.status, nodes: new Map(), jobs: [] })
    const jobs = BlockJobs.make({ emit })

    /** Runs `f` on a draft under the lock; the draft becomes the state only if `f` succeeds. */
    const transact = <A>(f: (draft: Draft) => Effect.Effect<A, CommandError>): Effect.Effect<A, CommandError> =>
      SynchronizedRef.modifyEffect(state, (current) => {
        const draft = draftOf(current)
        return Effect.map(f(draft), (a) => [a, stateOf(draft)] as const)
      })

    const read = Effect.map(SynchronizedRef.get(state), draftOf)

    // A throttled job makes progress on its own, tick after tick, until it is done.
    yield* Effect.gen(function*() {
      yield* Effect.sleep(tickMillis)
      const now = yield* Clock.currentTimeMillis
      yield* transact((draft) => jobs.tick(draft, now))
    }).pipe(Effect.ignore, Effect.forever, Effect.interruptible, Effect.forkScoped)

    const stop = transact((draft) =>
      Effect.gen(function*() {
        if (draft.status === "running") {
          yield* emit("STOP")
          draft.status = "paused"
        }
        // QEMU drains the block layer on every stop, whether the VM was running or not.
        yield* jobs.drainAll(draft)
      })
    )

    const cont = transact((draft) =>
      Effect.gen(function*() {
        if (draft.status === "running") return
        yield* emit("RESUME")
        draft.status = "running"
      })
    )

    const reset = emit("RESET", { guest: false, reason: "host-qmp-system-reset" })
    const powerdown = emit("POWERDOWN")

    /** SHUTDOWN, the jobs left cancelled, the return (`reply`), then QEMU exits. */
    const quit = (reply: Effect.Effect<void>) =>
      Effect.orDie(transact((draft) =>
        Effect.gen(function*() {
          yield* emit("SHUTDOWN", { guest: false, reason: "host-qmp-quit" })
          yield* jobs.quit(draft)
          yield* reply
          yield* options.exit
        })
      ))

    const status = Effect.map(SynchronizedRef.get(state), (s) => s.status)
    const { major, micro, minor } = options.version

    const machine: ReadonlyArray<readonly [string, Handler]> = [
      ["query-status", (args) =>
        Effect.zipRight(
          params(args, {}),
          Effect.map(status, (s) => ({ running: s === "running", singlestep: false, status: s }))
        )],
      ["stop", (args) => Effect.zipRight(params(args, {}), Effect.orDie(stop))],
      ["cont", (args) => Effect.zipRight(params(args, {}), Effect.orDie(cont))],
      ["system_reset", (args) => Effect.zipRight(params(args, {}), reset)],
      ["system_powerdown", (args) => Effect.zipRight(params(args, {}), powerdown)],
      ["quit", (args, ctx) => Effect.zipRight(params(args, {}), quit(ctx.reply({})))],
      ["query-version", (args) =>
        Effect.as(params(args, {}), { qemu: { major, minor, micro }, package: options.package })],
      ["query-commands", (args) =>
        Effect.zipRight(
          params(args, {}),
          Effect.map(options.commandNames, (names) =>
            names.map((name) => ({ name })))
        )],
      ["human-monitor-command", (args, ctx) =>
        Effect.flatMap(Hmp.check(args), (line) =>
          Hmp.run(
            {
              status,
              version: `${major}.${minor}.${micro}${options.package}`,
              stop: Effect.orDie(stop),
              cont: Effect.orDie(cont),
              reset,
              powerdown,
              quit
            },
            line,
            (text) => ctx.reply(text)
          ))]
    ]

    const handlers: Array<Registration> = [
      ...[...machine, ...jobs.handlers(transact, read)].map(([name, handler]) => ({ name, handler, oob: false })),
      {
        name: "query-yank",
        handler: (args) => Effect.as(params(args, {}), [{ type: "chardev", id: "compat_monitor0" }]),
        oob: true
      }
    ]

    return { status, handlers }
  })
