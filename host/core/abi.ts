/**
 * The wasm ABI seen from TypeScript: the exports of `lease-core.wasm` (assembly/index.ts) and
 * the one seam every runtime host uses, `instantiateCore(module, readClock)`. Mirrors
 * docs/abi.md; test/abi.test.ts checks the two agree.
 * @module
 */
import { CoreInvariantError } from "./errors.js";
import { REASON_NAMES } from "../generated/constants.js";

/** Raw exports of the module. i64 is bigint; bool comes back as 0/1. */
export interface CoreExports {
  memory: WebAssembly.Memory;
  init(leaseCapacity: number, trackerCapacity: number): void;
  clockCell(): number;
  clockTimespecArea(): number;
  clockTimespecsToCell(count: number): void;
  leaseValidTimespecs(slot: number, count: number): number;
  clockObserve(rawNs: bigint, sleepOffsetNs: bigint): bigint;
  clockObserveCell(): bigint;
  clockPrimeCell(): void;
  clockSample(): bigint;
  clockZeroReadings(): bigint;
  clockRegressions(): bigint;
  clockSuspends(): bigint;
  clockSuspendedNs(): bigint;
  clockLastInstant(): bigint;
  clockFaults(): number;
  clockLastFaultNs(): bigint;
  clockOffsetBase(): bigint;
  clockReportRegression(): void;
  clockReportFault(lastGoodNs: bigint): number;
  clockWatch(): void;
  leaseAlloc(): number;
  leaseFree(slot: number): void;
  leaseValid(slot: number, nowNs: bigint): number;
  leaseValidCell(slot: number): number;
  leaseReason(slot: number, nowNs: bigint): number;
  leaseExpiry(slot: number): bigint;
  leaseGeneration(slot: number): bigint;
  leaseExtend(slot: number, untilNs: bigint, expectedGen: bigint): number;
  leaseExtendFrom(slot: number, sampleNs: bigint, leaseDurationNs: bigint, generation: bigint): number;
  leaseInvalidate(slot: number): void;
  leaseValidRange(first: number, count: number, nowNs: bigint, outPtr: number): number;
  leaseCapacity(): number;
  leaseCountValidAll(nowNs: bigint): number;
  leaseCountValidAllCell(): number;
  trackerAlloc(): number;
  trackerFree(t: number): void;
  trackerRecordAck(t: number, peerId: number, followerQuorum: number, sentAtNs: bigint): number;
  trackerRecordSelfAck(t: number, sampleNs: bigint): void;
  trackerRemovePeer(t: number, peerId: number, followerQuorum: number): void;
  trackerReset(t: number): void;
  trackerQuorumAck(t: number): bigint;
  trackerAckOf(t: number, peerId: number): bigint;
  trackerPeerCount(t: number): number;
  trackerSetTerm(t: number, term: bigint): number;
  trackerTerm(t: number): bigint;
  trackerRecordAckInTerm(t: number, peerId: number, followerQuorum: number, sentAtNs: bigint, term: bigint): number;
  trackerRefusedAcks(t: number): bigint;
  trackerSetQuorum(t: number, followerQuorum: number): number;
  trackerQuorum(t: number): number;
  engineAckValid(isLeader: number, ackNs: bigint, nowNs: bigint, leaseDurationNs: bigint): number;
  decideRead2(
    slot: number, nowNs: bigint, hasCapability: number, leaseDurationNs: bigint, isLeader: number, ackNs: bigint,
    guards: number, currentTerm: bigint, appliedTerm: bigint, ackTerm: bigint, rearmAfterNs: bigint,
  ): number;
  configValidate(electionTimeoutNs: bigint, tickNs: bigint, safetyMarginNs: bigint, driftPpmMax: bigint, checkQuorum: number): number;
  configMinSafetyMarginNs(electionTimeoutNs: bigint, driftPpmMax: bigint, tickNs: bigint): bigint;
  configSetFreezeBudgetNs(budgetNs: bigint): void;
  configFreezeBudgetNs(): bigint;
  configTtlMarginNs(electionTimeoutNs: bigint, ttlNs: bigint, driftPpmMax: bigint): bigint;
  quorumNeed(voters: number, holdsLeader: number): number;
  trackerJointQuorumAck(tIn: number, tOut: number): bigint;
  readerOpen(slot: number): void;
  readerDecide(slot: number, nowNs: bigint, answers: number, engineDurationNs: bigint, ackNs: bigint, currentTerm: bigint, appliedTerm: bigint, ackTerm: bigint): number;
  readerDecideFill(slot: number, timespecs: number, answers: number, engineDurationNs: bigint, ackNs: bigint, currentTerm: bigint, appliedTerm: bigint, ackTerm: bigint): number;
  readerSampleNs(): bigint;
  readerRunInts(): number;
  readerRunValues(): number;
  readerDecideRun(count: number, nowNs: bigint): number;
  readerExtendAfterRead(slot: number, outcome: number, stillLeader: number, sampleNs: bigint, engineDurationNs: bigint, generation: bigint): number;
  readerExtendAfterCommit(
    slot: number, answersNow: number, suspectAtStart: number, committed: number, local: number,
    sampleNs: bigint, engineDurationNs: bigint, generation: bigint,
  ): number;
  readerNoteTransfer(slot: number, nowNs: bigint, answers: number): number;
  readerSuspectNow(slot: number, answers: number): number;
  readerIsSuspect(slot: number): number;
  readerTransferUsed(slot: number): number;
  readerTransferPushed(slot: number): number;
  readerBeginTransfer(slot: number): void;
  readerEndTransfer(slot: number, nowNs: bigint): number;
  readerLeaderLost(slot: number, nowNs: bigint): void;
  readerLossError(slot: number): void;
  readerClose(slot: number): void;
  readerRearmAfterNs(slot: number): bigint;
  readerLeaseDurationNs(engineDurationNs: bigint): bigint;
  /** Every constant is an exported global too (host/generated/constants.ts is made from them). */
  MAX_PEERS: WebAssembly.Global;
}

