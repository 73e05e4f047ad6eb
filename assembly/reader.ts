// The reader: the whole lease-read and dispatch decision of one reader (docs/contract.md §4,
// docs/guards.md), with the state it keeps between reads. A host asks its engine, passes the
// answers in, and acts on the outcome (host/core/reader.ts); it decides nothing itself.
//
// A reader lives in the slot of its own lease: reader state is one record per lease slot,
// reset by readerOpen when a host makes a reader on that lease. The record is
//   [rearmAfterNs: i64, flags: i32, pad: i32]
// with the flags below. Every engine answer arrives as one bit set (ANSWER_*) plus the values
// (duration, ack instant, terms), so one wasm call takes a whole decision.
//
// Invariants, asserted where the state is set:
//   R1. (suspect) from beginTransfer, or from a sample at which the engine reports a transfer,
//       until the transfer ends AND a sample has been taken after the end, every decision is
//       REASON_SUSPECT (or an earlier reason) and no decision carries MAY_EXTEND; no commit
//       that began or ended suspect extends (TiKV #8034, openraft #1749, etcd-raft #99).
//   R2. (re-arm) rearmAfterNs never decreases; it is the sample at which the last transfer
//       ended. An engine ack serves only when later than max(rearmAfterNs, faultFloor()): a
//       proof taken before the transfer ended, or before the last clock fault (fault.ts,
//       contract §1.4), never proves a lease after it.
//   R3. (closed) a closed reader never extends its lease again, not even from an operation in
//       flight when it closed; closing invalidates.
//   R4. every transition into or out of a transfer, every leader loss, invalidates the lease:
//       a read or commit begun before it carries the old generation and cannot extend.
//   R5. the lease duration a reader uses is the engine's less the clock's frozen-clock budget
//       (docs/edge-clocks.md); at or below the budget, lease reads are disabled.

import { extendFrom, decideRead2, READ_SUSPECT, READ_OWN_TERM, READ_ACK_TERM, REASON_DISABLED, SERVE_LOCAL } from "./decision";
import { invalidate, isLeaseSlot, leaseCapacity } from "./lease";
import { faultFloor } from "./fault";

// Engine answers (the `answers` argument). A term bit is set only with the capability.
/** The engine has the lease capability (leaseDurationNs, lastQuorumAck, onLeaderLoss). */
export const ANSWER_CAPABLE: i32 = 0x1;
/** The engine says it is the leader (state() === "leader"). */
export const ANSWER_LEADER: i32 = 0x2;
/** The engine reports currentTerm and appliedTerm: the own-term guard applies. */
export const ANSWER_OWN_TERM: i32 = 0x4;
/** The engine reports currentTerm and quorumAckTerm: the ack-term guard applies. */
export const ANSWER_ACK_TERM: i32 = 0x8;
/** The engine reports transferInProgress(). */
export const ANSWER_TRANSFER_KNOWN: i32 = 0x10;
/** ...and it answered true. */
export const ANSWER_TRANSFERRING: i32 = 0x20;

/** Outcome flag of readerDecide: a linearizable read started on this decision may extend the
 *  lease afterwards (leader, lease reads enabled, not suspect: R1). */
export const MAY_EXTEND: i32 = 0x400;

const F_TRANSFER: i32 = 0x1; // beginTransfer pushed, endTransfer not yet
const F_ENGINE_TRANSFER: i32 = 0x2; // the engine reported a transfer at the last sample
const F_REARM_AT_NEXT_SAMPLE: i32 = 0x4; // a transfer ended with no reading: take the end at the next real sample
const F_TRANSFER_USED: i32 = 0x8; // beginTransfer was called at least once (the transfer guard is on)
const F_CLOSED: i32 = 0x10; // R3
const F_OPEN: i32 = 0x20; // readerOpen was called on this slot
const SUSPECT_FLAGS: i32 = F_TRANSFER | F_ENGINE_TRANSFER | F_REARM_AT_NEXT_SAMPLE;

