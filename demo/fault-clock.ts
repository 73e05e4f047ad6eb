/**
 * A clock source with faults on demand, for the KV service under the nemesis (demo/kv-service.ts
 * with KV_CLOCK_FAULTS=1, demo/nemesis.ts): a `ClockSource` (host/core/clock.ts) over a true clock,
 * modelled on the Node host's raw+sleep clock, CLOCK_MONOTONIC_RAW plus the sleep offset
 * CLOCK_BOOTTIME - CLOCK_MONOTONIC (clock_gettime(2)):
 *
 *   - `step-back ms`: raw jumps back (a broken or virtualised clock); the core counts a
 *     regression and invalidates every lease;
 *   - `jump-forward ms`: raw jumps ahead (counted as time passing: a lease ends early, which is
 *     safe, but a wait timed on this clock, a takeover hold, ends early too; docs/contract.md §1
 *     puts jumps beyond the drift bound outside the model);
 *   - `freeze ms`: raw stands still for `ms` of true time, then catches up at once (what a clock
 *     that "may freeze" does, docs/edge-clocks.md). The source declares `mayFreeze` with a
 *     `freezeBudgetNs` of the longest freeze it injects, so every lease is shortened by it: a
 *     freeze within the budget is inside lease-core's model, a longer one is not, and the
 *     nemesis never injects one;
 *   - `suspend ms`: the machine sleeps: the thread is blocked for `ms` (no code runs, as in a
 *     real suspend), raw does not count that time, and the sleep offset grows by it, as the
 *     kernel's do across a suspend.
 *
 * Invariant: `now()` = `trueNs() + offsetNs`, or the frozen reading during a freeze; the sleep
 * offset only grows. Bad input throws ClockFaultError and changes nothing.
 * @module
 */
import type { ClockSource } from "lease-core";

/** The clock faults the KV service can be told to inject. */
export type ClockFaultKind = "step-back" | "jump-forward" | "freeze" | "suspend";
export const CLOCK_FAULT_KINDS: readonly ClockFaultKind[] = ["step-back", "jump-forward", "freeze", "suspend"];

/** The longest freeze injected (and declared as the clock's freeze budget). */
export const MAX_FREEZE_MS = 400;
/** The longest step, jump or suspend accepted. */
export const MAX_CLOCK_FAULT_MS = 60_000;

/** A clock fault that cannot be applied (unknown kind, a duration out of range). */
export class ClockFaultError extends Error {
  readonly code = "ERR_LEASE_CLOCK_FAULT";
  override get name(): string {
    return "ClockFaultError";
  }
}

const MS = 1_000_000n;

/** Blocks this thread for `ms` (Atomics.wait on a private cell: nothing else runs meanwhile). */
function blockThread(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export interface FaultClockCounts {
  "step-back": number;
  "jump-forward": number;
  freeze: number;
  suspend: number;
}

export class FaultClock implements ClockSource {
  readonly #trueNs: () => bigint;
  readonly #block: (ms: number) => void;
  #offsetNs = 0n;
  #sleepNs = 0n;
  #frozenNs: bigint | undefined;
  #frozenUntilTrueNs = 0n;
  readonly counts: FaultClockCounts = { "step-back": 0, "jump-forward": 0, freeze: 0, suspend: 0 };
  readonly info;

  /** `trueNs` is the undisturbed clock (e.g. a default core's `now()`); `block` stands the
   *  thread still (a test passes a fake that advances its fake true clock instead). */
  constructor(trueNs: () => bigint, base: { source: string; raw: boolean; resolutionNs: bigint }, block: (ms: number) => void = blockThread) {
    this.#trueNs = trueNs;
    this.#block = block;
    this.info = {
      source: `nemesis-faults(${base.source})`,
      raw: base.raw,
      suspendAware: true,
      resolutionNs: base.resolutionNs,
      mayFreeze: true,
      freezeBudgetNs: BigInt(MAX_FREEZE_MS) * MS,
    };
  }

  now(): bigint {
    const t = this.#trueNs();
    if (this.#frozenNs !== undefined) {
      if (t < this.#frozenUntilTrueNs) return this.#frozenNs;
      this.#frozenNs = undefined; // the freeze is over: back on true time (a jump by its length)
    }
    return t + this.#offsetNs;
  }

  sleepOffsetNs(): bigint {
    return this.#sleepNs;
  }

  /** Injects one fault; returns the reading after it. @throws ClockFaultError */
  inject(kind: ClockFaultKind, ms: number): bigint {
    if (!CLOCK_FAULT_KINDS.includes(kind)) throw new ClockFaultError(`clock fault must be one of ${CLOCK_FAULT_KINDS.join(", ")}, got ${String(kind)}`);
    const max = kind === "freeze" ? MAX_FREEZE_MS : MAX_CLOCK_FAULT_MS;
    if (typeof ms !== "number" || !Number.isInteger(ms) || ms <= 0 || ms > max) throw new ClockFaultError(`${kind}: ms must be an integer in [1, ${max}], got ${String(ms)}`);
    const ns = BigInt(ms) * MS;
    if (kind === "step-back") {
      if (this.now() - ns <= 0n) throw new ClockFaultError(`step-back: ${ms} ms would take the clock below zero`);
      this.#offsetNs -= ns;
    } else if (kind === "jump-forward") {
      this.#offsetNs += ns;
    } else if (kind === "freeze") {
      this.#frozenNs = this.now();
      this.#frozenUntilTrueNs = this.#trueNs() + ns;
    } else {
      const before = this.#trueNs();
      this.#block(ms);
      const sleptNs = this.#trueNs() - before;
      // Raw did not count the sleep; the sleep offset did.
      this.#offsetNs -= sleptNs;
      this.#sleepNs += sleptNs;
    }
    this.counts[kind]++;
    return this.now();
  }
}
