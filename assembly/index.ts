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
import * as reader from "./reader";
import { hostReadClock } from "./host";

export {
  REASON_VALID, REASON_EXPIRED, REASON_NOT_LEADER, REASON_CLOCK_UNKNOWN, REASON_TERM_MISMATCH,
  REASON_SUSPEND_DETECTED, REASON_SUSPECT, REASON_DISABLED, SERVE_LOCAL, BY_ENGINE,
  READ_SUSPECT, READ_OWN_TERM, READ_ACK_TERM,
} from "./decision";
export {
  ANSWER_CAPABLE, ANSWER_LEADER, ANSWER_OWN_TERM, ANSWER_ACK_TERM, ANSWER_TRANSFER_KNOWN, ANSWER_TRANSFERRING,
  MAY_EXTEND, RUN_CAPACITY,
} from "./reader";
export {
  CONFIG_OK, CONFIG_ELECTION_TIMEOUT_NOT_POSITIVE, CONFIG_TICK_NOT_POSITIVE, CONFIG_DRIFT_NEGATIVE,
  CONFIG_MARGIN_TOO_SMALL, CONFIG_DURATION_NOT_POSITIVE, CONFIG_CHECK_QUORUM_REQUIRED, CONFIG_DRIFT_TOO_LARGE,
  DRIFT_PPM_LIMIT,
} from "./config";
export { SUSPEND_TOLERANCE_NS } from "./instant";
export { MAX_PEERS, ACK_OK, ACK_TOO_MANY_PEERS, ACK_TERM_MISMATCH, ACK_BEFORE_FAULT } from "./quorum";

/** Sizes the lease table and the tracker pool. Called once per instance, before anything else;
 *  the module never grows its memory afterwards, so views into it stay attached. */