const RECORD_BYTES: usize = 16;
let recordsPtr: usize = 0;
let freezeBudgetNs: i64 = 0;

// The run area: up to RUN_CAPACITY decisions taken on one sample by one call (decideRun), for a
// host deciding a batch of readers (host/core/sharded-reader.ts localReadGroups): entry i is
//   ints   [slot: i32, answers: i32 in / outcome: i32 out]   at runIntsPtr + 8 i
//   values [engineDurationNs, ackNs, currentTerm, appliedTerm, ackTerm: i64]   at runValuesPtr + 40 i
// Allocated once by initReaders (the memory never grows afterwards, so the host's views stay
// attached). The host fills it and calls decideRun with no host code in between: a re-entrant
// batch never sees another one's entries.
/** Entries decided by one decideRun call. */
export const RUN_CAPACITY: i32 = 256;
const RUN_VALUES: i32 = 5;
let runIntsPtr: usize = 0;
let runValuesPtr: usize = 0;

export function initReaders(capacity: i32): void {
  assert(recordsPtr == 0 && capacity > 0);
  recordsPtr = heap.alloc(<usize>capacity * RECORD_BYTES);
  memory.fill(recordsPtr, 0, <usize>capacity * RECORD_BYTES);
  runIntsPtr = heap.alloc(<usize>RUN_CAPACITY * 8);
  runValuesPtr = heap.alloc(<usize>(RUN_CAPACITY * RUN_VALUES) * 8);
}

export function runInts(): usize {
  return runIntsPtr;
}

export function runValues(): usize {
  return runValuesPtr;
}

@inline function recordAt(slot: i32): usize {
  return recordsPtr + <usize>slot * RECORD_BYTES;
}

@inline function flagsOf(slot: i32): i32 {
  return load<i32>(recordAt(slot), 8);
}

@inline function setFlags(slot: i32, flags: i32): void {
  store<i32>(recordAt(slot), flags, 8);
}

/** Whether `slot` holds an open reader (the host validates before calling: this only asserts). */
export function isReader(slot: i32): bool {
  return isOpenReader(slot);
}

// Inlined into decideRun's loop: a wasm call costs as much as the whole check here (measured,
// BENCHMARKS.md "Sharded"), and the loop runs once per group.
@inline function isOpenReader(slot: i32): bool {
  return isLeaseSlot(slot) && slot < leaseCapacity() && (flagsOf(slot) & F_OPEN) != 0;
}

/** Makes the lease in `slot` a reader's: no transfer, nothing to re-arm, open. */
export function open(slot: i32): void {
  assert(isLeaseSlot(slot));
  store<i64>(recordAt(slot), 0);
  setFlags(slot, F_OPEN);
}

/** The lease in `slot` was freed: its reader record goes with it (not open, no transfer, no
 *  re-arm), so a slot handed out again by leaseAlloc is a plain lease on which every reader
 *  export traps until readerOpen, as docs/abi.md says, never a reader with its previous
 *  owner's transfer, re-arm instant or closed flag (attack reader-wasm-freed-slot). */
export function forget(slot: i32): void {
  assert(isLeaseSlot(slot));
  store<i64>(recordAt(slot), 0);
  setFlags(slot, 0);
  assert(!isReader(slot));
}

/** The frozen-clock budget every reader takes off the engine's lease duration (R5). Set once by
 *  a host whose clock may freeze (workerd); 0 otherwise. */
export function setFreezeBudgetNs(budgetNs: i64): void {
  assert(budgetNs >= 0);
  freezeBudgetNs = budgetNs;
}

export function freezeBudget(): i64 {
  return freezeBudgetNs;
}

/** The lease duration a reader uses for the engine's `engineDurationNs` (R5): the engine's,
 *  less the budget; 0 (disabled) at or below it. */
