/**
 * Block nodes and jobs for tests, on real QEMU or on `QmpTestServer` alike: `null-co` nodes (they
 * read zeroes and drop writes, so a job over them needs no disk) and a full backup between two.
 */
import { Effect } from "effect"
import type { QmpClient, QmpError } from "../../src/index.js"

/** A pair of nodes of the same size: a backup's source and target. */
export interface NullNodes {
  readonly source: string
  readonly target: string
}

export interface NullNodesOptions {
  /** The nodes are `src-<tag>` and `tgt-<tag>`; without a tag, `src` and `tgt`. */
  readonly tag?: string | undefined
  /** Their size in bytes: 1 MiB by default. */
  readonly size?: number | undefined
}

/** Adds two `null-co` nodes of the same size, for a backup job from one to the other. */
export const nullNodes = (
  qmp: QmpClient.Service,
  options: NullNodesOptions = {}
): Effect.Effect<NullNodes, QmpError.ExecuteError> => {
  const suffix = options.tag === undefined ? "" : `-${options.tag}`
  const nodes = { source: `src${suffix}`, target: `tgt${suffix}` }
  const size = options.size ?? 1024 * 1024
  return Effect.as(
    Effect.zipRight(
      qmp.execute("blockdev-add", { driver: "null-co", "node-name": nodes.source, size }),
      qmp.execute("blockdev-add", { driver: "null-co", "node-name": nodes.target, size })
    ),
    nodes
  )
}

/**
 * Starts a full backup job `jobId` between the nodes. `args` adds arguments or replaces the defaults
 * (`speed`, `auto-finalize`, ...). Without a `speed`, the whole job runs before the command returns.
 */
export const backup = (
  qmp: QmpClient.Service,
  jobId: string,
  nodes: NullNodes,
  args: Readonly<Record<string, unknown>> = {}
): Effect.Effect<unknown, QmpError.ExecuteError> =>
  qmp.execute("blockdev-backup", { "job-id": jobId, device: nodes.source, target: nodes.target, sync: "full", ...args })
