/**
 * The clock behind a core: what it is (`ClockInfo`), a user's clock (`ClockSource`), and what a
 * runtime host hands the core (`HostClock`): a fill bound to the core's clock cell. The clock
 * rules themselves (regressions, suspends, no reading) live in the wasm core (assembly/instant.ts).
 * @module
 */
import { I64_MAX } from "./checks.js";
import { InvalidOptionError } from "./errors.js";

/** What the clock behind a core is, reported by every host (contract §1.1). Nothing is silent. */
export interface ClockInfo {
  /** The clock read, e.g. `CLOCK_MONOTONIC_RAW+sleep-offset`, `process.hrtime.bigint`, `performance.now`. */
  source: string;
  /** Immune to NTP slew (the kernel's raw oscillator count). */
  raw: boolean;
  /** Counts time the machine spent suspended (or detects it and invalidates every lease). */
  suspendAware: boolean;
  /** Smallest step of the clock, in ns. */
  resolutionNs: bigint;
  /** Whether the clock may stand still while code runs (edge runtimes: time moves only at I/O). */
  mayFreeze: boolean;
  /** For a clock that may freeze: how far a check may lag the true time, in ns. Every lease a
   *  reader of this core keeps or proves is shortened by it (docs/edge-clocks.md). */
  freezeBudgetNs?: bigint;
}

/** A custom clock, e.g. a simulation's: `now()` returns ns on a monotonic clock, 0n for "no reading". */
export interface ClockSource {
  /** One reading in ns on a monotonic clock; 0n (or anything but a bigint in (0, 2^63)) is "no reading". */
  now(): bigint;
  /** The time slept so far in ns (Linux: CLOCK_BOOTTIME - CLOCK_MONOTONIC), for a clock that can
   *  tell; its growth is a suspend (contract §1.2). A simulation uses it to inject suspends. */
  sleepOffsetNs?(): bigint;
  /** What the clock is (reported as `core.clock`); defaults: `custom`, not raw, 1 ns. */
  info?: Partial<ClockInfo>;
}

/** What a runtime host hands to the common core: its clock, bound to the core's clock cell. */
export interface HostClock {
  info: ClockInfo;
  /** Binds to the clock cell ([i64 rawNs, i64 sleepOffsetNs] at `byteOffset` of `memory`);
   *  returns the function that writes one fresh reading into it. Called once per core. */
  bind(memory: WebAssembly.Memory, byteOffset: number): () => void;
  /** How many readings to prime the sleep-offset baseline with (0: the host has no offset). */
  primeReadings?: number;
  /** What proves two cores read the same clock (compared when a shared lease table is attached):
   *  a process-wide clock's name (default: `info.source`), or a token unique to one custom
   *  `ClockSource` object (two custom clocks are never proven to agree). */
  identity?: string;
  /** Set when the fill writes `struct timespec`s into the core's timespec area instead of ns
   *  into the clock cell (1: the clock alone; 3: the clock, BOOTTIME, MONOTONIC). `bind` then
   *  gets the area's offset, and the core converts in wasm: cheaper than JS arithmetic where
   *  BigInt math is slow (Bun). */
  timespecs?: 1 | 3;
}

/**
 * A HostClock over a JS function returning bigint ns (a custom `ClockSource`, `hrtime`, ...):
 * each reading is stored into the cell through a BigInt64Array view. Anything but a bigint in
 * (0, 2^63) is stored as 0: a clock that throws or misbehaves reads as "no reading".
 */
export function jsHostClock(read: () => bigint, info: ClockInfo, readSleepOffset?: () => bigint): HostClock {
  return {
    info,
    bind(memory, byteOffset) {
      const cell = new BigInt64Array(memory.buffer, byteOffset, 2);
      return () => {
        let ns: unknown = 0n;
        let offsetNs: unknown = 0n;
        try {
          ns = read();
          if (readSleepOffset) offsetNs = readSleepOffset();
        } catch {
          ns = 0n;
        }
        const ok = typeof ns === "bigint" && ns > 0n && ns <= I64_MAX && typeof offsetNs === "bigint" && offsetNs >= -I64_MAX && offsetNs <= I64_MAX;
        cell[0] = ok ? (ns as bigint) : 0n;
        cell[1] = ok ? (offsetNs as bigint) : 0n;
      };
    },
  };
}

/** The HostClock for a user's `ClockSource`. */
export function customHostClock(source: ClockSource): HostClock {
  if (typeof source !== "object" || source === null || typeof source.now !== "function") {
    throw new InvalidOptionError("clock", "an object with now(): bigint", source);
  }
  const sleepOffsetNs = source.sleepOffsetNs;
  const info: ClockInfo = {
    source: "custom",
    raw: false,
    suspendAware: typeof sleepOffsetNs === "function",
    resolutionNs: 1n,
    mayFreeze: false,
    ...source.info,
  };
  const clock = jsHostClock(() => source.now(), info, typeof sleepOffsetNs === "function" ? () => sleepOffsetNs.call(source) : undefined);
  return { ...clock, identity: customClockIdentity(source) };
}

// One token per custom ClockSource object in this realm: cores made from the same object read
// the same function, so they agree; anything else (another object, another thread's copy) is
// never proven to, and a shared table refuses to attach it (host/core/shared.ts).
// Not a secret, only unique: a random prefix per realm (another thread never draws the same
// one in practice), then a counter per object. At most 31 bytes, which the table header holds.
const customIdentities = new WeakMap<object, string>();
const realmToken = Math.floor(Math.random() * 2 ** 52).toString(36);
let customCount = 0;

function customClockIdentity(source: ClockSource): string {
  let identity = customIdentities.get(source);
  if (identity === undefined) {
    identity = `custom#${realmToken}.${(customCount++).toString(36)}`;
    customIdentities.set(source, identity);
  }
  return identity;
}
