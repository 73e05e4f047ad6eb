/**
 * The operations of a key-value history, as `lease-core/testing` takes them (index.ts re-exports
 * both types): one file of its own so that the checker (index.ts) and its search (search.ts)
 * both depend on it without importing each other.
 * @module
 */

/** What an operation did: see {@link KvOp}. */
export type KvOpKind = "read" | "write" | "cas" | "append";

/**
 * One client operation on one key, as the client saw it.
 *
 * - `read`: `value` is what it saw, `null` when the key was absent.
 * - `write`: sets the key to `value` (a string).
 * - `cas`: compare-and-set: sets the key to `value` iff its current value equals `expected`
 *   (`null`: iff absent); `ok` says whether it applied, `undefined` when the client does not
 *   know (the operation still happened, with the outcome the state dictates).
 * - `append`: concatenates `value` onto the current value; onto an absent key it makes it `value`.
 *
 * `returnAt: Infinity` means the outcome is unknown (a timeout, a dropped connection): the
 * operation may take effect at any point after `callAt`, or not at all. A read or a failed
 * compare-and-set changes nothing, so one with an unknown outcome constrains nothing.
 *
 * Times are in any unit shared by the whole history (one monotonic clock); equal times count as
 * concurrent, so a shared clock tick never makes a false violation. Extra properties are kept:
 * the minimal failing history hands back the very objects you passed.
 */
export interface KvOp {
  /** Who made it (not used by the check; shown in failures). */
  client: number | string;
  /** The key it touched. */
  key: string;
  /** When the client invoked it: a finite number. */
  callAt: number;
  /** When the client saw the answer (>= `callAt`); `Infinity` when the outcome is unknown. */
  returnAt: number;
  /** What it did. */
  kind: KvOpKind;
  /** read: the value seen (`null` = absent); write, cas, append: the value written or appended. */
  value: string | null;
  /** cas only: the value the key must have for the swap to apply (`null` = absent). Required on a cas. */
  expected?: string | null;
  /** cas only: whether the swap applied; `undefined` when unknown. Must be left out when `returnAt` is `Infinity`. */
  ok?: boolean;
}
