/**
 * The benchmarks of effect-qmp: `npm run bench` (2 to 4 minutes here), or `npm run bench -- --quick`
 * (under a minute, smaller and fewer runs); `-- --only NAME` runs one workload (publish, end-to-end,
 * round-trip, startup, fleet). Numbers only: nothing is asserted. `bench/README.md` says
 * what each workload measures and shows a full run.
 *
 * Prints the machine and the exact command, then runs each workload: `publish.ts` (the registry
 * alone), `endToEnd.ts` (a QMP socket into `QmpClient`), `roundTrip.ts` (`execute` on a real QEMU),
 * `startup.ts` (the start-up of `qmp exec` on a real QEMU, beside `node -e 0` and socat) and
 * `fleet.ts` (a `QmpFleet` of 1 000 VMs served from another process). A workload runs each of its configurations
 * in a fresh child process (see `workload.ts`). To add one, write a module like these and list it below.
 */
import * as os from "node:os"
import { parseArgs } from "node:util"
import { workload as endToEnd } from "./endToEnd.js"
import { workload as fleet } from "./fleet.js"
import { workload as publish } from "./publish.js"
import { workload as roundTrip } from "./roundTrip.js"
import { workload as startup } from "./startup.js"
import { formatMiB, formatSeconds } from "./stats.js"
import type { Options, Workload } from "./workload.js"

/** The workloads by name, in the order they run (`--only NAME` runs one). */
const all: Record<string, Workload> = { publish, "end-to-end": endToEnd, "round-trip": roundTrip, startup, fleet }

const args = process.argv.slice(2)
const { values } = parseArgs({
  args,
  strict: true,
  options: { quick: { type: "boolean", default: false }, only: { type: "string" } }
})
const options: Options = { quick: values.quick }
if (values.only !== undefined && !Object.hasOwn(all, values.only)) {
  throw new Error(`--only: no workload ${JSON.stringify(values.only)}; there are ${Object.keys(all).join(", ")}`)
}
const workloads: ReadonlyArray<Workload> = values.only === undefined ? Object.values(all) : [all[values.only]]

const print = (line: string): void => {
  console.log(line)
}

const loadAverage = (): string => os.loadavg().map((load) => load.toFixed(2)).join(" ")

const command = process.env.npm_lifecycle_event === "bench" ?
  `npm run bench${args.length > 0 ? ` -- ${args.join(" ")}` : ""}` :
  `tsx bench/index.ts${args.length > 0 ? ` ${args.join(" ")}` : ""}`

const cpus = os.cpus()
print(`effect-qmp benchmarks${options.quick ? " (quick)" : ""}`)
print(`command: ${command}`)
print(
  `machine: ${cpus[0]?.model.trim() ?? "unknown CPU"}, ${cpus.length} cores, ${formatMiB(os.totalmem())} RAM, ` +
    `${os.type()} ${os.release()} ${os.arch()}, node ${process.version}`
)
print(`load average at start: ${loadAverage()} (other work on the machine makes the figures noisy)`)

const started = performance.now()
for (const workload of workloads) {
  print("")
  print(`== ${workload.title}`)
  await workload.run(options, print)
}
print("")
print(`load average at end: ${loadAverage()}; total ${formatSeconds(performance.now() - started)}`)