@inline export function leaseDurationFor(engineDurationNs: i64): i64 {
  if (engineDurationNs <= freezeBudgetNs) return 0;
  return engineDurationNs - freezeBudgetNs;
}

/** R2: the transfer ended at `nowNs`; with no reading (0), at the next real sample. */
function markTransferEnd(slot: i32, nowNs: i64): void {
  const p = recordAt(slot);
  if (nowNs == 0) {
    setFlags(slot, flagsOf(slot) | F_REARM_AT_NEXT_SAMPLE);
  } else if (nowNs > load<i64>(p)) {
    store<i64>(p, nowNs);
  }
  assert(load<i64>(p) >= nowNs || nowNs == 0); // R2: never decreases, covers this end
}

/** A transfer starts (pushed by the host, before TimeoutNow can leave): suspect, invalidated (R1, R4). */
export function beginTransfer(slot: i32): void {
  const flags = flagsOf(slot);
  setFlags(slot, flags | F_TRANSFER_USED);
  if (flags & F_TRANSFER) return;
  setFlags(slot, flags | F_TRANSFER_USED | F_TRANSFER);
  invalidate(slot);
}

/** The pushed transfer ended at `nowNs`: invalidated again, re-armed only by a later proof
 *  (R2, R4). Returns whether a transfer was in progress. */
export function endTransfer(slot: i32, nowNs: i64): bool {
  const flags = flagsOf(slot);
  if ((flags & F_TRANSFER) == 0) return false;
  setFlags(slot, flags & ~F_TRANSFER);
  invalidate(slot);
  markTransferEnd(slot, nowNs);
  return true;
}

/** The engine lost leadership at `nowNs`: invalidate (R4); a pushed transfer that ended in a
 *  step-down is over. Nothing on a closed reader. */
export function leaderLost(slot: i32, nowNs: i64): void {
  if (flagsOf(slot) & F_CLOSED) return;
  invalidate(slot);
  endTransfer(slot, nowNs);
}

/** Leadership loss reported by an engine error (a read or commit failed with one): invalidate,
 *  unless closed. */
export function lossError(slot: i32): void {
  if ((flagsOf(slot) & F_CLOSED) == 0) invalidate(slot);
}

/** R3: closed for good; the lease is invalidated. */
export function close(slot: i32): void {
  setFlags(slot, flagsOf(slot) | F_CLOSED);
  invalidate(slot);
}

/** Whether a pushed transfer (beginTransfer) is in progress. */
export function transferPushed(slot: i32): bool {
  return (flagsOf(slot) & F_TRANSFER) != 0;
}

export function isClosed(slot: i32): bool {
  return (flagsOf(slot) & F_CLOSED) != 0;
}

/** Suspect (R1) at this moment, with the engine's own transfer answer, without changing state:
 *  what dispatch checks before and after its commit. */
export function suspectNow(slot: i32, answers: i32): bool {
  if (flagsOf(slot) & (F_TRANSFER | F_REARM_AT_NEXT_SAMPLE)) return true;
  return (answers & ANSWER_TRANSFERRING) != 0;
}

/** Whether the transfer guard is on: the engine reports transfers, or beginTransfer was used. */
export function transferGuardUsed(slot: i32): bool {
  return (flagsOf(slot) & F_TRANSFER_USED) != 0;
}

/** Whether the last decision left the reader suspect (a pushed transfer, the engine's, or an
 *  end not yet sampled): for gauges. */
export function isSuspect(slot: i32): bool {
  return (flagsOf(slot) & SUSPECT_FLAGS) != 0;
}

export function rearmAfter(slot: i32): i64 {
  return load<i64>(recordAt(slot));
}

