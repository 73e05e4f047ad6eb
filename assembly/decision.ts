// The lease-read and dispatch decisions (docs/contract.md §3 engine check, §4).
//
// Pure: each takes the one clock sample of the operation (`nowNs`) and the engine's answers,
// and returns an outcome: a reason code, plus flags saying where the read is served. The host
// does the I/O (the linearizable read, the commit) and calls back into the lease table.

import { CAUSE_REGRESSION, CAUSE_SUSPEND, causeOf, extend, validAt } from "./lease";
import { faultFloor } from "./fault";

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
@inline export function engineAckValid(isLeader: bool, ackNs: i64, nowNs: i64, leaseDurationNs: i64): bool {
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

/** After a quorum operation that began at `sampleNs` under generation `generation`: extend to
 *  sampleNs + leaseDurationNs. A zero sample never extends (no lease from 0 + duration); an
 *  instant past i64 never wraps into the past; a sample from before the last clock fault never
 *  extends (fault.ts; the fault also bumped the generation, this holds without it). */
export function extendFrom(slot: i32, sampleNs: i64, leaseDurationNs: i64, generation: i64): bool {
  if (sampleNs <= 0 || leaseDurationNs <= 0) return false;
  if (sampleNs <= faultFloor()) return false;
  if (sampleNs > i64.MAX_VALUE - leaseDurationNs) return false;
  return extend(slot, sampleNs + leaseDurationNs, generation);
}

// Guard inputs of decideRead2 (docs/guards.md). A bit is set only when the engine (or the
// host) supplies the information the guard needs; with no bit, only the engine ack, its
// rearmAfterNs floor and the caller lease decide. The reader (reader.ts) sets them from the
// engine's answers and its own transfer state.
/** A leadership transfer is in progress, or ended and no quorum proof has come since. */
export const READ_SUSPECT: i32 = 0x1;
/** The engine reports its current term and the term of its applied index (own-term guard). */
export const READ_OWN_TERM: i32 = 0x2;
/** The engine reports the term its published quorum ack was proved in (ack-term guard). */
export const READ_ACK_TERM: i32 = 0x4;

/**
 * leaseRead with the [beyond] guards of contract §3 and §4, in this order:
 * disabled; no reading; not leader; suspect (a transfer: openraft #1749, etcd-raft #99, TiKV
 * #8034); term-mismatch when the leader has not applied an entry of its own term (its commit
 * index may lag entries a previous leader committed); then the engine's ack, which counts only
 * if it was proved in the current term and sent after `rearmAfterNs` (the end of the last
 * transfer; the reader, reader.ts, passes the larger of it and the last clock fault); then
 * the caller lease. When only a foreign-term ack stood between the read and
 * the lease, the reason is term-mismatch rather than expired.
 */
@inline export function decideRead2(
  slot: i32,
  nowNs: i64,
  hasCapability: bool,
  leaseDurationNs: i64,
  isLeader: bool,
  ackNs: i64,
  guards: i32,
  currentTerm: i64,
  appliedTerm: i64,
  ackTerm: i64,
  rearmAfterNs: i64,
): i32 {
  if (!hasCapability || leaseDurationNs <= 0) return REASON_DISABLED;
  if (nowNs == 0) return REASON_CLOCK_UNKNOWN;
  if (!isLeader) return REASON_NOT_LEADER;
  if (guards & READ_SUSPECT) return REASON_SUSPECT;
  if ((guards & READ_OWN_TERM) != 0 && appliedTerm != currentTerm) return REASON_TERM_MISMATCH;
  const ackInTerm = (guards & READ_ACK_TERM) == 0 || ackTerm == currentTerm;
  if (ackInTerm && ackNs > rearmAfterNs && engineAckValid(isLeader, ackNs, nowNs, leaseDurationNs)) {
    return REASON_VALID | SERVE_LOCAL | BY_ENGINE;
  }
  const reason = leaseReason(slot, nowNs);
  if (reason == REASON_VALID) return REASON_VALID | SERVE_LOCAL;
  if (!ackInTerm && reason == REASON_EXPIRED) return REASON_TERM_MISMATCH;
  return reason;
}
