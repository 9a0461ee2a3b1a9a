/**
 * Finds an executable on `PATH`, as a shell would: the first directory that holds `name` with the
 * execute bit.
 *
 * @internal
 */
import * as Fs from "node:fs"
import * as Path from "node:path"

/** @internal */
export const findOnPath = (name: string, path = process.env.PATH ?? ""): string | undefined => {
  for (const dir of path.split(Path.delimiter)) {
    if (dir === "") continue
    const candidate = Path.join(dir, name)
    try {
      Fs.accessSync(candidate, Fs.constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}
