// Model-based test of the reader (assembly/reader.ts, docs/contract.md §4, docs/guards.md):
// random sequences of decisions with every engine answer, transfers pushed and polled, leader
// losses, leadership-loss errors, closes, clock faults, and both extend rules, through the raw
// reader exports of the wasm core, against a naive TypeScript model written from the contract
// (not from the AssemblyScript). Outcome, expiry, generation, suspect and re-arm instant are
// compared after every command. Replaces the old comparison of decideRead2-without-guards with
// decideRead, which was defined as that call and could not fail. Replay with FC_SEED=<seed>.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { ManualClock } from "./support/fakes.js";
import {
  ANSWER_ACK_TERM, ANSWER_CAPABLE, ANSWER_LEADER, ANSWER_OWN_TERM, ANSWER_TRANSFERRING, ANSWER_TRANSFER_KNOWN,
} from "../host/generated/constants.js";

const seed = process.env["FC_SEED"] === undefined ? undefined : Number(process.env["FC_SEED"]);
const params = { numRuns: 300, ...(seed === undefined ? {} : { seed }) };

// Written out here, not imported: the model must not share the constants it checks.
const R = { valid: 0, expired: 1, notLeader: 2, clockUnknown: 3, termMismatch: 4, suspect: 6, disabled: 7 };
const LOCAL = 0x100;
const ENGINE = 0x200;
const EXTEND = 0x400;
const I64_MAX = (1n << 63n) - 1n;

interface Answers {
  capable: boolean;
  leader: boolean;
  ownTerm: boolean;
  ackTerm: boolean;
  transferKnown: boolean;
  transferring: boolean;
  durationNs: bigint;
  ackNs: bigint;
  currentTerm: bigint;
  appliedTerm: bigint;
  ackTermValue: bigint;
}

function bits(a: Answers): number {
  return (a.capable ? ANSWER_CAPABLE : 0) | (a.leader ? ANSWER_LEADER : 0) | (a.ownTerm ? ANSWER_OWN_TERM : 0)
    | (a.ackTerm ? ANSWER_ACK_TERM : 0) | (a.transferKnown ? ANSWER_TRANSFER_KNOWN : 0) | (a.transferKnown && a.transferring ? ANSWER_TRANSFERRING : 0);
}

/** One reader, naively: the lease of contract §2, the transfer state and the rules of §4. */
class Model {
  expiry = 0n;
  generation = 0n;
  faultCause = false; // invalidated by a clock fault, not extended since (leaseReason: clock-unknown)
  pushed = false;
  engineTransfer = false;
  endPending = false;
  rearmNs = 0n;
  closed = false;
  floorNs = 0n;
  constructor(readonly budgetNs: bigint) {}

