/**
 * Statistics and formatting for the benchmarks: median and range of a few runs, numbers grouped by
 * thousands, sizes in MiB, and fixed-width table rows (printed as results come in).
 */

export interface Summary {
  readonly median: number
  readonly min: number
  readonly max: number
  readonly count: number
}

/** Median, min and max of a non-empty list (the median of an even count is the mean of the middle two). */
export const summarize = (values: ReadonlyArray<number>): Summary => {
  if (values.length === 0) throw new Error("summarize: no values")
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  const median = sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
  return { median, min: sorted[0], max: sorted[sorted.length - 1], count: sorted.length }
}

/** `1234567.8` as `"1 234 568"`. */
export const formatCount = (n: number): string => {
  const digits = Math.round(n).toString()
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, " ")
}

/** A summary of rates as `"median (min – max)"`. */
export const formatRange = (summary: Summary): string =>
  `${formatCount(summary.median)} (${formatCount(summary.min)} – ${formatCount(summary.max)})`

/** Bytes as whole MiB. */
export const formatMiB = (bytes: number): string => `${Math.round(bytes / (1024 * 1024))} MiB`

/** Seconds with one decimal. */
export const formatSeconds = (milliseconds: number): string => `${(milliseconds / 1000).toFixed(1)} s`

/** A column of a fixed-width table: its header, its width and which side it is aligned to. */
export interface Column {
  readonly header: string
  readonly width: number
  readonly align?: "left" | "right"
}

const pad = (text: string, column: Column): string =>
  column.align === "right" ? text.padStart(column.width) : text.padEnd(column.width)

/** One row of a fixed-width table (a cell wider than its column pushes the rest to the right). */
export const row = (columns: ReadonlyArray<Column>, cells: ReadonlyArray<string>): string =>
  columns.map((column, i) => pad(cells[i] ?? "", column)).join("  ").trimEnd()

/** The header row and its underline. */
export const header = (columns: ReadonlyArray<Column>): ReadonlyArray<string> => [
  row(columns, columns.map((column) => column.header)),
  row(columns, columns.map((column) => "-".repeat(column.width)))
]