/**
 * The transfer state moves on the engine's answers at the sample `nowNs` (R1, R2, R4): the
 * engine's transfer started (invalidate) or ended (invalidate, re-arm at this sample), and an
 * end pushed with no reading is taken at this sample. Every sample at which a host asked the
 * engine goes through here, a read's (decide) and a commit's (dispatch, before and after the
 * commit): a transfer seen only by a commit must re-arm when it ends like one a read saw
 * (attack reader-wasm-dispatch-transfer). The host asks the engine BEFORE taking `nowNs`, so
 * an end is never dated before the engine reported it. Returns whether the reader is suspect
 * after the move. Nothing without ANSWER_CAPABLE (no lease to guard).
 */
@inline export function noteTransfer(slot: i32, nowNs: i64, answers: i32): bool {
  if ((answers & ANSWER_CAPABLE) == 0) return false;
  const flags = flagsOf(slot);
  // Inlined for the common case (the lease-read hit): no transfer answer and no end waiting
  // for a sample, so nothing moves; only then is the state left as it is without a call.
  if ((answers & ANSWER_TRANSFER_KNOWN) == 0 && (flags & F_REARM_AT_NEXT_SAMPLE) == 0) return (flags & SUSPECT_FLAGS) != 0;
  return moveTransfer(slot, nowNs, answers);
}

/** noteTransfer's moves: the engine's transfer started or ended, or an end waits for a sample. */
function moveTransfer(slot: i32, nowNs: i64, answers: i32): bool {
  let flags = flagsOf(slot);
  if (answers & ANSWER_TRANSFER_KNOWN) {
    const transferring = (answers & ANSWER_TRANSFERRING) != 0;
    const was = (flags & F_ENGINE_TRANSFER) != 0;
    if (transferring && !was) {
      invalidate(slot); // R4
      flags |= F_ENGINE_TRANSFER;
      setFlags(slot, flags);
    } else if (!transferring && was) {
      invalidate(slot); // R4
      flags &= ~F_ENGINE_TRANSFER;
      setFlags(slot, flags);
      markTransferEnd(slot, nowNs);
      flags = flagsOf(slot);
    }
  }
  if ((flags & F_REARM_AT_NEXT_SAMPLE) != 0 && nowNs != 0) {
    flags &= ~F_REARM_AT_NEXT_SAMPLE;
    setFlags(slot, flags);
    markTransferEnd(slot, nowNs);
  }
  return (flags & SUSPECT_FLAGS) != 0;
}

/**
 * The read decision on one sample, contract §4 with every guard (docs/guards.md), from the
 * engine's answers: first the transfer state moves (the engine's transfer started or ended at
 * this sample, a pending end is taken at this sample), then decideRead2 with the suspect bit,
 * the term bits, and the ack floor max(transfer end, last clock fault) (R2). Returns the
 * outcome (reason | SERVE_LOCAL | BY_ENGINE) with MAY_EXTEND when a linearizable read on this
 * decision may extend the lease. `engineDurationNs` is the engine's; R5 applies here.
 */
export function decide(
  slot: i32,
  nowNs: i64,
  answers: i32,
  engineDurationNs: i64,
  ackNs: i64,
  currentTerm: i64,
  appliedTerm: i64,
  ackTerm: i64,
): i32 {
  return decideInline(slot, nowNs, answers, engineDurationNs, ackNs, currentTerm, appliedTerm, ackTerm);
}

