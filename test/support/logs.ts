/**
 * Log capture: what the code under test logs, kept for the test to look at, or to wait for.
 *
 * Provide `layer` where the logging fiber is made: a fiber forked by a layer (the registry's dispatch,
 * the client's reader) logs with the logger that was in place when that layer was built.
 */
import { Effect, Layer, Logger } from "effect"
import type { LogLevel } from "effect"

export interface LogEntry {
  /** `DEBUG`, `INFO`, `WARN`, `ERROR`, ... */
  readonly level: string
  /** The message; the parts of a message of several parts joined with spaces. */
  readonly message: string
  readonly annotations: Readonly<Record<string, unknown>>
}

export interface LogCapture {
  /** Every entry logged so far, oldest first. */
  readonly entries: ReadonlyArray<LogEntry>
  /** The messages logged so far at `level`, oldest first. */
  readonly messages: (level?: string) => ReadonlyArray<string>
  /** Replaces the default logger with this capture, and sets the minimum level if one was given. */
  readonly layer: Layer.Layer<never>
  /** Waits until an entry with this message (or one that `match` accepts) has been logged, and gives it. */
  readonly logged: (match: string | ((entry: LogEntry) => boolean)) => Effect.Effect<LogEntry>
}

/** A fresh capture. Without `minimumLevel`, the level in force applies (INFO by default). */
export const captureLogs = (options: { readonly minimumLevel?: LogLevel.LogLevel | undefined } = {}): LogCapture => {
  const entries: Array<LogEntry> = []
  const waiters = new Set<{ readonly accepts: (entry: LogEntry) => boolean; readonly resume: (e: LogEntry) => void }>()
  const logger = Logger.make(({ annotations, logLevel, message }) => {
    const entry: LogEntry = {
      level: logLevel.label,
      message: (Array.isArray(message) ? message : [message]).map(String).join(" "),
      annotations: Object.fromEntries(annotations)
    }
    entries.push(entry)
    for (const waiter of waiters) {
      if (waiter.accepts(entry)) {
        waiters.delete(waiter)
        waiter.resume(entry)
      }
    }
  })
  const replace = Logger.replace(Logger.defaultLogger, logger)
  return {
    entries,
    messages: (level) => entries.filter((entry) => level === undefined || entry.level === level).map((e) => e.message),
    layer: options.minimumLevel === undefined
      ? replace
      : Layer.merge(replace, Logger.minimumLogLevel(options.minimumLevel)),
    logged: (match) =>
      Effect.async<LogEntry>((resume) => {
        const accepts = typeof match === "string" ? (entry: LogEntry) => entry.message === match : match
        const found = entries.find(accepts)
        if (found !== undefined) return resume(Effect.succeed(found))
        const waiter = { accepts, resume: (entry: LogEntry) => resume(Effect.succeed(entry)) }
        waiters.add(waiter)
        return Effect.sync(() => waiters.delete(waiter))
      })
  }
}