/** Reason names by code, as the core returns them (generated from assembly/decision.ts). */
export const REASONS = REASON_NAMES;
/** Why a read was served locally (`valid`) or not (every other reason). */
export type Reason = (typeof REASONS)[number];

/** The core's clock hooks (assembly/host.ts): what the instance learns about the clock, for
 *  tables outside its memory (host/core/shared.ts). Called synchronously from inside the core: they
 *  must not throw (a throw would leave the core's fault half-applied). */
export interface ClockHooks {
  /** The fault floor rose to `floorNs`: called before the core hands out anything after the fault. */
  fault(floorNs: bigint): void;
  /** An instant the core handed out, at most once per ms of clock progress, after `clockWatch()`. */
  instant(instantNs: bigint): void;
}

/**
 * Instantiates the core. `readClock(cellPtr)` backs the module's clock import: it must write
 * one reading into the clock cell ([i64 rawNs, i64 sleepOffsetNs] at cellPtr). Hosts that fill
 * the cell from JS before each decision pass a function that does the same. `hooks` back the
 * clockFault and clockInstant imports (default: nothing to tell).
 */
export async function instantiateCore(
  module: WebAssembly.Module,
  readClock: (cellPtr: number) => void,
  hooks: ClockHooks = { fault() {}, instant() {} },
): Promise<CoreExports> {
  let memory: WebAssembly.Memory | undefined;
  const imports = {
    env: {
      abort(messagePtr: number, filePtr: number, line: number, column: number): never {
        const text = (ptr: number) => (memory && ptr ? liftString(memory, ptr) : "?");
        throw new CoreInvariantError(`${text(messagePtr)} at ${text(filePtr)}:${line}:${column}`);
      },
    },
    lease_host: {
      readClock,
      clockFault: (floorNs: bigint) => hooks.fault(floorNs),
      clockInstant: (instantNs: bigint) => hooks.instant(instantNs),
    },
  };
  const instance = await WebAssembly.instantiate(module, imports);
  const exports = instance.exports as unknown as CoreExports;
  memory = exports.memory;
  return exports;
}

// AssemblyScript strings: UTF-16 code units, byte length in the u32 before the pointer.
function liftString(memory: WebAssembly.Memory, ptr: number): string {
  const byteLength = new Uint32Array(memory.buffer, ptr - 4, 1)[0]!;
  return String.fromCharCode(...new Uint16Array(memory.buffer, ptr, byteLength >>> 1));
}
