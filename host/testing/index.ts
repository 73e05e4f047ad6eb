/**
 * `lease-core/testing`: a linearizability checker for key-value histories, so you can check
 * your own service's histories the way lease-core's simulator, nemesis and demo check theirs.
 *
 * Record every operation your clients make (`callAt` before sending, `returnAt` when the answer
 * arrives, `Infinity` when it never did), then `checkKvHistory(history)`: `{ ok: true }` when
 * some order of the operations consistent with real time (an operation that returned before
 * another was called comes first) explains every answer, one key at a time (a KV history is
 * linearizable iff each key's is: Herlihy & Wing's locality). See docs/safety.md.
 *
 * The search is Wing & Gong's (1993) with Lowe's memoisation (2017), as Porcupine does it, on
 * a state that does not grow with the history: ops every remaining op follows are settled and
 * leave it (a moving frontier), and an unknown-outcome op leaves it once nothing left could
 * observe it (see `KvCheckStats.largestState`).
 * @module
 */
import { InvalidHistoryError, InvalidOptionError } from "../core/errors.js";
import type { KvOp } from "./history.js";
import { searchKey, minimiseKey, prepareKey, type KeyOp } from "./search.js";

export { InvalidHistoryError } from "../core/errors.js";
export type { KvOp, KvOpKind } from "./history.js";

/**
 * The verdict: linearizable; not (the first failing key in sorted order, and a minimal failing
 * history of that key: a subset of its operations that still fails, each of whose reads still
 * sees a value some operation of the subset wrote); or unknown, when a key's search ran out of
 * its state budget before reaching a verdict (never a guess).
 */
export type KvCheckResult<T extends KvOp = KvOp> =
  | {
      /** Linearizable: every key's operations have an order that explains every answer. */
      ok: true;
    }
  | {
      /** Not linearizable. */
      ok: false;
      /** The first key (in sorted order) whose operations no order explains. */
      key: string;
      /** A minimal failing history of that key: your operation objects, sorted by `callAt`. */
      minimal: T[];
    }
  | {
      /** No verdict: a key's search ran out of `maxStates`. */
      ok: "unknown";
      /** Which key, and why. */
      reason: string;
    };

/** The work a check did, for tests and benchmarks (`options.onStats`). */
export interface KvCheckStats {
  /** Keys checked. */
  keys: number;
  /** Operations checked (after dropping those that constrain nothing: reads with an unknown outcome). */
  operations: number;
  /** Search states explored (memoised), summed over keys, minimisation excluded. */
  states: number;
  /** The most states any one key explored. */
  maxStatesPerKey: number;
  /**
   * The most operations any one memoised state named: the ones linearized ahead of the
   * frontier, and the unknown-outcome ones still pending behind it. Bounded by the history's
   * concurrency, not its length.
   */
  largestState: number;
  /** Search states explored while minimising a failing key's history. */
  minimiseStates: number;
}

/** Options of {@link checkKvHistory}. */
export interface KvCheckOptions {
  /** The most search states one key may explore before its verdict is `unknown` (default 1,000,000). */
  maxStates?: number;
  /** Called once, after the check, with the work it did. */
  onStats?: (stats: KvCheckStats) => void;
}

const DEFAULT_MAX_STATES = 1_000_000;
const KINDS = new Set<unknown>(["read", "write", "cas", "append"]);

