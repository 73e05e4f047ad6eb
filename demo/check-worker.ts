/**
 * The demo's checker, off the main thread: a worker_thread (node:worker_threads) that receives
 * each sealed window (demo/windows.ts), checks it once (demo/check.ts) and posts back its verdict.
 * The main thread keeps the verdicts' tally and, of failing windows, the first one whole; a
 * window that passed is dropped by both sides as soon as its verdict is in, so memory holds only
 * windows not yet checked (the `pending` count on the dashboard shows whether it keeps up).
 *
 * The worker runs its own bundle, build/demo/check-worker.js (demo/check-worker-entry.ts).
 * @module
 */
import { Worker, parentPort } from "node:worker_threads";
import { checkWindow, type WindowCheck } from "./check.js";
import type { RecordedOp } from "./harness.js";
import type { SealedWindow } from "./windows.js";

/** What the worker answers per window. */
export type WindowVerdict = WindowCheck & {
  index: number;
  ops: number;
  keys: number;
  openedAtWallMs: number;
  closedAtWallMs: number;
  /** When the verdict was computed (wall clock), and how long the check took. */
  checkedAtWallMs: number;
  checkMs: number;
};

/** Worker side: answer each window with its verdict, forever. */
export function runCheckWorker(): void {
  if (parentPort === null) throw new Error("runCheckWorker: not in a worker thread");
  const port = parentPort;
  port.on("message", (w: SealedWindow) => {
    const t0 = performance.now();
    // Structured clone carries Infinity (unknown outcomes) as is.
    const r = checkWindow(w.ops);
    const verdict: WindowVerdict = {
      ...r,
      index: w.index,
      ops: w.ops.length,
      keys: new Set(w.ops.map((o) => o.key)).size,
      openedAtWallMs: w.openedAtWallMs,
      closedAtWallMs: w.closedAtWallMs,
      checkedAtWallMs: Date.now(),
      checkMs: performance.now() - t0,
    };
    port.postMessage(verdict);
  });
}

/** The run's verdict so far, from every window checked. */
export interface VerdictTally {
  /** true: every window checked is linearizable; false: at least one is not; "unknown": none
   *  failed but at least one check gave up. */
  ok: boolean | "unknown";
  windowsChecked: number;
  opsChecked: number;
  windowsFailed: number;
  windowsUnknown: number;
  /** Windows sent to the worker and not answered yet. */
  pending: number;
  /** The first failing window's verdict (key, minimal history) and its whole history. */
  firstFailure: { verdict: WindowVerdict; history: RecordedOp[] } | undefined;
  firstUnknown: WindowVerdict | undefined;
  /** The last verdicts (newest last), for the dashboard. */
  recent: WindowVerdict[];
}

const RECENT = 60;

/** Main-thread side: the worker, the windows in flight to it, and the tally. */
export class CheckWorker {
  readonly tally: VerdictTally = { ok: true, windowsChecked: 0, opsChecked: 0, windowsFailed: 0, windowsUnknown: 0, pending: 0, firstFailure: undefined, firstUnknown: undefined, recent: [] };
  readonly #worker: Worker;
  readonly #inFlight = new Map<number, SealedWindow>();
  readonly #listeners = new Set<(v: WindowVerdict) => void>();
  #idle: (() => void)[] = [];
  #error: Error | undefined;

  /** @param entry the module to run in the worker: one that calls runCheckWorker()
   *  (build/demo/check-worker.js). */
  constructor(entry: URL) {
    this.#worker = new Worker(entry);
    this.#worker.on("message", (v: WindowVerdict) => this.#answer(v));
    this.#worker.on("error", (err: Error) => {
      this.#error = err;
      if (this.tally.ok === true) this.tally.ok = "unknown";
      this.#inFlight.clear();
      this.tally.pending = 0;
      for (const resolve of this.#idle.splice(0)) resolve();
    });
  }

  /** Why the worker died, if it did (the verdict is then unknown, never ok). */
  get error(): Error | undefined {
    return this.#error;
  }

  onVerdict(listener: (v: WindowVerdict) => void): void {
    this.#listeners.add(listener);
  }

  submit(window: SealedWindow): void {
    // A dead worker answers nothing: keep no window for it (the verdict already says unknown).
    if (this.#error !== undefined) return;
    this.#inFlight.set(window.index, window);
    this.tally.pending = this.#inFlight.size;
    this.#worker.postMessage(window);
  }

  /** Resolves when every window submitted so far has its verdict (or the worker died). */
  idle(): Promise<void> {
    if (this.#inFlight.size === 0 || this.#error !== undefined) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  async terminate(): Promise<void> {
    await this.#worker.terminate();
  }

  #answer(v: WindowVerdict): void {
    const window = this.#inFlight.get(v.index);
    this.#inFlight.delete(v.index);
    const t = this.tally;
    t.pending = this.#inFlight.size;
    t.windowsChecked++;
    t.opsChecked += v.ops;
    if (v.ok === false) {
      t.windowsFailed++;
      t.ok = false;
      if (t.firstFailure === undefined) t.firstFailure = { verdict: v, history: window?.ops ?? [] };
    } else if (v.ok === "unknown") {
      t.windowsUnknown++;
      t.firstUnknown ??= v;
      if (t.ok === true) t.ok = "unknown";
    }
    // Recent verdicts carry no histories (a failing window's minimal history stays in firstFailure).
    t.recent.push(v.ok === false ? { ...v, minimal: v.minimal.slice(0, 12) } : v);
    if (t.recent.length > RECENT) t.recent.shift();
    for (const listener of this.#listeners) listener(v);
    if (this.#inFlight.size === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }
}
