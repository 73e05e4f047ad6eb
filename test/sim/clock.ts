// A node's clock: what its host would read (CLOCK_MONOTONIC_RAW and the sleep offset), as a
// function of the world's true time, with the faults of issue 5: rate drift (within and beyond
// the bound), suspend (the clock stops, the sleep offset grows by the time slept), zero
// readings (the clock call fails), and regression (a reading below the last one).
import type { ClockSource } from "lease-core";
import type { World } from "./world.js";

export class SimClock {
  readonly #world: World;
  #baseReading: number; // reading at #baseTrue
  #baseTrue: number;
  #ratePpm = 0; // reading advances (1 + ppm/1e6) ns per true ns
  #suspendedAt: number | undefined;
  #sleepOffsetNs = 0;
  #zeroUntil = -1;
  /** How many lease-clock readings returned 0 (a failed clock call). */
  zeroReadingsServed = 0;

  constructor(world: World, originNs: number) {
    this.#world = world;
    this.#baseReading = originNs;
    this.#baseTrue = world.now;
  }

  /** The raw reading in ns (what the node's own timers use). */
  reading(): number {
    const end = this.#suspendedAt ?? this.#world.now;
    return this.#baseReading + (end - this.#baseTrue) * (1 + this.#ratePpm / 1e6);
  }

  #rebase(): void {
    this.#baseReading = this.reading();
    this.#baseTrue = this.#suspendedAt ?? this.#world.now;
  }

  get ratePpm(): number {
    return this.#ratePpm;
  }

  /** Rate error against true time from now on (positive: runs fast). */
  setRatePpm(ppm: number): void {
    this.#rebase();
    this.#ratePpm = ppm;
  }

  get suspended(): boolean {
    return this.#suspendedAt !== undefined;
  }

  suspend(): void {
    if (this.#suspendedAt !== undefined) return;
    this.#rebase();
    this.#suspendedAt = this.#world.now;
  }

  resume(): void {
    const at = this.#suspendedAt;
    if (at === undefined) return;
    this.#sleepOffsetNs += this.#world.now - at; // CLOCK_BOOTTIME ran on, MONOTONIC did not
    this.#suspendedAt = undefined;
    this.#baseTrue = this.#world.now;
  }

  /** The clock call fails (reads 0) until true time `untilNs`. */
  failUntil(untilNs: number): void {
    this.#zeroUntil = untilNs;
  }

  /** The next readings go back by `ns` (a broken clock source). */
  regress(ns: number): void {
    this.#rebase();
    this.#baseReading -= ns;
  }

  /** The ClockSource a lease core reads: with the sleep offset when suspend-aware. */
  source(suspendAware: boolean): ClockSource {
    const now = (): bigint => {
      if (this.#world.now < this.#zeroUntil) {
        this.zeroReadingsServed++;
        return 0n;
      }
      return BigInt(Math.floor(this.reading()));
    };
    const info = { source: "simulated", raw: true, suspendAware, resolutionNs: 1n, mayFreeze: false };
    return suspendAware ? { now, sleepOffsetNs: () => BigInt(this.#sleepOffsetNs), info } : { now, info };
  }
}