// decide's body, inlined into decideRun's loop (a call per group costs more than the decision's
// hit path; BENCHMARKS.md "Sharded") and once into decide: one decision, two call sites.
@inline function decideInline(
  slot: i32,
  nowNs: i64,
  answers: i32,
  engineDurationNs: i64,
  ackNs: i64,
  currentTerm: i64,
  appliedTerm: i64,
  ackTerm: i64,
): i32 {
  const capable = (answers & ANSWER_CAPABLE) != 0;
  const isLeader = (answers & ANSWER_LEADER) != 0;
  let guards: i32 = 0;
  let durationNs: i64 = 0;
  if (capable) {
    durationNs = leaseDurationFor(engineDurationNs);
    if (answers & ANSWER_OWN_TERM) guards |= READ_OWN_TERM;
    if (answers & ANSWER_ACK_TERM) guards |= READ_ACK_TERM;
    if (noteTransfer(slot, nowNs, answers)) guards |= READ_SUSPECT;
  }
  // R2: the ack must be later than the end of the last transfer AND the last clock fault.
  const rearmNs = load<i64>(recordAt(slot));
  const floorNs = faultFloor();
  const afterNs = floorNs > rearmNs ? floorNs : rearmNs;
  let outcome = decideRead2(slot, nowNs, capable, durationNs, isLeader, ackNs, guards, currentTerm, appliedTerm, ackTerm, afterNs);
  if (isLeader && capable && durationNs > 0 && (guards & READ_SUSPECT) == 0) outcome |= MAY_EXTEND;
  assert((outcome & MAY_EXTEND) == 0 || (outcome & 0xff) != REASON_DISABLED); // R1/R5
  return outcome;
}

/** After a linearizable read begun on `outcome` at `sampleNs` under `generation`: extends from
 *  the sample iff the decision allowed it (MAY_EXTEND), the engine is still leader, and the
 *  reader is not closed (R1, R3); extendFrom applies the generation guard and the fault floor. */
export function extendAfterRead(slot: i32, outcome: i32, stillLeader: bool, sampleNs: i64, engineDurationNs: i64, generation: i64): bool {
  if ((outcome & MAY_EXTEND) == 0 || !stillLeader || isClosed(slot)) return false;
  return extendFrom(slot, sampleNs, leaseDurationFor(engineDurationNs), generation);
}

/** After a commit begun at `sampleNs` under `generation`: extends iff the engine has the lease
 *  capability, the commit is real (`committed`: index > 0) and local (not forwarded), the reader
 *  was not suspect when the commit began (`suspectAtStart`) and is not now (R1, with the
 *  engine's transfer answer in `answersNow`), the engine is still leader, and the reader is not
 *  closed (R3). */
export function extendAfterCommit(
  slot: i32, answersNow: i32, suspectAtStart: bool, committed: bool, local: bool,
  sampleNs: i64, engineDurationNs: i64, generation: i64,
): bool {
  if ((answersNow & ANSWER_CAPABLE) == 0 || (answersNow & ANSWER_LEADER) == 0) return false;
  if (!committed || !local || suspectAtStart || suspectNow(slot, answersNow) || isClosed(slot)) return false;
  return extendFrom(slot, sampleNs, leaseDurationFor(engineDurationNs), generation);
}

/**
 * decide() for entries [0, count) of the run area, all on the one sample `nowNs`: each entry's
 * outcome replaces its answers, exactly what decide() returns for that reader and those answers
 * (the same function: every guard, R1-R5, the transfer state and the fault floor). An entry
 * whose slot is negative was withdrawn by the host and is skipped (its word is left as the host
 * wrote it). Returns how many outcomes carry SERVE_LOCAL. The host asks every engine BEFORE
 * taking `nowNs` (as for decide).
 */
export function decideRun(count: i32, nowNs: i64): i32 {
  assert(count >= 0 && count <= RUN_CAPACITY);
  let served: i32 = 0;
  for (let i: i32 = 0; i < count; i++) {
    const ints = runIntsPtr + (<usize>i << 3);
    const slot = load<i32>(ints);
    if (slot < 0) continue;
    assert(isOpenReader(slot));
    const values = runValuesPtr + <usize>(i * RUN_VALUES) * 8;
    const outcome = decideInline(slot, nowNs, load<i32>(ints, 4), load<i64>(values), load<i64>(values, 8), load<i64>(values, 16), load<i64>(values, 24), load<i64>(values, 32));
    store<i32>(ints, outcome, 4);
    if (outcome & SERVE_LOCAL) served++;
  }
  return served;
}
