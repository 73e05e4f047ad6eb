// Model-based attack on the public reader (host/core/reader.ts over assembly/reader.ts), the layer
// test/model-reader.test.ts does not reach: that test drives the raw reader exports with
// clockReportFault and the host's inputs given. This one drives `core.createLeaseReader(engine)`
// exactly as a user does, on a clock with real faults (a step back, a suspend seen through the
// sleep offset, both through the cell fill the fast path uses), with the host's own ordering
// (every path asks the engine, then samples the clock), its leader-loss hook, its dispatch, and leaseReadThen's double decision. The model
// is written from docs/contract.md §1-§4 (clock rules, lease, R1-R5), not from the code, and
// compared after every command: served locally or not, the reason, linearizable reads made,
// the caller lease's expiry and generation, suspect, the re-arm instant.
//
// Dispatch records the engine's transfer as a read does (per contract; before the fix of
// test/attack/reader-wasm-dispatch-transfer.test.ts the model had to follow the code there).
// The model and the code agree (5,000 runs): a passing test that can fail. Seen failing: on the test
// build with LEASE_CORE_UNSAFE=acks-survive-clock-fault (an ack from before a suspend served:
// "hit valid" where the model says "miss suspend-detected"), with dispatch modelled per the
// contract (the finding above), with leaseReadThen's generation re-check dropped from the model,
// and with two mutants of the built host: a leadership-loss error from the linearizable read
// that no longer invalidates ("generation"), and dispatch passing suspectAtStart as false
// ("expiry": an engine transfer that ends during the commit). Events in flight: during the linearizable read, between leaseReadThen's
// read and its re-check, during a commit. Replay with FC_SEED=<seed>; FC_RUNS=<n> for longer
// searches, FC_STATS=1 to print what the observer heard.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { createLeaseCore, LeadershipLostError, type ClockSource } from "lease-core";
import { FakeEngine, MS } from "../support/fakes.js";

const seed = process.env["FC_SEED"] === undefined ? undefined : Number(process.env["FC_SEED"]);
const runs = process.env["FC_RUNS"] === undefined ? 600 : Number(process.env["FC_RUNS"]);
const params = { numRuns: runs, ...(seed === undefined ? {} : { seed }) };

// Written out, not imported: the model must not share what it checks.
const NAMES = ["valid", "expired", "not-leader", "clock-unknown", "term-mismatch", "suspend-detected", "suspect", "disabled"];
const R = { valid: 0, expired: 1, notLeader: 2, clockUnknown: 3, termMismatch: 4, suspend: 5, suspect: 6, disabled: 7 };
const LOCAL = 0x100;
const EXTEND = 0x400;
const TOLERANCE_NS = 1_000_000n; // contract §1.2: a sleep-offset growth beyond 1 ms is a suspend

/** The Node shim's clock as contract §1.2 describes it: raw time plus the sleep offset. */
class TestClock implements ClockSource {
  rawNs = 10_000n * 1_000n * MS;
  offsetNs = 3n * 1_000n * MS;
  info: ClockSource["info"];
  constructor(budgetNs: bigint) {
    this.info = budgetNs === 0n ? {} : { mayFreeze: true, freezeBudgetNs: budgetNs };
  }
  now(): bigint {
    return this.rawNs;
  }
  sleepOffsetNs(): bigint {
    return this.offsetNs;
  }
}

class Engine extends FakeEngine {
  term = 1n;
  appliedTermValue = 1n;
  ackTermValue = 1n;
  transferring = false;
  currentTerm(): bigint {
    return this.term;
  }
  appliedTerm(): bigint {
    return this.appliedTermValue;
  }
  quorumAckTerm(): bigint {
    return this.ackTermValue;
  }
  transferInProgress(): boolean {
    return this.transferring;
  }
}

/** Contract §1-§4 for one reader on one core, naively. */
class Model {
  // §1 clock
  primed = false;
  baseNs = 0n;
  maxOffsetNs = 0n;
  lastNs = 0n;
  floorNs = 0n;
  // §2 lease, and why the core last voided it (a fault names its reason until the next extend)
  expiry = 0n;
  generation = 0n;
  cause: "none" | "suspend" | "regression" = "none";
  // §4.1 reader
  pushed = false;
  engineTransfer = false;
  endPending = false;
  rearmNs = 0n;
  closed = false;
  constructor(readonly budgetNs: bigint) {}

