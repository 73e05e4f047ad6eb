// The exported ABI of lease-core.wasm: every export of the module, and nothing else.
// Documented in docs/abi.md; hosts reach it through `instance.exports` (asc --bindings raw).
//
// Slots and trackers are indexes the host got from an alloc call. The host validates every
// index and value before calling (a bad one gets a typed error there); the asserts below only
// catch a host bug, and trap rather than continue on a broken invariant.

import * as clock from "./instant";
import * as fault from "./fault";
import * as lease from "./lease";
import * as quorum from "./quorum";
import * as decision from "./decision";
import * as config from "./config";
import { hostReadClock } from "./host";

export {
  REASON_VALID, REASON_EXPIRED, REASON_NOT_LEADER, REASON_CLOCK_UNKNOWN, REASON_TERM_MISMATCH,
  REASON_SUSPEND_DETECTED, REASON_SUSPECT, REASON_DISABLED, SERVE_LOCAL, BY_ENGINE,
  READ_SUSPECT, READ_OWN_TERM, READ_ACK_TERM,
} from "./decision";
export { SUSPEND_TOLERANCE_NS } from "./instant";
export { MAX_PEERS } from "./quorum";

/** Sizes the lease table and the tracker pool. Called once per instance, before anything else;
 *  the module never grows its memory afterwards, so views into it stay attached. */
export function init(leaseCapacity: i32, trackerCapacity: i32): void {
  lease.initLeases(leaseCapacity);
  quorum.initTrackers(trackerCapacity);
}

// Clock.
export function clockCell(): usize { return clock.CLOCK_CELL; }
export function clockTimespecArea(): usize { return clock.TIMESPEC_AREA; }
export function clockTimespecsToCell(count: i32): void { assert(count == 1 || count == 3); clock.timespecsToCell(count); }
export function clockObserve(rawNs: i64, sleepOffsetNs: i64): i64 { return clock.observe(rawNs, sleepOffsetNs); }
export function clockObserveCell(): i64 { return clock.observeCell(); }
export function clockPrimeCell(): void { clock.primeCell(); }
/** Samples through the host import: one call for hosts that prefer the module to ask. */
export function clockSample(): i64 {
  hostReadClock(clock.CLOCK_CELL);
  return clock.observeCell();
}
export function clockZeroReadings(): i64 { return clock.zeroReadings; }
export function clockRegressions(): i64 { return clock.regressions; }
export function clockSuspends(): i64 { return clock.suspends; }
export function clockSuspendedNs(): i64 { return clock.suspendedNs; }
export function clockLastInstant(): i64 { return clock.lastInstant(); }
/** The last instant handed out before the latest clock fault (0: none): no ack at or before it
 *  proves anything (assembly/fault.ts). Hosts pass it to decideRead2 within rearmAfterNs. */
export function clockLastFaultNs(): i64 { return fault.faultFloor(); }
/** This instance's sleep-offset baseline (its zero): instants of two instances on one clock
 *  differ by the difference of their zeros. */
export function clockOffsetBase(): i64 { return clock.offsetBase(); }
/** Another instance on this clock saw it step back past this one's last reading (a shared
 *  table's high-water mark): counted as a regression, the fault instant raised to the last
 *  instant handed out, every lease invalidated, every tracker reset. */
export function clockReportRegression(): void { clock.reportRegression(); }
/** Another instance on this clock handed out `lastGoodNs` (this instance's frame) before a
 *  clock fault this one has not seen: the fault floor rises to it, readings are refused until
 *  they pass it, every lease is invalidated, every tracker reset, a regression counted. Returns
 *  whether the floor rose (false: it was already there, nothing changed). */
export function clockReportFault(lastGoodNs: i64): bool { return clock.reportFault(lastGoodNs); }
/** Hands the host (the lease_host.clockInstant import) an instant at least every
 *  SUSPEND_TOLERANCE_NS of clock progress from now on: a host with a shared lease table feeds
 *  the table's high-water mark with it. Idempotent. */
export function clockWatch(): void { clock.watch(); }
/** Regressions + suspends, wrapping: a cheap "did a clock fault happen since I last looked"
 *  for tables outside this instance (the shared lease table invalidates on a change). */
export function clockFaults(): i32 { return <i32>(clock.regressions + clock.suspends); }

// Leases.
export function leaseAlloc(): i32 { return lease.allocLease(); }
export function leaseFree(slot: i32): void { assert(lease.isLeaseSlot(slot)); lease.freeLease(slot); }
export function leaseValid(slot: i32, nowNs: i64): bool { return lease.validAt(slot, nowNs); }
/** valid() on a fresh reading the host has just written into the clock cell. */
export function leaseValidCell(slot: i32): bool { return lease.validAt(slot, clock.observeCell()); }
/** valid() on the timespecs the host has just written into the timespec area. */
export function leaseValidTimespecs(slot: i32, count: i32): bool {
  clock.timespecsToCell(count);
  return lease.validAt(slot, clock.observeCell());
}
export function leaseReason(slot: i32, nowNs: i64): i32 { return decision.leaseReason(slot, nowNs); }
export function leaseExpiry(slot: i32): i64 { return lease.expiryOf(slot); }
export function leaseGeneration(slot: i32): i64 { return lease.generationOf(slot); }
export function leaseExtend(slot: i32, untilNs: i64, expectedGen: i64): bool { return lease.extend(slot, untilNs, expectedGen); }
export function leaseExtendFrom(slot: i32, sampleNs: i64, leaseDurationNs: i64, generation: i64): bool {
  return decision.extendFrom(slot, sampleNs, leaseDurationNs, generation);
}
export function leaseInvalidate(slot: i32): void { lease.invalidate(slot); }
export function leaseValidRange(first: i32, count: i32, nowNs: i64, outPtr: usize): i32 {
  assert(first >= 0 && count >= 0 && first + count <= lease.leaseCapacity());
  return lease.validRange(first, count, nowNs, outPtr);
}
export function leaseCapacity(): i32 { return lease.leaseCapacity(); }
/** How many of the leases handed out so far are valid at `nowNs` (one SIMD pass; a freed slot never counts). */
export function leaseCountValidAll(nowNs: i64): i32 { return lease.countValidLive(nowNs); }
/** leaseCountValidAll at `clockObserveCell()`: fill the cell first (one clock read for the whole table). */
export function leaseCountValidAllCell(): i32 { return lease.countValidLive(clock.observeCell()); }

