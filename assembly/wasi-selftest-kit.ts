// What the generated conformance cases (wasi-vectors.generated.ts) run on inside wasm: the
// scripted clock, fresh leases and trackers per case, the step checks and the failure lines.
// The wasm twin of host/cli/vectors.ts's runner; the cases call the exported ABI (index.ts), the
// same functions every host calls, so the self-test checks what a WASI host gets.

import * as core from "./index";
import { CLOCK_CELL, resetClockForTest } from "./instant";
import { fd_write } from "./wasi-host";

/** "t" of the vectors: 1000 s, so every instant in a case is non-zero (host/cli/vectors.ts T_NS). */
export const T_NS: i64 = 1_000_000_000_000;
const FD_STDOUT: u32 = 1;

// --- output ----------------------------------------------------------------------------------

const iovec: usize = memory.data(12, 4); // [ptr u32, len u32] + nwritten u32

/** Writes `line` and a newline to stdout (UTF-8). Retries short writes, as fd_write allows. */
export function printLine(line: string): void {
  const bytes = String.UTF8.encode(line + "\n");
  let ptr = changetype<usize>(bytes);
  let left = <u32>bytes.byteLength;
  while (left > 0) {
    store<u32>(iovec, <u32>ptr);
    store<u32>(iovec, left, 4);
    if (fd_write(FD_STDOUT, iovec, 1, iovec + 8) != 0) return; // stdout gone: the exit code still tells
    const written = load<u32>(iovec, 8);
    if (written == 0) return;
    ptr += written;
    left -= written;
  }
}

// --- one case --------------------------------------------------------------------------------

let caseName: string = "";
let caseTrackers: StaticArray<i32> = new StaticArray<i32>(0);
let caseTrackerCount: i32 = 0;
let readingNs: i64 = T_NS;
let sleepOffsetNs: i64 = 0;

/** A fresh clock (as a new core would have) and a scripted reading of t, offset 0. Leases are
 *  never reused across cases: a freed slot keeps its bumped generation, and the vectors expect
 *  generation 0 for a new lease, so the table is sized for every lease of every case. */
export function beginCase(name: string, maxTrackers: i32): void {
  caseName = name;
  resetClockForTest();
  readingNs = T_NS;
  sleepOffsetNs = 0;
  caseTrackers = new StaticArray<i32>(maxTrackers);
  caseTrackerCount = 0;
}

/** Returns the case's trackers to the pool (allocTracker clears a tracker when it hands it out). */
export function endCase(): void {
  for (let i = 0; i < caseTrackerCount; i++) core.trackerFree(caseTrackers[i]);
  caseTrackerCount = 0;
}

export function newLease(): i32 {
  const slot = core.leaseAlloc();
  assert(slot >= 0, "self-test lease table too small");
  return slot;
}

export function newTracker(): i32 {
  const t = core.trackerAlloc();
  assert(t >= 0 && caseTrackerCount < caseTrackers.length, "self-test tracker pool too small");
  caseTrackers[caseTrackerCount++] = t;
  return t;
}

// --- the scripted clock: the host side of the clock cell -------------------------------------

function fillCell(): void {
  store<i64>(CLOCK_CELL, readingNs);
  store<i64>(CLOCK_CELL, sleepOffsetNs, 8);
}

/** `tick`: the next reading (and sleep offset, when the step gives one), then core.now(). */
export function tick(nextReadingNs: i64, setsOffset: bool, nextSleepOffsetNs: i64): i64 {
  readingNs = nextReadingNs;
  if (setsOffset) sleepOffsetNs = nextSleepOffsetNs;
  return scriptedNow();
}

/** LeaseCore.now(): fill the cell, then the clock rules. */
export function scriptedNow(): i64 {
  fillCell();
  return core.clockObserveCell();
}

/** Lease.valid() with no argument: fill the cell, then leaseValidCell. */
export function validOnCell(slot: i32): bool {
  fillCell();
  return core.leaseValidCell(slot);
}