  observe(rawNs: bigint, offsetNs: bigint): bigint {
    if (!this.primed) {
      this.primed = true;
      this.baseNs = offsetNs;
      this.maxOffsetNs = offsetNs;
    } else if (offsetNs > this.maxOffsetNs) {
      const grewNs = offsetNs - this.maxOffsetNs;
      this.maxOffsetNs = offsetNs;
      if (grewNs > TOLERANCE_NS) this.fault("suspend");
    }
    const instant = rawNs + this.maxOffsetNs - this.baseNs;
    if (instant < this.lastNs) {
      this.fault("regression");
      return 0n;
    }
    this.lastNs = instant;
    return instant;
  }
  fault(cause: "suspend" | "regression"): void {
    if (this.lastNs > this.floorNs) this.floorNs = this.lastNs;
    this.invalidate();
    this.cause = cause;
  }
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
  /** §4.1 R1/R2/R4: the engine's transfer answer at a sample (a read's or a commit's). */
  noteTransfer(nowNs: bigint, transferring: boolean): void {
    if (transferring && !this.engineTransfer) {
      this.invalidate();
      this.engineTransfer = true;
    } else if (!transferring && this.engineTransfer) {
      this.invalidate();
      this.engineTransfer = false;
      this.markEnd(nowNs);
    }
    if (this.endPending && nowNs !== 0n) {
      this.endPending = false;
      this.markEnd(nowNs);
    }
  }
  decide(nowNs: bigint, e: Engine): number {
    const durationNs = this.duration(e.durationNs);
    this.noteTransfer(nowNs, e.transferring);
    const leader = e.role === "leader";
    const suspect = this.suspect;
    const extend = leader && durationNs > 0n && !suspect ? EXTEND : 0;
    if (durationNs <= 0n) return R.disabled;
    if (nowNs === 0n) return R.clockUnknown | extend;
    if (!leader) return R.notLeader;
    if (suspect) return R.suspect;
    if (e.appliedTermValue !== e.term) return R.termMismatch | extend;
    const ackInTerm = e.ackTermValue === e.term;
    const floor = this.rearmNs > this.floorNs ? this.rearmNs : this.floorNs;
    const ack = e.ackNs;
    if (ackInTerm && ack > floor && ack !== 0n && ack <= nowNs && nowNs - ack < durationNs) return R.valid | LOCAL | extend;
    if (this.expiry !== 0n && nowNs < this.expiry) return R.valid | LOCAL | extend;
    if (this.cause === "suspend") return R.suspend | extend;
    if (this.cause === "regression") return R.clockUnknown | extend;
    return (ackInTerm ? R.expired : R.termMismatch) | extend;
  }
  extendFrom(sampleNs: bigint, durationNs: bigint, gen: bigint): void {
    if (sampleNs <= 0n || durationNs <= 0n || sampleNs <= this.floorNs) return;
    const until = sampleNs + durationNs;
    if (gen !== this.generation || (this.expiry !== 0n && until <= this.expiry)) return;
    this.expiry = until;
    this.cause = "none";
  }
}

const ms = (n: number) => BigInt(n) * MS;
const readOutcome = fc.constantFrom("ok", "ok", "ok", "error", "loss");
/** Something that happens while a read, a commit or leaseReadThen's `fn` is in flight. */
const EVENTS = ["none", "advance", "transfer-on", "transfer-off", "lose", "begin", "end", "suspend", "step-back", "invalidate", "close"] as const;
type Event = (typeof EVENTS)[number];
// Mostly nothing in flight; a close is rarest, as it ends the run's reads.
const during = fc.oneof(
  { weight: 30, arbitrary: fc.constant<Event>("none") },
  { weight: 20, arbitrary: fc.constantFrom<Event>(...EVENTS.filter((e) => e !== "none" && e !== "close")) },
  { weight: 1, arbitrary: fc.constant<Event>("close") },
);
// Weighted so that many reads are served locally (a fresh ack, a warm lease) and then hit by a
// fault, a transfer, a leader loss or a close, in flight or between reads.
const mostly = (p: number) => fc.integer({ min: 1, max: 100 }).map((n) => n <= p);
const command = fc.oneof(
  { weight: 8, arbitrary: fc.record({ op: fc.constant("advance" as const), ns: fc.constantFrom(ms(1), ms(50), ms(300), ms(800)) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("stepBack" as const), ns: fc.constantFrom(ms(5), ms(100)) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("suspend" as const), ns: fc.constantFrom(ms(2), ms(500)) }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant("ack" as const), agoNs: fc.constantFrom(-1n, 0n, ms(10), ms(10), ms(200), ms(900)), none: mostly(15) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("transfer" as const), on: mostly(30) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("terms" as const), applied: mostly(80), acked: mostly(80) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("lose" as const) }) },
  // (leadership comes back twice as often as it goes: most reads run on a leader)
  { weight: 6, arbitrary: fc.record({ op: fc.constant("regain" as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("begin" as const) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("end" as const) }) },
  { weight: 16, arbitrary: fc.record({ op: fc.constantFrom("leaseRead" as const, "localRead" as const, "leaseReadThen" as const), read: readOutcome, during, duringFn: during }) },
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("dispatch" as const),
      index: fc.constantFrom(0n, 7n, 7n),
      forwarded: mostly(25),
      during,
      lossError: mostly(10),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("close" as const), rare: mostly(10) }) },
);

