// Instants and the clock rules (docs/contract.md §1).
//
// An instant is an i64 count of nanoseconds on this process's monotonic lease clock; 0 means
// "no reading". The host writes each raw reading into the *clock cell* (two i64s in linear
// memory, so a native shim can fill it without allocating a BigInt); `observeCell` turns that
// reading into a lease instant and applies the rules no host may skip:
//
//   - a zero raw reading is refused (returns 0) and counted;
//   - a lease instant smaller than the previous one is a regression fault: refused, every lease
//     invalidated, counted (contract §1: a monotonic clock never goes backwards);
//   - growth of the sleep offset (CLOCK_BOOTTIME - CLOCK_MONOTONIC on Linux) beyond
//     SUSPEND_TOLERANCE_NS is a suspend: every lease invalidated, counted (contract §1.2).
//
// The lease instant is raw + (offsetMax - offsetBase): the raw clock's immunity to NTP slew
// (clock_gettime(2): CLOCK_MONOTONIC_RAW "not subject to NTP adjustments") plus the time the
// machine slept, which the raw clock does not count. offsetMax is a running maximum, so the
// instant is monotone even when one offset reading is off. Hosts read CLOCK_BOOTTIME *before*
// CLOCK_MONOTONIC, so a preemption between the two reads can only make a reading smaller than
// the true offset, never larger: after priming, only a real suspend makes the offset grow.

import { CAUSE_REGRESSION, CAUSE_SUSPEND, invalidateAllLeases } from "./lease";
import { resetAllTrackers } from "./quorum";
import { faultFloor, raiseFaultFloor, resetFaultFloorForTest } from "./fault";
import { hostClockInstant } from "./host";

/** A suspend shorter than this is not reported as an event (it still moves the lease clock
 *  forward). 1 ms: far below any lease duration worth having (contract §5 uses 700 ms), and far
 *  above the few ns between the two clock reads of one sample. */
export const SUSPEND_TOLERANCE_NS: i64 = 1_000_000;

// The clock cell the host fills: [rawNs: i64, sleepOffsetNs: i64].
export const CLOCK_CELL: usize = memory.data(16, 16);

let lastInstantNs: i64 = 0;
let offsetBaseNs: i64 = 0;
let offsetMaxNs: i64 = 0;
let offsetPrimed: bool = false;
// The next instant to hand to the host's clockInstant hook (i64.MAX: nobody watches). A host
// with a shared lease table feeds the table's high-water mark with it, so a step back below an
// instant this instance handed out is seen by every thread (host/core/shared.ts Z3).
let watchNextNs: i64 = i64.MAX_VALUE;

// Clock event counters; read by hosts without allocation.
export let zeroReadings: i64 = 0;
export let regressions: i64 = 0;
export let suspends: i64 = 0;
export let suspendedNs: i64 = 0;

/** Takes the sleep offset of the current cell as the baseline without reporting a suspend.
 *  Hosts call it a few times at start: the running maximum of a few readings is the true
 *  offset unless every one of them was preempted between its two reads. */
export function primeCell(): void {
  const offsetNs = load<i64>(CLOCK_CELL, 8);
  if (load<i64>(CLOCK_CELL) == 0) return;
  if (!offsetPrimed || offsetNs > offsetBaseNs) {
    offsetBaseNs = offsetNs;
    offsetMaxNs = offsetNs;
    offsetPrimed = true;
  }
}

/** Applies the clock rules to one reading; returns the lease instant, or 0 when refused. */
export function observe(rawNs: i64, sleepOffsetNs: i64): i64 {
  if (rawNs <= 0) {
    zeroReadings++;
    return 0;
  }
  if (!offsetPrimed) {
    offsetBaseNs = sleepOffsetNs;
    offsetMaxNs = sleepOffsetNs;
    offsetPrimed = true;
  } else if (sleepOffsetNs > offsetMaxNs) {
    const growthNs = sleepOffsetNs - offsetMaxNs;
    offsetMaxNs = sleepOffsetNs;
    if (growthNs > SUSPEND_TOLERANCE_NS) {
      raiseFaultFloor(lastInstantNs); // every earlier sample is from before the suspend (fault.ts)
      suspends++;
      suspendedNs += growthNs;
      invalidateAllLeases(CAUSE_SUSPEND);
      resetAllTrackers();
    }
  }
  const instantNs = rawNs + (offsetMaxNs - offsetBaseNs);
  if (instantNs < lastInstantNs) {
    // Readings are refused until they pass lastInstantNs again; every sample handed out so far
    // is at or before it, and none of them may prove anything once the clock gets there (fault.ts).
    raiseFaultFloor(lastInstantNs);
    regressions++;
    invalidateAllLeases(CAUSE_REGRESSION);
    resetAllTrackers();
    return 0;
  }
  lastInstantNs = instantNs;
  if (LEASE_HOST_HOOKS && instantNs >= watchNextNs) {
    watchNextNs = instantNs + SUSPEND_TOLERANCE_NS; // one hook call per ms of clock progress
    hostClockInstant(instantNs);
  }
  return instantNs;
}

