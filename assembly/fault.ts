// The instant of the last clock fault (docs/contract.md §1.4; docs/safety.md, "clock faults").
//
// A regression or a suspend makes every instant sampled before it suspect: after a step back,
// once the clock passes the last good instant again, an ack sampled before the step looks
// younger by the size of the step. The core therefore keeps the largest instant it had handed
// out when it saw a fault, and no ack at or before it proves anything afterwards: trackers refuse
// to record one, extends from such a sample fail, and the readers refuse an engine's ack that is
// not later (assembly/reader.ts R2). Invariant F1: faultFloorNs never decreases.
// Its own module so that instant.ts (which raises it) and quorum.ts (which reads it) do not
// import each other.

import { hostClockFault } from "./host";

let faultFloorNs: i64 = 0;

/** The last instant handed out before the latest clock fault (0: no fault yet). */
export function faultFloor(): i64 {
  return faultFloorNs;
}

/** A fault was seen while `lastInstantNs` was the largest instant handed out. */
export function raiseFaultFloor(lastInstantNs: i64): void {
  if (lastInstantNs <= faultFloorNs) return; // F1
  faultFloorNs = lastInstantNs;
  // The host's shared tables learn it before this instance hands out anything after the fault
  // (docs/shared-lease.md §6): another thread must not serve a lease this fault retired.
  if (LEASE_HOST_HOOKS) hostClockFault(lastInstantNs);
}

/** Forgets the floor (resetClockForTest only). */
export function resetFaultFloorForTest(): void {
  faultFloorNs = 0;
}
