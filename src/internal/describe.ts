/**
 * How untrusted input and thrown values are put into error messages and logs: shortened, never
 * thrown again.
 *
 * @internal
 */

/** The message of a thrown value or an error's cause (an object's `message`, or its JSON); `""` for none. */
export const causeMessage = (cause: unknown): string => {
  if (cause instanceof Error) return cause.message
  if (cause === undefined) return ""
  if (typeof cause === "object" && cause !== null) {
    const message = (cause as { readonly message?: unknown }).message
    return typeof message === "string" ? message : render(cause)
  }
  return String(cause)
}

/** A text cut to `max` characters, saying how long it was. */
export const preview = (text: string, max = 200): string =>
  text.length <= max ? text : `${text.slice(0, max)}... (${text.length} characters)`

/** A short JSON rendering of a value read from the wire. */
export const render = (message: unknown): string => {
  try {
    return preview(JSON.stringify(message))
  } catch {
    return String(message)
  }
}
