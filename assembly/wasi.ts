// The WASI reactor (build/lease-core.wasi.wasm): the exported ABI of assembly/index.ts, for any
// WASI host, whose only clock is wasi_snapshot_preview1.clock_time_get(MONOTONIC). Documented in
// docs/abi.md ("Builds").
//
// Every export of index.ts is re-exported unchanged except `clockSample`, which reads the WASI
// clock itself instead of calling the lease_host.readClock import; index.ts's clockSample is then
// unreachable, so the compiler never emits that import (test/wasi.test.ts checks the imports).
// One export is added: `clockFillCell`, the cell fill a JS host needs to wrap the reactor.
// A host calls `_initialize` once (the WASI reactor convention: node:wasi's `initialize()`), then
// `init(leaseCapacity, trackerCapacity)`, as with the JS-clock build.

import { CLOCK_CELL, observeCell } from "./instant";
import { wasiReadClock } from "./wasi-host";

export {
  init,
  clockCell, clockObserve, clockObserveCell, clockPrimeCell, clockTimespecArea, clockTimespecsToCell,
  clockZeroReadings, clockRegressions, clockSuspends, clockSuspendedNs, clockLastInstant, clockFaults, clockLastFaultNs, clockOffsetBase, clockReportRegression, clockReportFault, clockWatch,
  leaseAlloc, leaseFree, leaseValid, leaseValidCell, leaseValidTimespecs, leaseReason, leaseExpiry, leaseGeneration,
  leaseExtend, leaseExtendFrom, leaseInvalidate, leaseValidRange, leaseCapacity,
  leaseCountValidAll, leaseCountValidAllCell,
  trackerAlloc, trackerFree, trackerRecordAck, trackerRecordSelfAck, trackerRemovePeer,
  trackerReset, trackerQuorumAck, trackerAckOf, trackerPeerCount,
  trackerSetTerm, trackerTerm, trackerRecordAckInTerm, trackerRefusedAcks, trackerSetQuorum, trackerQuorum,
  trackerJointQuorumAck, quorumNeed,
  engineAckValid, decideRead2,
  configValidate, configMinSafetyMarginNs, configSetFreezeBudgetNs, configFreezeBudgetNs, configTtlMarginNs,
  readerOpen, readerDecide, readerDecideFill, readerSampleNs, readerRunInts, readerRunValues, readerDecideRun, readerExtendAfterRead, readerExtendAfterCommit,
  readerNoteTransfer, readerSuspectNow, readerIsSuspect, readerTransferUsed, readerTransferPushed, readerBeginTransfer, readerEndTransfer,
  readerLeaderLost, readerLossError, readerClose, readerRearmAfterNs, readerLeaseDurationNs,
  REASON_VALID, REASON_EXPIRED, REASON_NOT_LEADER, REASON_CLOCK_UNKNOWN, REASON_TERM_MISMATCH,
  REASON_SUSPEND_DETECTED, REASON_SUSPECT, REASON_DISABLED, SERVE_LOCAL, BY_ENGINE,
  READ_SUSPECT, READ_OWN_TERM, READ_ACK_TERM,
  ANSWER_CAPABLE, ANSWER_LEADER, ANSWER_OWN_TERM, ANSWER_ACK_TERM, ANSWER_TRANSFER_KNOWN, ANSWER_TRANSFERRING, MAY_EXTEND, RUN_CAPACITY,
  CONFIG_OK, CONFIG_ELECTION_TIMEOUT_NOT_POSITIVE, CONFIG_TICK_NOT_POSITIVE, CONFIG_DRIFT_NEGATIVE,
  CONFIG_MARGIN_TOO_SMALL, CONFIG_DURATION_NOT_POSITIVE, CONFIG_CHECK_QUORUM_REQUIRED, CONFIG_DRIFT_TOO_LARGE, DRIFT_PPM_LIMIT,
  SUSPEND_TOLERANCE_NS, MAX_PEERS, ACK_OK, ACK_TOO_MANY_PEERS, ACK_TERM_MISMATCH, ACK_BEFORE_FAULT,
} from "./index";

/** One reading of WASI MONOTONIC into the clock cell (sleep offset 0), through the clock rules:
 *  the lease instant, or 0 when refused. */
export function clockSample(): i64 {
  wasiReadClock(CLOCK_CELL);
  return observeCell();
}

/** WASI reactor only: writes one WASI MONOTONIC reading into the clock cell (sleep offset 0)
 *  without observing it: the `fill` of a JS host that drives the cell (host/core/core.ts LeaseCore),
 *  so each reading goes through the clock rules exactly once (a second observe of a failed
 *  reading would count it twice). */
export function clockFillCell(): void {
  wasiReadClock(CLOCK_CELL);
}