// Quorum acks.
export function trackerAlloc(): i32 { return quorum.allocTracker(); }
export function trackerFree(t: i32): void { assert(quorum.isTracker(t)); quorum.freeTracker(t); }
export function trackerRecordAck(t: i32, peerId: i32, followerQuorum: i32, sentAtNs: i64): i32 {
  assert(quorum.isTracker(t) && peerId >= 0 && followerQuorum >= 0);
  return quorum.recordAck(t, peerId, followerQuorum, sentAtNs);
}
export function trackerRecordSelfAck(t: i32, sampleNs: i64): void { quorum.recordSelfAck(t, sampleNs); }
export function trackerRemovePeer(t: i32, peerId: i32, followerQuorum: i32): void {
  assert(quorum.isTracker(t) && peerId >= 0 && followerQuorum >= 0);
  quorum.removePeer(t, peerId, followerQuorum);
}
export function trackerReset(t: i32): void { quorum.resetTracker(t); }
export function trackerQuorumAck(t: i32): i64 { return quorum.published(t); }
export function trackerAckOf(t: i32, peerId: i32): i64 { return quorum.ackOf(t, peerId); }
export function trackerPeerCount(t: i32): i32 { return quorum.peerCount(t); }
/** Enters `term` (a new one forgets every ack); returns whether it changed. */
export function trackerSetTerm(t: i32, term: i64): bool { assert(quorum.isTracker(t)); return quorum.setTerm(t, term); }
export function trackerTerm(t: i32): i64 { return quorum.termOf(t); }
/** 0 = ok, -1 = too many peers, -2 = the reply's term is not the tracker's (refused, counted),
 *  -3 = sent at or before the last clock fault (refused, not recorded). */
export function trackerRecordAckInTerm(t: i32, peerId: i32, followerQuorum: i32, sentAtNs: i64, term: i64): i32 {
  assert(quorum.isTracker(t) && peerId >= 0 && followerQuorum >= 0);
  return quorum.recordAckInTerm(t, peerId, followerQuorum, sentAtNs, term);
}
export function trackerRefusedAcks(t: i32): i64 { return quorum.refusedAcks(t); }
/** The voter set changed: a new follower quorum forgets every ack and republishes at once.
 *  Returns whether the quorum changed. */
export function trackerSetQuorum(t: i32, followerQuorum: i32): bool {
  assert(quorum.isTracker(t) && followerQuorum >= 0 && followerQuorum <= quorum.MAX_PEERS);
  return quorum.setQuorum(t, followerQuorum);
}
/** The follower quorum the tracker was last given (-1: none yet). */
export function trackerQuorum(t: i32): i32 { assert(quorum.isTracker(t)); return quorum.quorumOf(t); }

// Decisions.
export function engineAckValid(isLeader: bool, ackNs: i64, nowNs: i64, leaseDurationNs: i64): bool {
  return decision.engineAckValid(isLeader, ackNs, nowNs, leaseDurationNs);
}
export function decideRead(slot: i32, nowNs: i64, hasCapability: bool, leaseDurationNs: i64, isLeader: bool, ackNs: i64): i32 {
  return decision.decideRead(slot, nowNs, hasCapability, leaseDurationNs, isLeader, ackNs);
}
/** decideRead with the guards (READ_* bits): suspect, own term, ack term, transfer re-arm. */
export function decideRead2(
  slot: i32, nowNs: i64, hasCapability: bool, leaseDurationNs: i64, isLeader: bool, ackNs: i64,
  guards: i32, currentTerm: i64, appliedTerm: i64, ackTerm: i64, rearmAfterNs: i64,
): i32 {
  return decision.decideRead2(slot, nowNs, hasCapability, leaseDurationNs, isLeader, ackNs, guards, currentTerm, appliedTerm, ackTerm, rearmAfterNs);
}

// Configuration.
export function configValidate(electionTimeoutNs: i64, tickNs: i64, safetyMarginNs: i64, driftPpmMax: i64, checkQuorum: bool): i32 {
  return config.validateConfig(electionTimeoutNs, tickNs, safetyMarginNs, driftPpmMax, checkQuorum);
}
export function configMinSafetyMarginNs(electionTimeoutNs: i64, driftPpmMax: i64, tickNs: i64): i64 {
  return config.minSafetyMarginNs(electionTimeoutNs, driftPpmMax, tickNs);
}