function validate(op: unknown, i: number): asserts op is KvOp {
  const bad = (why: string) => new InvalidHistoryError(why, i);
  if (typeof op !== "object" || op === null) throw bad("not an operation object");
  const o = op as Record<string, unknown>;
  if (!KINDS.has(o.kind)) throw bad(`kind must be "read", "write", "cas" or "append", got ${JSON.stringify(o.kind) ?? String(o.kind)}`);
  if (typeof o.key !== "string") throw bad("key must be a string");
  if (typeof o.client !== "number" && typeof o.client !== "string") throw bad("client must be a number or a string");
  if (typeof o.callAt !== "number" || !Number.isFinite(o.callAt)) throw bad(`callAt must be a finite number, got ${String(o.callAt)}`);
  if (typeof o.returnAt !== "number" || Number.isNaN(o.returnAt) || o.returnAt === -Infinity) throw bad(`returnAt must be a number (Infinity: unknown outcome), got ${String(o.returnAt)}`);
  if (o.returnAt < o.callAt) throw bad(`returnAt (${o.returnAt}) is before callAt (${o.callAt})`);
  if (o.kind === "read") {
    if (o.value !== null && typeof o.value !== "string") throw bad("a read's value must be a string or null (absent)");
  } else if (typeof o.value !== "string") throw bad(`a ${String(o.kind)}'s value must be a string`);
  if (o.kind === "cas") {
    if (!("expected" in o) || (o.expected !== null && typeof o.expected !== "string")) throw bad("a cas needs expected: a string, or null for absent");
    if (o.ok !== undefined && typeof o.ok !== "boolean") throw bad("a cas's ok must be true, false or undefined (unknown)");
    if (o.returnAt === Infinity && o.ok !== undefined) throw bad("a cas with an unknown outcome (returnAt Infinity) must leave ok undefined");
  } else {
    if (o.expected !== undefined) throw bad(`expected is for a cas, not a ${String(o.kind)}`);
    if (o.ok !== undefined) throw bad(`ok is for a cas, not a ${String(o.kind)}: leave out an operation that failed; give one whose outcome is unknown returnAt Infinity`);
  }
}

/**
 * Checks a key-value history for linearizability, key by key. See {@link KvOp} for what each
 * operation means and {@link KvCheckResult} for the verdict.
 * @example
 * import { checkKvHistory } from "lease-core/testing";
 * const verdict = checkKvHistory([
 *   { client: 1, key: "x", kind: "write", value: "a", callAt: 0, returnAt: 2 },
 *   { client: 2, key: "x", kind: "read", value: null, callAt: 3, returnAt: 4 }, // stale
 * ]);
 * // verdict: { ok: false, key: "x", minimal: [the write, the read] }
 * @throws InvalidHistoryError on a malformed operation (nothing is checked then);
 *   InvalidOptionError on a bad option.
 */
export function checkKvHistory<T extends KvOp>(history: readonly T[], options: KvCheckOptions = {}): KvCheckResult<T> {
  if (!Array.isArray(history)) throw new InvalidHistoryError("the history must be an array of operations");
  const max = options.maxStates ?? DEFAULT_MAX_STATES;
  if (typeof max !== "number" || !Number.isSafeInteger(max) || max < 1) throw new InvalidOptionError("maxStates", "a positive integer", max);
  if (options.onStats !== undefined && typeof options.onStats !== "function") throw new InvalidOptionError("onStats", "a function", options.onStats);
  const byKey = new Map<string, KeyOp<T>[]>();
  history.forEach((op: unknown, i) => {
    validate(op, i);
    // A read whose answer never came saw nothing: it constrains nothing.
    if (op.kind === "read" && op.returnAt === Infinity) return;
    let ops = byKey.get(op.key);
    if (ops === undefined) byKey.set(op.key, (ops = []));
    ops.push({ op: op as T, index: i });
  });
  const stats: KvCheckStats = { keys: byKey.size, operations: 0, states: 0, maxStatesPerKey: 0, largestState: 0, minimiseStates: 0 };
  let result: KvCheckResult<T> | undefined;
  let unknown: string | undefined;
  for (const key of [...byKey.keys()].sort()) {
    const ops = byKey.get(key)!;
    stats.operations += ops.length;
    const outcome = searchKey(prepareKey(ops), max);
    stats.states += outcome.states;
    stats.maxStatesPerKey = Math.max(stats.maxStatesPerKey, outcome.states);
    stats.largestState = Math.max(stats.largestState, outcome.largestState);
    if (outcome.verdict === "fail") {
      const minimal = minimiseKey(ops, max);
      stats.minimiseStates += minimal.states;
      result = { ok: false, key, minimal: minimal.ops.map((o) => o.op) };
      break;
    }
    if (outcome.verdict === "unknown") unknown ??= `key ${JSON.stringify(key)}: more than ${max} states explored without a verdict`;
  }
  options.onStats?.(stats);
  return result ?? (unknown === undefined ? { ok: true } : { ok: "unknown", reason: unknown });
}