// --- checks: each reports the first mismatch of a case and stops it, as host/cli/vectors.ts does --

function fail(step: i32, message: string): bool {
  printLine("FAIL " + caseName + ": step " + step.toString() + ": " + message);
  return false;
}

export function sameI64(step: i32, op: string, actual: i64, expected: i64): bool {
  return actual == expected || fail(step, op + ": expected " + expected.toString() + ", got " + actual.toString());
}

export function sameI32(step: i32, op: string, actual: i32, expected: i32): bool {
  return actual == expected || fail(step, op + ": expected " + expected.toString() + ", got " + actual.toString());
}

export function sameBool(step: i32, op: string, actual: bool, expected: bool): bool {
  return actual == expected || fail(step, op + ": expected " + expected.toString() + ", got " + actual.toString());
}

/** A config step: `validateConfig`'s code, and for CONFIG_OK the duration the host derives
 *  (electionTimeoutNs - safetyMarginNs, host/core/core.ts leaseDurationFor). */
export function sameConfig(step: i32, code: i32, expectedCode: i32, durationNs: i64, expectedDurationNs: i64): bool {
  if (code != expectedCode) return fail(step, "config: expected code " + expectedCode.toString() + ", got " + code.toString());
  return code != 0 || durationNs == expectedDurationNs ||
    fail(step, "config: expected " + expectedDurationNs.toString() + ", got " + durationNs.toString());
}

// --- readers: what host/core/reader.ts does around the core's reader exports (docs/abi.md) --------

/** A reader on a fresh lease (LeaseCore.createLeaseReader). */
export function newReader(): i32 {
  const slot = newLease();
  core.readerOpen(slot);
  return slot;
}

/** LeaseReader.leaseRead() against an engine answering `answers` and the values, on the scripted
 *  clock: one fill, readerDecideFill; on a miss the linearizable read succeeds at once and the
 *  extend follows (the engine still answers the same). Returns the outcome. */
export function read(slot: i32, answers: i32, durationNs: i64, ackNs: i64, currentTerm: i64, appliedTerm: i64, ackTerm: i64): i32 {
  fillCell();
  const outcome = core.readerDecideFill(slot, 0, answers, durationNs, ackNs, currentTerm, appliedTerm, ackTerm);
  if ((outcome & core.SERVE_LOCAL) == 0) {
    const sampleNs = core.readerSampleNs();
    const generation = core.leaseGeneration(slot);
    core.readerExtendAfterRead(slot, outcome, (answers & core.ANSWER_LEADER) != 0, sampleNs, durationNs, generation);
  }
  return outcome;
}

/** LeaseReader.dispatch(commit) for a leader: the engine's answers, then the sample; the
 *  transfer state moves on them (suspect at the start is its answer), then the generation; the
 *  commit (optionally beginning a transfer inside it); the answers after it noted with no
 *  reading; then the extend on `answersNow`. */
export function dispatch(slot: i32, answersStart: i32, answersNow: i32, committed: bool, local: bool, durationNs: i64, beginTransferDuring: bool): void {
  const sampleNs = scriptedNow();
  const suspectAtStart = core.readerNoteTransfer(slot, sampleNs, answersStart);
  const generation = core.leaseGeneration(slot);
  if (beginTransferDuring) core.readerBeginTransfer(slot);
  core.readerNoteTransfer(slot, 0, answersNow);
  core.readerExtendAfterCommit(slot, answersNow, suspectAtStart, committed, local, sampleNs, durationNs, generation);
}

/** LeaseReader.endTransfer(): the end is a fresh sample, taken only if a transfer was pushed. */
export function endTransfer(slot: i32): void {
  if (core.readerTransferPushed(slot)) core.readerEndTransfer(slot, scriptedNow());
}

/** The engine's leader-loss callback. */
export function leaderLost(slot: i32): void {
  core.readerLeaderLost(slot, core.readerTransferPushed(slot) ? scriptedNow() : 0);
}
