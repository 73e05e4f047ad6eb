/**
 * The peer: the lease a user would write in plain TypeScript instead of using lease-core, on the
 * same clock, with the same rules (contract §1-§2), so that "lease-core costs X× the peer" compares
 * equal work. Written as idiomatic, allocation-light TypeScript: bigint instants, a class per
 * concept, no wasm. It is NOT sabotaged: where a runtime offers a faster idiom (a BigInt64Array
 * cell filled by the clock shim instead of two BigInt-returning calls), the bench gives the peer
 * that idiom too.
 * @module
 */

/** One clock sample: the raw instant (0n = no reading) and, for a suspend-aware clock, the sleep offset. */
export interface PeerClockSource {
  /** Takes a reading and returns the raw instant in ns; 0n or less means "no reading". */
  readRaw(): bigint;
  /** The sleep offset of that same reading (CLOCK_BOOTTIME - CLOCK_MONOTONIC), if the clock has one. */
  readSleepOffset?(): bigint;
}

/** A suspend shorter than 1 ms is not an event (the core's SUSPEND_TOLERANCE_NS). */
const SUSPEND_TOLERANCE_NS = 1_000_000n;

/**
 * The clock rules of contract §1: a zero reading is refused; a reading earlier than the last one
 * is a regression (refused, every lease void); sleep-offset growth past the tolerance is a
 * suspend (every lease void). "Every lease void" is a fault counter leases compare against.
 */
export class PeerClock {
  /** Regressions + suspends so far; a lease extended before a fault is void. */
  faults = 0;
  #lastNs = 0n;
  #offsetBaseNs = 0n;
  #offsetMaxNs = 0n;
  #primed = false;
  readonly #source: PeerClockSource;
  readonly #hasOffset: boolean;

  constructor(source: PeerClockSource) {
    this.#source = source;
    this.#hasOffset = typeof source.readSleepOffset === "function";
  }

  /** One reading after the rules; 0n = no reading. */
  now(): bigint {
    const rawNs = this.#source.readRaw();
    if (rawNs <= 0n) return 0n;
    let instantNs = rawNs;
    if (this.#hasOffset) {
      const offsetNs = this.#source.readSleepOffset!();
      if (!this.#primed) {
        this.#offsetBaseNs = this.#offsetMaxNs = offsetNs;
        this.#primed = true;
      } else if (offsetNs > this.#offsetMaxNs) {
        const growthNs = offsetNs - this.#offsetMaxNs;
        this.#offsetMaxNs = offsetNs;
        if (growthNs > SUSPEND_TOLERANCE_NS) this.faults++;
      }
      instantNs = rawNs + (this.#offsetMaxNs - this.#offsetBaseNs);
    }
    if (instantNs < this.#lastNs) {
      this.faults++;
      return 0n;
    }
    this.#lastNs = instantNs;
    return instantNs;
  }
}

/** A lease { expiry, generation }: valid at now iff now != 0, expiry != 0, now < expiry, and no clock fault since it was extended. */
export class PeerLease {
  expiryNs = 0n;
  generation = 0n;
  #faults: number;
  readonly #clock: PeerClock;

  constructor(clock: PeerClock) {
    this.#clock = clock;
    this.#faults = clock.faults;
  }

  valid(nowNs: bigint = this.#clock.now()): boolean {
    return nowNs !== 0n && this.expiryNs !== 0n && nowNs < this.expiryNs && this.#faults === this.#clock.faults;
  }

  extend(untilNs: bigint, expectedGen: bigint): boolean {
    if (untilNs <= 0n || expectedGen !== this.generation) return false;
    if (this.#faults !== this.#clock.faults) {
      this.invalidate(); // a fault since the last extend voids this generation
      return false;
    }
    if (this.expiryNs !== 0n && untilNs <= this.expiryNs) return false;
    this.expiryNs = untilNs;
    return true;
  }

  invalidate(): void {
    this.expiryNs = 0n;
    this.generation++;
    this.#faults = this.#clock.faults;
  }
}
