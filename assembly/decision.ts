// The lease-read and dispatch decisions (lease-contract.md §3 engine check, §4).
//
// Pure: each takes the one clock sample of the operation (`nowNs`) and the engine's answers,
// and returns an outcome: a reason code, plus flags saying where the read is served. The host
// does the I/O (the linearizable read, the commit) and calls back into the lease table.

import { CAUSE_REGRESSION, CAUSE_SUSPEND, causeOf, extend, validAt } from "./lease";

// Reason codes. Stable: they are part of the ABI (docs/abi.md) and of every host's metrics.
export const REASON_VALID: i32 = 0;
export const REASON_EXPIRED: i32 = 1;
export const REASON_NOT_LEADER: i32 = 2;
export const REASON_CLOCK_UNKNOWN: i32 = 3;
export const REASON_TERM_MISMATCH: i32 = 4;
export const REASON_SUSPEND_DETECTED: i32 = 5;
export const REASON_SUSPECT: i32 = 6;
export const REASON_DISABLED: i32 = 7;

/** Outcome flag: serve the read locally (otherwise: a linearizable read). */
export const SERVE_LOCAL: i32 = 0x100;
/** Outcome flag: the engine's own quorum ack proved the lease (step 2), not the caller lease. */
export const BY_ENGINE: i32 = 0x200;

/** The engine-side check: leader, a real sample, a real ack not from the future, and younger
 *  than the lease. `ackNs <= nowNs` matters: an ack "from the future" can only come from
 *  another clock or a fault, and would otherwise make `nowNs - ackNs` negative and pass. */
export function engineAckValid(isLeader: bool, ackNs: i64, nowNs: i64, leaseDurationNs: i64): bool {
  return isLeader && nowNs != 0 && ackNs != 0 && ackNs <= nowNs && nowNs - ackNs < leaseDurationNs;
}

/** Why a caller lease does not serve at `nowNs` (valid when it does). */
export function leaseReason(slot: i32, nowNs: i64): i32 {
  if (nowNs == 0) return REASON_CLOCK_UNKNOWN;
  if (validAt(slot, nowNs)) return REASON_VALID;
  const cause = causeOf(slot);
  if (cause == CAUSE_SUSPEND) return REASON_SUSPEND_DETECTED;
  if (cause == CAUSE_REGRESSION) return REASON_CLOCK_UNKNOWN;
  return REASON_EXPIRED;
}

/** leaseRead, steps 1, 2 and 4 of contract §4, on one sample. Step 3 (sample the generation)
 *  is the host's, taken before this call so an invalidation during the linearizable read
 *  voids the extend that follows it. */
export function decideRead(
  slot: i32,
  nowNs: i64,
  hasCapability: bool,
  leaseDurationNs: i64,
  isLeader: bool,
  ackNs: i64,
): i32 {
  if (!hasCapability || leaseDurationNs <= 0) return REASON_DISABLED;
  if (engineAckValid(isLeader, ackNs, nowNs, leaseDurationNs)) {
    return REASON_VALID | SERVE_LOCAL | BY_ENGINE;
  }
  if (nowNs == 0) return REASON_CLOCK_UNKNOWN;
  if (!isLeader) return REASON_NOT_LEADER;
  const reason = leaseReason(slot, nowNs);
  return reason == REASON_VALID ? REASON_VALID | SERVE_LOCAL : reason;
}

/** After a quorum operation that began at `sampleNs` under generation `generation`: extend to
 *  sampleNs + leaseDurationNs. A zero sample never extends (no lease from 0 + duration); an
 *  instant past i64 never wraps into the past. */
export function extendFrom(slot: i32, sampleNs: i64, leaseDurationNs: i64, generation: i64): bool {
  if (sampleNs <= 0 || leaseDurationNs <= 0) return false;
  if (sampleNs > i64.MAX_VALUE - leaseDurationNs) return false;
  return extend(slot, sampleNs + leaseDurationNs, generation);
}