/** From now on, hand the host an instant at least every SUSPEND_TOLERANCE_NS of clock progress
 *  (the clockInstant import), starting with the next reading. Idempotent. */
export function watch(): void {
  if (watchNextNs == i64.MAX_VALUE) watchNextNs = 0;
}

// The timespec area, for hosts whose FFI writes `struct timespec`s (clock_gettime(2)) straight
// into linear memory: [tv_sec: i64, tv_nsec: i64] x 3 = the lease clock, then CLOCK_BOOTTIME and
// CLOCK_MONOTONIC for the sleep offset. Converting here costs one wasm call instead of JS
// arithmetic per reading (JavaScriptCore's BigInt math is slow: docs/runtime-notes.md, Bun).
export const TIMESPEC_AREA: usize = memory.data(48, 16);

/** Writes the clock cell from `count` timespecs (1: the clock alone; 3: with the sleep offset
 *  BOOTTIME - MONOTONIC). A host that failed to read writes zeros: raw 0 is "no reading". */
export function timespecsToCell(count: i32): void {
  const rawNs = load<i64>(TIMESPEC_AREA) * 1_000_000_000 + load<i64>(TIMESPEC_AREA, 8);
  let offsetNs: i64 = 0;
  if (count == 3) {
    offsetNs = (load<i64>(TIMESPEC_AREA, 16) - load<i64>(TIMESPEC_AREA, 32)) * 1_000_000_000 + (load<i64>(TIMESPEC_AREA, 24) - load<i64>(TIMESPEC_AREA, 40));
  }
  store<i64>(CLOCK_CELL, rawNs);
  store<i64>(CLOCK_CELL, offsetNs, 8);
}

/** `observe` on the reading the host wrote into the clock cell. */
export function observeCell(): i64 {
  return observe(load<i64>(CLOCK_CELL), load<i64>(CLOCK_CELL, 8));
}

/** A step back that this instance's own readings could not show (its last reading was not past
 *  the point the clock stepped back to) but another instance on the same clock saw, e.g.
 *  through a shared lease table's high-water mark: handled as a regression of this clock. Every
 *  sample handed out so far is at or before lastInstantNs, so none proves anything afterwards. */
export function reportRegression(): void {
  raiseFaultFloor(lastInstantNs);
  regressions++;
  invalidateAllLeases(CAUSE_REGRESSION);
  resetAllTrackers();
}

/** Another instance on this clock (another thread's core, through a shared lease table) handed
 *  out `lastGoodNs` (this instance's frame) before a clock fault this instance has not seen, or
 *  saw the clock below it. Handled as if this instance had read the clock at lastGoodNs and then
 *  seen the fault: the fault floor rises to it (no sample at or before it proves anything),
 *  readings are refused until they pass it, every lease is invalidated, every tracker reset,
 *  and a regression is counted. Returns false (and changes nothing) when the floor is already
 *  at or past lastGoodNs. */
export function reportFault(lastGoodNs: i64): bool {
  if (lastGoodNs <= faultFloor()) return false;
  if (lastGoodNs > lastInstantNs) lastInstantNs = lastGoodNs;
  raiseFaultFloor(lastGoodNs);
  regressions++;
  invalidateAllLeases(CAUSE_REGRESSION);
  resetAllTrackers();
  return true;
}

export function lastInstant(): i64 {
  return lastInstantNs;
}

/** The sleep-offset baseline: this instance's zero. A lease instant is raw + (offsetMax - base),
 *  so two instances on one clock differ by exactly the difference of their bases (a suspend
 *  between their creations); the shared table translates by it (host/core/shared.ts). Fixed after
 *  the first reading (and after priming, which happens before any). */
export function offsetBase(): i64 {
  return offsetBaseNs;
}

/** Forgets every reading, the sleep-offset baseline and the event counts, as a new instance
 *  would start. Not part of the ABI (index.ts does not export it): only the WASI self-test
 *  (assembly/wasi-selftest.ts) calls it, to run each conformance case on a fresh clock inside
 *  one instance, as the JS runner does with one core per case. */
export function resetClockForTest(): void {
  lastInstantNs = 0;
  offsetBaseNs = 0;
  offsetMaxNs = 0;
  offsetPrimed = false;
  zeroReadings = 0;
  regressions = 0;
  suspends = 0;
  suspendedNs = 0;
  watchNextNs = i64.MAX_VALUE;
  resetFaultFloorForTest();
}
