/**
 * One lease of a core (`Lease`, contract §2) and the engine-side lease check
 * (`engineLeaseAckValid`, contract §3). The state lives in the wasm core's lease table; a
 * `Lease` is a handle on one slot of it.
 * @module
 */
import { REASONS, type CoreExports, type Reason } from "./abi.js";
import { I64_MAX, checkDuration, checkEngineState, checkInstant } from "./checks.js";
import { DisposedError, InvalidGenerationError } from "./errors.js";

/**
 * @internal What a lease needs of the core that owns it; `LeaseCore` satisfies it (core.ts).
 * An interface, not the class, so that this module does not import the core that creates it.
 */
export interface LeaseOwner {
  readonly exports: CoreExports;
  /** The host's own fill (into the timespec area when `timespecs` is not 0). */
  readonly hostFill: () => void;
  /** 0, or how many timespecs the host's fill writes. */
  readonly timespecs: number;
  /** One reading of the lease clock in ns, after the clock rules. */
  now(): bigint;
  /** Returns the slot of a disposed lease to the table. */
  releaseLease(lease: Lease, slot: number): void;
}

/**
 * The engine-side lease check of contract §3:
 * `leader && now != 0 && ack != 0 && ack <= now && now - ack < leaseDuration`.
 * (The same rule as the wasm core's `engineAckValid`; a property test keeps them equal.)
 * A pure function: it does not know the core's clock faults. A reader applies them for you;
 * code that calls this directly must also require `ackNs > core.lastClockFaultNs()`.
 */
export function engineLeaseAckValid(state: string, ackNs: bigint, nowNs: bigint, leaseDurationNs: bigint): boolean {
  checkEngineState(state);
  checkInstant(ackNs, "ackNs");
  checkInstant(nowNs, "nowNs");
  checkDuration(leaseDurationNs, "leaseDurationNs");
  return state === "leader" && nowNs !== 0n && ackNs !== 0n && ackNs <= nowNs && nowNs - ackNs < leaseDurationNs;
}

/**
 * A lease `{ expiry, generation }` (contract §2). Valid at `now` iff now != 0, expiry != 0 and
 * now < expiry. Extends are monotone and guarded by the generation; invalidate clears the
 * expiry, then bumps the generation.
 */
export class Lease {
  readonly #core: LeaseOwner;
  readonly #ex: CoreExports;
  readonly #hostFill: () => void;
  readonly #timespecs: number;
  #slot: number;

  /** @internal */
  constructor(core: LeaseOwner, slot: number) {
    this.#core = core;
    this.#ex = core.exports;
    this.#hostFill = core.hostFill;
    this.#timespecs = core.timespecs;
    this.#slot = slot;
  }

  /** @internal The slot in the core's lease table. */
  get slot(): number {
    if (this.#slot < 0) throw new DisposedError("lease");
    return this.#slot;
  }

  /** Whether the lease holds at `nowNs` (default: one fresh reading of the core's clock). */
  valid(nowNs?: bigint): boolean {
    const slot = this.#slot;
    if (slot < 0) throw new DisposedError("lease");
    if (nowNs === undefined) {
      // One host read, one wasm call: the hot path of every lease read.
      this.#hostFill();
      const timespecs = this.#timespecs;
      return (timespecs === 0 ? this.#ex.leaseValidCell(slot) : this.#ex.leaseValidTimespecs(slot, timespecs)) !== 0;
    }
    return this.#ex.leaseValid(slot, checkInstant(nowNs, "nowNs")) !== 0;
  }

  /** Why the lease does or does not hold at `nowNs` (default: one fresh reading): `valid`,
   *  `expired`, `clock-unknown` (no reading, or invalidated by a clock regression) or
   *  `suspend-detected` (invalidated by a suspend). */
  reason(nowNs?: bigint): Reason {
    const slot = this.slot;
    const now = nowNs === undefined ? this.#core.now() : checkInstant(nowNs, "nowNs");
    return REASONS[this.#ex.leaseReason(slot, now)]!;
  }

  /** The invalidation counter: starts at 0, never decreases. */
  generation(): bigint {
    return this.#ex.leaseGeneration(this.slot);
  }

  /** The expiry instant in ns (0n: no lease). */
  expiry(): bigint {
    return this.#ex.leaseExpiry(this.slot);
  }

  /**
   * Extends to `untilNs` iff untilNs != 0, `expectedGen` is the current generation, and untilNs
   * is later than the current expiry (or there is none). Returns whether it took effect.
   */
  extend(untilNs: bigint, expectedGen: bigint): boolean {
    const slot = this.slot;
    checkInstant(untilNs, "untilNs");
    if (typeof expectedGen !== "bigint" || expectedGen < 0n || expectedGen > I64_MAX) {
      throw new InvalidGenerationError("expectedGen", expectedGen);
    }
    return this.#ex.leaseExtend(slot, untilNs, expectedGen) !== 0;
  }

  /** Clears the expiry, then bumps the generation by one. Never throws on a live lease. */
  invalidate(): void {
    this.#ex.leaseInvalidate(this.slot);
  }

  /** Returns the slot to the core. Any later call throws DisposedError. Idempotent. */
  dispose(): void {
    const slot = this.#slot;
    if (slot < 0) return;
    this.#slot = -1;
    this.#core.releaseLease(this, slot);
  }
}
