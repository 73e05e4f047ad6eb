/**
 * The check every options object gets: a name it does not know is refused (a misspelt
 * `clockpolicy` or `maxLease` would otherwise be ignored without a word).
 * @module
 */
import { InvalidOptionError } from "../core/errors.js";

/** @internal Throws InvalidOptionError for the first key of `options` not in `known`. */
export function refuseUnknownOptions(options: object, known: readonly string[], what: string): void {
  for (const name of Object.keys(options)) {
    if (!known.includes(name)) throw new InvalidOptionError(name, `one of the options of ${what} (${known.join(", ")})`, (options as Record<string, unknown>)[name]);
  }
}
