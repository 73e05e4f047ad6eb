/**
 * The long-running demo's history, in bounded memory: keys rotate per window. Window n's
 * operations use only keys `w<n>-k0..k<K-1>`; when a window's time is up, new operations take the
 * next window's keys, and once every operation of window n has returned (or was dropped), no
 * operation will ever touch its keys again: its history is complete and is handed over once
 * (`onSeal`) to be checked, then dropped here.
 *
 * Why this is sound: a key-value history is linearizable iff each key's sub-history is
 * (P-compositionality: Herlihy & Wing 1990, §3.3; the checker splits by key the same way,
 * docs/safety.md). Disjoint keys per window make the windows independent, so checking each window
 * once and keeping only its verdict decides the whole run's history. A write whose outcome is
 * unknown (returnAt = Infinity) may apply at any later time, but only to its own window's key,
 * which no later operation reads. What it costs: a fresh key starts absent, so each window begins
 * with reads of null; reads never compare values across windows (a stale read across a window
 * boundary is not detectable, one within a window is: windows last seconds, faults heal in seconds,
 * and the negative control, test/etcd-demo.test.ts, shows one is caught in the first window).
 * @module
 */
import type { KeySource, RecordedOp } from "./harness.js";

/** One window's whole history, complete: every operation on its keys has returned. */
export interface SealedWindow {
  index: number;
  /** Wall clock (Date.now()) when the window opened and when its keys stopped being handed out. */
  openedAtWallMs: number;
  closedAtWallMs: number;
  ops: RecordedOp[];
}

interface OpenWindow {
  index: number;
  openedAtWallMs: number;
  closedAtWallMs: number | undefined;
  ops: RecordedOp[];
  inFlight: number;
}

export interface WindowedKeysOptions {
  /** How long a window hands out its keys (ms, > 0). */
  windowMs: number;
  /** Keys per window (≥ 1). */
  keys: number;
  onSeal: (window: SealedWindow) => void;
}

/** A KeySource for Demo.startLoad that rotates keys per window and seals complete windows. */
export class WindowedKeys implements KeySource {
  readonly windowMs: number;
  readonly keys: number;
  readonly #onSeal: (window: SealedWindow) => void;
  readonly #open = new Map<number, OpenWindow>();
  #current: OpenWindow;
  #sealed = 0;

  constructor(options: WindowedKeysOptions) {
    if (!(options.windowMs > 0) || !Number.isFinite(options.windowMs)) throw new RangeError(`windowMs must be a positive number, got ${options.windowMs}`);
    if (!Number.isInteger(options.keys) || options.keys < 1) throw new RangeError(`keys must be a positive integer, got ${options.keys}`);
    this.windowMs = options.windowMs;
    this.keys = options.keys;
    this.#onSeal = options.onSeal;
    this.#current = this.#openWindow(0);
  }

  /** The window handing out keys now. */
  get currentIndex(): number {
    return this.#current.index;
  }

  /** Windows handed to onSeal so far. */
  get sealedCount(): number {
    return this.#sealed;
  }

  /** Windows still held (the current one and closed ones with operations in flight). */
  get openCount(): number {
    return this.#open.size;
  }

  take(): string {
    this.tick();
    this.#current.inFlight++;
    return `w${this.#current.index}-k${Math.floor(Math.random() * this.keys)}`;
  }

  done(key: string, op: RecordedOp | null): void {
    const w = this.#open.get(Number(key.slice(1, key.indexOf("-"))));
    if (w === undefined) throw new Error(`windowed keys: ${key} is not in an open window`);
    w.inFlight--;
    if (op !== null) w.ops.push(op);
    if (w !== this.#current && w.inFlight === 0) this.#seal(w);
  }

  /** Closes the current window if its time is up (call it on a timer: an idle window closes too). */
  tick(nowWallMs = Date.now()): void {
    if (nowWallMs - this.#current.openedAtWallMs < this.windowMs) return;
    this.#close(nowWallMs);
  }

  /** Closes the current window now (end of a bounded run, after the load stopped) and seals
   *  every window with nothing in flight. */
  flush(nowWallMs = Date.now()): void {
    this.#close(nowWallMs);
  }

  #close(nowWallMs: number): void {
    const closing = this.#current;
    closing.closedAtWallMs = nowWallMs;
    this.#current = this.#openWindow(closing.index + 1);
    for (const w of [...this.#open.values()]) if (w !== this.#current && w.inFlight === 0) this.#seal(w);
  }

  #openWindow(index: number): OpenWindow {
    const w: OpenWindow = { index, openedAtWallMs: Date.now(), closedAtWallMs: undefined, ops: [], inFlight: 0 };
    this.#open.set(index, w);
    return w;
  }

  #seal(w: OpenWindow): void {
    this.#open.delete(w.index);
    this.#sealed++;
    this.#onSeal({ index: w.index, openedAtWallMs: w.openedAtWallMs, closedAtWallMs: w.closedAtWallMs ?? Date.now(), ops: w.ops });
  }
}
