/**
 * The demo's adapter to the linearizability checker: one window's history in, one verdict out.
 * Everything the demo knows about the checker is here, so swapping its implementation (the one
 * checker of `lease-core/testing`) is a one-file change.
 * @module
 */
import { checkKvHistory } from "../host/linearizability.js";
import type { RecordedOp } from "./harness.js";

/** A window's verdict: linearizable, not (the key and a minimal failing sub-history), or unknown
 *  (the search gave up at its state budget). */
export type WindowCheck = { ok: true } | { ok: false; key: string; minimal: RecordedOp[] } | { ok: "unknown"; reason: string };

/** The per-key search budget: a 10 s window of the demo's load needs a few thousand states per
 *  key; far more means the history is pathological, and the verdict says unknown, not ok. */
export const MAX_STATES_PER_KEY = 2_000_000;

export function checkWindow(ops: readonly RecordedOp[]): WindowCheck {
  const r = checkKvHistory(ops, { maxStates: MAX_STATES_PER_KEY });
  if (r.ok === false) return { ok: false, key: r.key, minimal: r.minimal as RecordedOp[] };
  return r;
}