export function init(leaseCapacity: i32, trackerCapacity: i32): void {
  lease.initLeases(leaseCapacity);
  reader.initReaders(leaseCapacity);
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
export function leaseFree(slot: i32): void { assert(lease.isLeaseSlot(slot)); lease.freeLease(slot); reader.forget(slot); }
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
/** The follower acks a voter set of `voters` needs: floor(n/2) when it holds the leader,
 *  floor(n/2) + 1 when it does not (quorum.ts Q7). */
export function quorumNeed(voters: i32, holdsLeader: bool): i32 { assert(voters >= 0); return quorum.need(voters, holdsLeader); }
/** The published instant of a joint configuration over two trackers, each set to its voter
 *  set's need by trackerSetQuorum (quorum.ts Q7). */
export function trackerJointQuorumAck(tIn: i32, tOut: i32): i64 {
  assert(quorum.isTracker(tIn) && quorum.isTracker(tOut) && tIn != tOut);
  return quorum.jointPublished(tIn, tOut);
}

// Decisions.
export function engineAckValid(isLeader: bool, ackNs: i64, nowNs: i64, leaseDurationNs: i64): bool {
  return decision.engineAckValid(isLeader, ackNs, nowNs, leaseDurationNs);
}
/** The bare read decision with the guards (READ_* bits) given: suspect, own term, ack term, and
 *  the ack floor `rearmAfterNs` taken as given. A host with a reader uses readerDecide, which
 *  keeps the transfer state and applies the last clock fault itself. */
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

/** The frozen-clock budget every reader takes off the engine's lease duration (reader.ts R5);
 *  a host whose clock may freeze sets it once, after init. */
export function configSetFreezeBudgetNs(budgetNs: i64): void { assert(budgetNs >= 0); reader.setFreezeBudgetNs(budgetNs); }
export function configFreezeBudgetNs(): i64 { return reader.freezeBudget(); }
/** The margin of a lease timed on another node's TTL (the etcd engine's, docs/etcd.md §3):
 *  electionTimeoutNs + ceil(2 * ttlNs * driftPpmMax / 1e6) + 1 ms; i64 max when out of range. */
export function configTtlMarginNs(electionTimeoutNs: i64, ttlNs: i64, driftPpmMax: i64): i64 {
  return config.ttlMarginNs(electionTimeoutNs, ttlNs, driftPpmMax);
}

// Readers (reader.ts): one per lease slot, the whole read and dispatch decision.
/** Makes the lease in `slot` a reader's (no transfer, nothing to re-arm, open). */
export function readerOpen(slot: i32): void { assert(lease.isLeaseSlot(slot)); reader.open(slot); }
/** The read decision on `nowNs` (reader.ts decide): outcome = reason | SERVE_LOCAL | BY_ENGINE | MAY_EXTEND. */
export function readerDecide(slot: i32, nowNs: i64, answers: i32, engineDurationNs: i64, ackNs: i64, currentTerm: i64, appliedTerm: i64, ackTerm: i64): i32 {
  assert(reader.isReader(slot));
  return reader.decide(slot, nowNs, answers, engineDurationNs, ackNs, currentTerm, appliedTerm, ackTerm);
}
let decideSampleNs: i64 = 0;
/** readerDecide on a fresh reading the host has just written (into the timespec area when
 *  `timespecs` is 1 or 3, else into the clock cell): one crossing per lease read. The sample
 *  is kept for readerSampleNs (a miss extends from it). */
export function readerDecideFill(slot: i32, timespecs: i32, answers: i32, engineDurationNs: i64, ackNs: i64, currentTerm: i64, appliedTerm: i64, ackTerm: i64): i32 {
  assert(reader.isReader(slot) && (timespecs == 0 || timespecs == 1 || timespecs == 3));
  if (timespecs != 0) clock.timespecsToCell(timespecs);
  const nowNs = clock.observeCell();
  decideSampleNs = nowNs;
  return reader.decide(slot, nowNs, answers, engineDurationNs, ackNs, currentTerm, appliedTerm, ackTerm);
}
/** Where the run area's i32 pairs [slot, answers/outcome] start (RUN_CAPACITY of them). */
export function readerRunInts(): usize { return reader.runInts(); }
/** Where the run area's i64 values [engineDurationNs, ackNs, currentTerm, appliedTerm, ackTerm] start. */
export function readerRunValues(): usize { return reader.runValues(); }
/** readerDecide for entries [0, count) of the run area on one sample `nowNs` (a batch of
 *  readers, one crossing): each outcome replaces its answers; returns how many serve locally. */
export function readerDecideRun(count: i32, nowNs: i64): i32 { return reader.decideRun(count, nowNs); }
/** The sample the last readerDecideFill decided on (0: no reading). */
export function readerSampleNs(): i64 { return decideSampleNs; }
/** After a linearizable read begun on `outcome` at `sampleNs` with `generation`: extends iff allowed (reader.ts). */
export function readerExtendAfterRead(slot: i32, outcome: i32, stillLeader: bool, sampleNs: i64, engineDurationNs: i64, generation: i64): bool {
  assert(reader.isReader(slot));
  return reader.extendAfterRead(slot, outcome, stillLeader, sampleNs, engineDurationNs, generation);
}
/** After a commit begun at `sampleNs` with `generation`: extends iff allowed (reader.ts). */
export function readerExtendAfterCommit(slot: i32, answersNow: i32, suspectAtStart: bool, committed: bool, local: bool, sampleNs: i64, engineDurationNs: i64, generation: i64): bool {
  assert(reader.isReader(slot));
  return reader.extendAfterCommit(slot, answersNow, suspectAtStart, committed, local, sampleNs, engineDurationNs, generation);
}
/** The transfer state moves on the engine's answers at `nowNs` (reader.ts noteTransfer); returns suspect after. Dispatch calls it before and after its commit. */
export function readerNoteTransfer(slot: i32, nowNs: i64, answers: i32): bool { assert(reader.isReader(slot)); return reader.noteTransfer(slot, nowNs, answers); }
/** Suspect right now, with the engine's transfer answer in `answers` (no state change). */
export function readerSuspectNow(slot: i32, answers: i32): bool { assert(reader.isReader(slot)); return reader.suspectNow(slot, answers); }
/** Suspect as of the last decision (a pushed transfer, the engine's, an end not yet sampled). */
export function readerIsSuspect(slot: i32): bool { assert(reader.isReader(slot)); return reader.isSuspect(slot); }
/** Whether beginTransfer was ever called on this reader. */
export function readerTransferUsed(slot: i32): bool { assert(reader.isReader(slot)); return reader.transferGuardUsed(slot); }
/** Whether a pushed transfer is in progress (a host samples the clock for its end only then). */
export function readerTransferPushed(slot: i32): bool { assert(reader.isReader(slot)); return reader.transferPushed(slot); }
export function readerBeginTransfer(slot: i32): void { assert(reader.isReader(slot)); reader.beginTransfer(slot); }
/** Returns whether a pushed transfer was in progress. */
export function readerEndTransfer(slot: i32, nowNs: i64): bool { assert(reader.isReader(slot)); return reader.endTransfer(slot, nowNs); }
export function readerLeaderLost(slot: i32, nowNs: i64): void { assert(reader.isReader(slot)); reader.leaderLost(slot, nowNs); }
/** A read or commit failed with a leadership-loss error: invalidate unless closed. */
export function readerLossError(slot: i32): void { assert(reader.isReader(slot)); reader.lossError(slot); }
export function readerClose(slot: i32): void { assert(reader.isReader(slot)); reader.close(slot); }
export function readerRearmAfterNs(slot: i32): i64 { assert(reader.isReader(slot)); return reader.rearmAfter(slot); }
/** The lease duration a reader uses for the engine's (less the frozen-clock budget; 0: disabled). */
export function readerLeaseDurationNs(engineDurationNs: i64): i64 { return reader.leaseDurationFor(engineDurationNs); }