  invalidate(): void {
    this.expiry = 0n;
    this.generation++;
  }
  duration(engineNs: bigint): bigint {
    return engineNs > this.budgetNs ? engineNs - this.budgetNs : 0n;
  }
  markEnd(nowNs: bigint): void {
    if (nowNs === 0n) this.endPending = true;
    else if (nowNs > this.rearmNs) this.rearmNs = nowNs;
  }
  get suspect(): boolean {
    return this.pushed || this.engineTransfer || this.endPending;
  }
  decide(nowNs: bigint, a: Answers): number {
    let suspect = false;
    const durationNs = a.capable ? this.duration(a.durationNs) : 0n;
    if (a.capable) {
      if (a.transferKnown) {
        if (a.transferring && !this.engineTransfer) {
          this.invalidate();
          this.engineTransfer = true;
        } else if (!a.transferring && this.engineTransfer) {
          this.invalidate();
          this.engineTransfer = false;
          this.markEnd(nowNs);
        }
      }
      if (this.endPending && nowNs !== 0n) {
        this.endPending = false;
        this.markEnd(nowNs);
      }
      suspect = this.suspect;
    }
    const extendFlag = a.leader && a.capable && durationNs > 0n && !suspect ? EXTEND : 0;
    if (!a.capable || durationNs <= 0n) return R.disabled;
    if (nowNs === 0n) return R.clockUnknown | extendFlag;
    if (!a.leader) return R.notLeader;
    if (suspect) return R.suspect;
    if (a.ownTerm && a.appliedTerm !== a.currentTerm) return R.termMismatch | extendFlag;
    const ackInTerm = !a.ackTerm || a.ackTermValue === a.currentTerm;
    const floor = this.rearmNs > this.floorNs ? this.rearmNs : this.floorNs;
    const ack = a.ackNs;
    if (ackInTerm && ack > floor && ack !== 0n && ack <= nowNs && nowNs - ack < durationNs) return R.valid | LOCAL | ENGINE | extendFlag;
    if (this.expiry !== 0n && nowNs < this.expiry) return R.valid | LOCAL | extendFlag;
    if (this.faultCause) return R.clockUnknown | extendFlag;
    return (ackInTerm ? R.expired : R.termMismatch) | extendFlag;
  }
  extendFrom(sampleNs: bigint, durationNs: bigint, gen: bigint): boolean {
    if (sampleNs <= 0n || durationNs <= 0n || sampleNs <= this.floorNs || sampleNs > I64_MAX - durationNs) return false;
    const until = sampleNs + durationNs;
    if (gen !== this.generation || (this.expiry !== 0n && until <= this.expiry)) return false;
    this.expiry = until;
    this.faultCause = false;
    return true;
  }
  extendAfterRead(outcome: number, stillLeader: boolean, sampleNs: bigint, engineNs: bigint, gen: bigint): boolean {
    if ((outcome & EXTEND) === 0 || !stillLeader || this.closed) return false;
    return this.extendFrom(sampleNs, this.duration(engineNs), gen);
  }
  suspectNow(a: Answers): boolean {
    return this.pushed || this.endPending || (a.transferKnown && a.transferring);
  }
  extendAfterCommit(a: Answers, suspectAtStart: boolean, committed: boolean, local: boolean, sampleNs: bigint, engineNs: bigint, gen: bigint): boolean {
    if (!a.capable || !a.leader || !committed || !local || suspectAtStart || this.suspectNow(a) || this.closed) return false;
    return this.extendFrom(sampleNs, this.duration(engineNs), gen);
  }
  beginTransfer(): void {
    if (this.pushed) return;
    this.pushed = true;
    this.invalidate();
  }
  endTransfer(nowNs: bigint): boolean {
    if (!this.pushed) return false;
    this.pushed = false;
    this.invalidate();
    this.markEnd(nowNs);
    return true;
  }
  leaderLost(nowNs: bigint): void {
    if (this.closed) return;
    this.invalidate();
    this.endTransfer(nowNs);
  }
  fault(lastGoodNs: bigint): boolean {
    if (lastGoodNs <= this.floorNs) return false;
    this.floorNs = lastGoodNs;
    this.invalidate();
    this.faultCause = true;
    return true;
  }
}

const instant = fc.constantFrom(0n, 100n, 200n, 300n, 500n, 800n, 1_000n, 1_300n, 2_000n);
// "No reading" (0) often: a transfer ending without a reading, and decisions before the next one.
const sample = fc.oneof({ weight: 1, arbitrary: fc.constant(0n) }, { weight: 3, arbitrary: instant });
const answers: fc.Arbitrary<Answers> = fc.record({
  capable: fc.boolean(),
  leader: fc.boolean(),
  ownTerm: fc.boolean(),
  ackTerm: fc.boolean(),
  transferKnown: fc.boolean(),
  transferring: fc.boolean(),
  durationNs: fc.constantFrom(0n, 40n, 300n, 1_000n),
  ackNs: instant,
  currentTerm: fc.constantFrom(1n, 2n),
  appliedTerm: fc.constantFrom(1n, 2n),
  ackTermValue: fc.constantFrom(1n, 2n),
});
// Weighted so that a run spends most commands on a reader that is open and a lease that can be
// extended: a close ends all extends, so it is rare.
const command = fc.oneof(
  { weight: 30, arbitrary: fc.record({ op: fc.constant("decide" as const), now: sample, a: answers }) },
  { weight: 15, arbitrary: fc.record({ op: fc.constant("extendAfterRead" as const), stillLeader: fc.boolean(), stale: fc.boolean() }) },
  { weight: 15, arbitrary: fc.record({ op: fc.constant("commit" as const), now: instant, start: answers, end: answers, committed: fc.boolean(), local: fc.boolean(), durationNs: fc.constantFrom(0n, 300n, 1_000n) }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant("beginTransfer" as const) }) },
  { weight: 8, arbitrary: fc.record({ op: fc.constant("endTransfer" as const), now: sample }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("leaderLost" as const), now: sample }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("lossError" as const) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("fault" as const), lastGood: instant }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("close" as const) }) },
);

