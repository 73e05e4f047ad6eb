/**
 * The demo's adapter to the linearizability checker (`checkKvHistory` of `lease-core/testing`,
 * the one checker the simulator, the nemesis and the demo share): one window's history in, one
 * verdict out, plus the search's own statistics for the dashboard.
 * @module
 */
import { checkKvHistory, type KvCheckStats } from "../host/testing/index.js"; // → lease-core/testing when bundled
import type { RecordedOp } from "./harness.js";

/** A window's verdict: linearizable, not (the key and a minimal failing sub-history), or unknown
 *  (the search gave up at its state budget, or the history was malformed). */
export type WindowCheck = ({ ok: true } | { ok: false; key: string; minimal: RecordedOp[] } | { ok: "unknown"; reason: string }) & { stats?: KvCheckStats };

/** The per-key search budget: a 10 s window of the demo's load needs far fewer states; more
 *  means the history is pathological, and the verdict says unknown, never ok. */
export const MAX_STATES_PER_KEY = 2_000_000;

export function checkWindow(ops: readonly RecordedOp[]): WindowCheck {
  let stats: KvCheckStats | undefined;
  try {
    const r = checkKvHistory(ops, { maxStates: MAX_STATES_PER_KEY, onStats: (s) => (stats = s) });
    return stats === undefined ? r : { ...r, stats };
  } catch (err) {
    // A malformed history (InvalidHistoryError, ERR_LEASE_INVALID_HISTORY) is the recorder's bug:
    // the window is not shown linearizable.
    const e = err as { code?: string; message?: string };
    return { ok: "unknown", reason: `${e.code ?? "error"}: ${e.message}` };
  }
}
