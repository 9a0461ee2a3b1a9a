/**
 * A progress bar with lines above it, as the demo and `qmp job` draw them: on a terminal the bar is
 * redrawn in place, below the lines; piped, it is printed as a line of its own at each quarter.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as SynchronizedRef from "effect/SynchronizedRef"
import * as Output from "./output.js"

/**
 * The bar: `[#######-----------------------]  25%  label`, 30 columns of bar.
 *
 * @since 0.1.0
 * @category formatting
 */
export const bar = (ratio: number, label: string): string => {
  const width = 30
  const clamped = Number.isFinite(ratio) ? Math.min(1, Math.max(0, ratio)) : 0
  const filled = Math.round(clamped * width)
  const percent = `${Math.floor(clamped * 100)}%`.padStart(4)
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${percent}  ${label}`
}

/**
 * The ratio of `done` to `total`; 0 when the total is not known yet.
 *
 * @since 0.1.0
 * @category formatting
 */
export const ratio = (done: number, total: number): number => total <= 0 ? 0 : done / total

/**
 * Bytes as MiB with one decimal: `16.0`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const mib = (bytes: number): string => (bytes / (1024 * 1024)).toFixed(1)

/**
 * Lines, and a bar below them.
 *
 * @since 0.1.0
 * @category models
 */
export interface Screen {
  /** Writes a line above the bar. */
  readonly line: (text: string) => Effect.Effect<void>
  /** Draws the bar `text` at `ratio` (0 to 1): in place on a terminal, at each new quarter when piped. */
  readonly progress: (ratio: number, text: string) => Effect.Effect<void>
  /** Leaves the last bar where it is (a terminal), and the cursor below it. */
  readonly finish: Effect.Effect<void>
}

/**
 * A screen on stdout: drawn in place when `terminal`, else line by line.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeScreen = (terminal: boolean = Output.stdoutIsTerminal): Effect.Effect<Screen> =>
  Effect.gen(function*() {
    // The bar on screen (terminal), or the last quarter printed (pipe).
    const state = yield* SynchronizedRef.make({ bar: "", quarter: -1 })
    const write = (text: string) => Effect.sync(() => process.stdout.write(text))
    const clear = "\r\u001b[K"
    return {
      line: (text) =>
        SynchronizedRef.updateEffect(
          state,
          (s) => terminal ? Effect.as(write(`${clear}${text}\n${s.bar}`), s) : Effect.as(Output.line(text), s)
        ),
      progress: (ratio, text) =>
        SynchronizedRef.updateEffect(state, (s) => {
          if (terminal) return Effect.as(write(`${clear}${text}`), { ...s, bar: text })
          const quarter = Math.floor(4 * Math.min(1, Math.max(0, ratio)))
          return quarter > s.quarter ? Effect.as(Output.line(text), { ...s, quarter }) : Effect.succeed(s)
        }),
      finish: SynchronizedRef.updateEffect(
        state,
        (s) => terminal && s.bar !== "" ? Effect.as(write("\n"), { ...s, bar: "" }) : Effect.succeed(s)
      )
    }
  })