describe("model-based: the core's reader against a naive model of contract §4", () => {
  test("decisions, transfers, leader losses, faults and both extend rules agree, command by command", async () => {
    let commands = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(0n, 30n), fc.array(command, { minLength: 40, maxLength: 100 }), async (budgetNs, cmds) => {
        const core = await createLeaseCore({ clock: new ManualClock() });
        const ex = core.exports;
        ex.configSetFreezeBudgetNs(budgetNs);
        const slot = ex.leaseAlloc();
        ex.readerOpen(slot);
        const m = new Model(budgetNs);
        // The last decision, as a host keeps it for the extend after its linearizable read.
        let last: { outcome: number; now: bigint; gen: bigint; durationNs: bigint } | undefined;
        for (const c of cmds) {
          commands++;
          switch (c.op) {
            case "decide": {
              const a = c.a;
              const got = ex.readerDecide(slot, c.now, bits(a), a.durationNs, a.ackNs, a.currentTerm, a.appliedTerm, a.ackTermValue);
              expect(got, JSON.stringify(c, (_k, v) => (typeof v === "bigint" ? `${v}n` : v))).toBe(m.decide(c.now, a));
              last = { outcome: got, now: c.now, gen: ex.leaseGeneration(slot), durationNs: a.durationNs };
              break;
            }
            case "extendAfterRead": {
              if (last === undefined) break;
              const gen = c.stale ? last.gen - 1n : last.gen;
              if (gen < 0n) break;
              const got = ex.readerExtendAfterRead(slot, last.outcome, c.stillLeader ? 1 : 0, last.now, last.durationNs, gen) !== 0;
              expect(got).toBe(m.extendAfterRead(last.outcome, c.stillLeader, last.now, last.durationNs, gen));
              break;
            }
            case "commit": {
              const gen = ex.leaseGeneration(slot);
              const atStart = ex.readerSuspectNow(slot, bits(c.start)) !== 0;
              expect(atStart).toBe(m.suspectNow(c.start));
              const got = ex.readerExtendAfterCommit(slot, bits(c.end), atStart ? 1 : 0, c.committed ? 1 : 0, c.local ? 1 : 0, c.now, c.durationNs, gen) !== 0;
              expect(got).toBe(m.extendAfterCommit(c.end, atStart, c.committed, c.local, c.now, c.durationNs, gen));
              break;
            }
            case "beginTransfer":
              ex.readerBeginTransfer(slot);
              m.beginTransfer();
              break;
            case "endTransfer":
              expect(ex.readerEndTransfer(slot, c.now) !== 0).toBe(m.endTransfer(c.now));
              break;
            case "leaderLost":
              ex.readerLeaderLost(slot, c.now);
              m.leaderLost(c.now);
              break;
            case "lossError":
              ex.readerLossError(slot);
              if (!m.closed) m.invalidate();
              break;
            case "fault":
              expect(ex.clockReportFault(c.lastGood) !== 0).toBe(m.fault(c.lastGood));
              break;
            case "close":
              ex.readerClose(slot);
              m.closed = true;
              m.invalidate();
              break;
          }
          expect(ex.leaseExpiry(slot), "expiry").toBe(m.expiry);
          expect(ex.leaseGeneration(slot), "generation").toBe(m.generation);
          expect(ex.readerIsSuspect(slot) !== 0, "suspect").toBe(m.suspect);
          expect(ex.readerRearmAfterNs(slot), "re-arm instant").toBe(m.rearmNs);
          expect(ex.readerTransferPushed(slot) !== 0, "pushed").toBe(m.pushed);
        }
      }),
      params,
    );
    expect(commands).toBeGreaterThanOrEqual(10_000);
  }, 120_000);
});