describe("model-based attack: the public reader against a naive model of contract §1-§4", () => {
  test("served-or-not, reason, linearizable reads, expiry, generation, suspect and re-arm agree after every command", async () => {
    let commands = 0;
    const stats = new Map<string, number>(); // what the observer heard, to see that hits and misses of every kind happen
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(0n, ms(30)), fc.array(command, { minLength: 30, maxLength: 80 }), async (budgetNs, cmds) => {
        const clock = new TestClock(budgetNs);
        const core = await createLeaseCore({ clock });
        const m = new Model(budgetNs);
        const engine = new Engine();
        const seen: string[] = [];
        const reader = core.createLeaseReader(engine, {
          observer: { onHit: (r) => seen.push(`hit ${r}`), onMiss: (r) => seen.push(`miss ${r}`) },
          onWarning: () => {},
        });
        const observe = () => m.observe(clock.rawNs, clock.offsetNs);
        const slot = reader.lease.slot;
        const trace: string[] = [];

        /** One thing happening to the engine, the clock or the reader, and the model's view. */
        const event = (e: Event) => {
          switch (e) {
            case "none":
              return;
            case "advance":
              clock.rawNs += ms(300);
              return;
            case "suspend":
              clock.offsetNs += ms(500);
              return;
            case "step-back":
              clock.rawNs -= ms(100);
              return;
            case "transfer-on":
            case "transfer-off":
              engine.transferring = e === "transfer-on";
              return;
            case "lose":
              if (engine.role !== "leader") return;
              engine.loseLeadership(); // the hook: invalidate; a pushed transfer ends at a fresh reading
              if (!m.closed) {
                m.invalidate();
                if (m.pushed) {
                  const nowNs = observe();
                  m.pushed = false;
                  m.invalidate();
                  m.markEnd(nowNs);
                }
              }
              return;
            case "begin":
              reader.beginTransfer();
              if (!m.pushed) {
                m.pushed = true;
                m.invalidate();
              }
              return;
            case "end":
              reader.endTransfer();
              if (m.pushed) {
                const nowNs = observe();
                m.pushed = false;
                m.invalidate();
                m.markEnd(nowNs);
              }
              return;
            case "invalidate":
              reader.lease.invalidate(); // the caller voids the lease itself (contract §2)
              m.invalidate();
              return;
            case "close":
              reader.close();
              if (!m.closed) {
                m.closed = true;
                m.invalidate();
              }
              return;
          }
        };

        for (const c of cmds) {
          commands++;
          if (seen.length > 0) stats.set(seen[0]!, (stats.get(seen[0]!) ?? 0) + 1);
          trace.push(JSON.stringify(c, (_k, v) => (typeof v === "bigint" ? `${v}n` : v)));
          const where = trace.join("\n");
          seen.length = 0;
          const readsBefore = engine.reads;
          let want: string[] = [];
          let wantReads = 0;
          switch (c.op) {
            case "advance":
              clock.rawNs += c.ns;
              break;
            case "stepBack":
              clock.rawNs -= c.ns;
              break;
            case "suspend":
              clock.offsetNs += c.ns;
              break;
            case "ack":
              engine.ackNs = c.none || m.lastNs === 0n ? 0n : c.agoNs < 0n ? m.lastNs + MS : m.lastNs - c.agoNs;
              break;
            case "transfer":
              engine.transferring = c.on;
              break;
            case "terms":
              engine.appliedTermValue = c.applied ? engine.term : engine.term - 1n;
              engine.ackTermValue = c.acked ? engine.term : engine.term - 1n;
              break;
            case "lose":
              event("lose");
              break;
            case "regain":
              if (engine.role === "leader") break;
              engine.role = "leader";
              engine.term++;
              break;
            case "begin":
              event("begin");
              break;
            case "end":
              event("end");
              break;
            case "leaseRead":
            case "localRead":
            case "leaseReadThen": {
              if (m.closed) break;
              engine.readError = c.read === "error" ? new Error("timed out") : c.read === "loss" ? new LeadershipLostError("lost") : undefined;
              // What the host does when the linearizable read it started settles: extend after
              // a success (MAY_EXTEND, still leader, open), invalidate after a leadership loss.
              let settle: (() => void) | undefined;
              const linearizable = (outcome: number, nowNs: bigint, gen: bigint) => {
                wantReads = 1;
                engine.duringRead = () => event(c.during);
                settle = () => {
                  settle = undefined;
                  if (c.read === "loss") {
                    if (!m.closed) m.invalidate();
                  } else if (c.read === "ok" && (outcome & EXTEND) !== 0 && engine.role === "leader" && !m.closed) {
                    m.extendFrom(nowNs, m.duration(engine.durationNs), gen);
                  }
                };
              };
              if (c.op === "leaseReadThen") {
                // Samples, then asks (#decide(now)); fn runs; samples and decides again.
                const firstNs = observe();
                const first = m.decide(firstNs, engine);
                const firstGen = m.generation;
                const firstTerm = engine.term;
                let calls = 0;
                let fn: () => number;
                if ((first & LOCAL) === 0) {
                  want = [`miss ${NAMES[first & 0xff]}`];
                  linearizable(first, firstNs, firstGen);
                  fn = () => {
                    settle?.(); // the extend ran before fn got the index
                    event(c.duringFn);
                    return 0;
                  };
                } else {
                  fn = () => {
                    if (calls++ > 0) {
                      settle?.(); // fn again, on the linearizable read's index
                      return 0;
                    }
                    event(c.duringFn);
                    if (m.closed) return 0; // the re-check refuses: ReaderClosedError, nothing counted
                    const afterNs = observe();
                    const after = m.decide(afterNs, engine);
                    if ((after & LOCAL) !== 0 && m.generation === firstGen && engine.term === firstTerm) {
                      want = ["hit valid"];
                    } else {
                      want = [`miss ${(after & LOCAL) === 0 ? NAMES[after & 0xff] : "expired"}`];
                      linearizable(after, afterNs, m.generation);
                    }
                    return 0;
                  };
                }
                await reader.leaseReadThen(fn).catch(() => {});
              } else {
                // Asks, then fills (the fast path): the engine's answers are those of this moment.
                const nowNs = observe();
                const outcome = m.decide(nowNs, engine);
                if ((outcome & LOCAL) !== 0) want = ["hit valid"];
                else if (c.op === "leaseRead") {
                  want = [`miss ${NAMES[outcome & 0xff]}`];
                  linearizable(outcome, nowNs, m.generation);
                }
                if (c.op === "leaseRead") await reader.leaseRead().catch(() => {});
                else expect(reader.localRead() !== undefined, where).toBe((outcome & LOCAL) !== 0);
              }
              engine.duringRead = undefined;
              settle?.(); // a failed read: fn never ran
              break;
            }
            case "dispatch": {
              if (m.closed) break;
              const leader = engine.role === "leader";
              let sampleNs = 0n;
              let gen = 0n;
              let suspectAtStart = false;
              if (leader) {
                sampleNs = observe();
                m.noteTransfer(sampleNs, engine.transferring); // a commit records the transfer as a read does
                suspectAtStart = m.suspect; // as a read deciding on this sample
                gen = m.generation;
              }
              let failed = false;
              await reader
                .dispatch(async () => {
                  event(c.during);
                  if (c.lossError) throw new LeadershipLostError("lost during commit");
                  return { commitIndex: c.index, forwarded: c.forwarded };
                })
                .catch(() => {
                  failed = true;
                });
              if (!leader) {
                expect(failed, where).toBe(true); // NotLeaderError, commit never called
                break;
              }
              if (c.lossError) {
                expect(failed, where).toBe(true);
                if (!m.closed) m.invalidate();
                break;
              }
              if (!m.closed) m.noteTransfer(0n, engine.transferring); // after the commit, with no reading
              const suspectNow = m.pushed || m.endPending || engine.transferring;
              if (!m.closed && engine.role === "leader" && c.index > 0n && !c.forwarded && !suspectAtStart && !suspectNow) {
                m.extendFrom(sampleNs, m.duration(engine.durationNs), gen);
              }
              break;
            }
            case "close":
              if (c.rare) event("close");
              break;
          }
          expect([...seen], `observer\n${where}`).toEqual(want);
          expect(engine.reads - readsBefore, `linearizable reads\n${where}`).toBe(wantReads);
          expect(reader.lease.expiry(), `expiry\n${where}`).toBe(m.expiry);
          expect(reader.lease.generation(), `generation\n${where}`).toBe(m.generation);
          expect(reader.suspect, `suspect\n${where}`).toBe(m.suspect);
          expect(core.exports.readerRearmAfterNs(slot), `re-arm instant\n${where}`).toBe(m.rearmNs);
          expect(core.lastClockFaultNs(), `fault floor\n${where}`).toBe(m.floorNs);
        }
      }),
      params,
    );
    expect(commands).toBeGreaterThanOrEqual(4_000);
    if (process.env["FC_STATS"] !== undefined) console.log(Object.fromEntries(stats));
    // The property is only as strong as what it reaches: local reads must be common.
    expect(stats.get("hit valid") ?? 0).toBeGreaterThanOrEqual(commands / 50);
  }, 120_000);
});
