// ShardedLeaseReader.localReadGroups (issue 17: the batch lease-read hit per group): one clock
// sample for the whole batch, every group decided by the core exactly as its own localRead()
// would be (host/core/sharded-reader.ts, assembly/reader.ts decideRun), -1n where not served.
//
// - agreement: two identical worlds (same engines, same history, same manual clock), one reads
//   every group with one batch, the other with localRead() group by group at the same instant;
//   the indexes served AND the reader state left behind (re-arm instant, suspect, lease
//   generation and expiry) must be the same, over random histories (fast-check);
// - every guard's closed path inside a batch, next to a group that serves (docs/guards.md,
//   assembly/reader.ts R1-R5, the term guards, the clock-fault floor);
// - ask every engine, then sample (attack reader-wasm-rearm-race), and re-entrancy: an engine
//   answer calling back into a group already asked withdraws that group (attack
//   round3-sharded-reentrant), a nested batch from the observer is its own;
// - bad input: a typed error, nothing asked, nothing served, `out` unchanged.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import {
  InvalidEngineAnswerError, InvalidInstantError, InvalidOptionError, ReaderClosedError, UnknownGroupError,
  createLeaseCore, type LeaseCore, type ShardedLeaseReader,
} from "lease-core";
import { FakeEngine, ManualClock, MS } from "./support/fakes.js";

/** A FakeEngine with every guard's answer, each present or not per engine, counting its asks. */
class GuardEngine extends FakeEngine {
  transferring = false;
  term = 1n;
  appliedTermValue = 1n;
  ackTermValue = 1n;
  asks = 0;
  /** Runs inside lastQuorumAck (what another thread, or caller code, does meanwhile). */
  meanwhile: (() => void) | undefined;
  constructor(has: { ownTerm?: boolean; ackTerm?: boolean; transfer?: boolean } = {}) {
    super();
    if (has.ownTerm || has.ackTerm) this.currentTerm = () => this.term;
    if (has.ownTerm) this.appliedTerm = () => this.appliedTermValue;
    if (has.ackTerm) this.quorumAckTerm = () => this.ackTermValue;
    if (has.transfer) this.transferInProgress = () => this.transferring;
  }
  currentTerm?: () => bigint;
  appliedTerm?: () => bigint;
  quorumAckTerm?: () => bigint;
  transferInProgress?: () => boolean;
  override state() {
    this.asks++;
    return super.state();
  }
  override lastQuorumAck(): bigint {
    const run = this.meanwhile;
    this.meanwhile = undefined;
    run?.();
    return this.ackNs;
  }
}

interface World {
  clock: ManualClock;
  core: LeaseCore;
  engines: GuardEngine[];
  sharded: ShardedLeaseReader;
  hits: number;
}

async function world(groups: number, has: (g: number) => ConstructorParameters<typeof GuardEngine>[0] = () => ({ ownTerm: true, ackTerm: true, transfer: true }), freezeBudgetNs?: bigint): Promise<World> {
  const clock = new ManualClock();
  if (freezeBudgetNs !== undefined) Object.assign(clock, { info: { source: "manual, may freeze", mayFreeze: true, freezeBudgetNs } });
  const core = await createLeaseCore({ clock });
  const engines = Array.from({ length: groups }, (_, g) => new GuardEngine(has(g)));
  const w: World = { clock, core, engines, sharded: undefined as never, hits: 0 };
  w.sharded = core.createShardedLeaseReader({
    groups: new Map(engines.map((e, g) => [g, e])),
    route: () => 0,
    observer: { onHit: () => void w.hits++ },
  });
  clock.advance(1000n * MS);
  return w;
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => i);

/** A batch over every group of `w`: the out array as a plain array. */
function batch(w: World, groupIds: number[] = ids(w.engines.length)): { served: number; out: bigint[] } {
  const out = new BigInt64Array(groupIds.length).fill(7n);
  const served = w.sharded.localReadGroups(groupIds, out);
  return { served, out: [...out] };
}

/** Every reader's state in the core, to compare two worlds or a world before/after. */
function readerState(w: World, generation = true): string[] {
  const ex = w.core.exports;
  return w.engines.map((_, g) => {
    const r = w.sharded.reader(g);
    const slot = r.lease.slot;
    return `${ex.readerRearmAfterNs(slot)}/${ex.readerIsSuspect(slot)}/${generation ? ex.leaseGeneration(slot) : "-"}/${ex.leaseExpiry(slot)}`;
  });
}

describe("localReadGroups agrees with localRead() group by group (one sample, same core decisions)", () => {
  // One step of a history, applied to both worlds alike.
  type Step =
    | { kind: "advance"; ms: number }
    | { kind: "regress"; ms: number }
    | { kind: "ack"; g: number; agoMs: number }
    | { kind: "role"; g: number; leader: boolean }
    | { kind: "duration"; g: number; ms: number }
    | { kind: "terms"; g: number; term: number; applied: number; ackTerm: number }
    | { kind: "transfer"; g: number; on: boolean }
    | { kind: "push"; g: number; begin: boolean }
    | { kind: "read"; g: number; warm: boolean }
    | { kind: "lose"; g: number };
  const G = 5;
  const g = fc.integer({ min: 0, max: G - 1 });
  const step: fc.Arbitrary<Step> = fc.oneof(
    fc.record({ kind: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 900 }) }),
    fc.record({ kind: fc.constant("regress" as const), ms: fc.integer({ min: 1, max: 50 }) }),
    fc.record({ kind: fc.constant("ack" as const), g, agoMs: fc.integer({ min: -2, max: 900 }) }),
    fc.record({ kind: fc.constant("role" as const), g, leader: fc.boolean() }),
    fc.record({ kind: fc.constant("duration" as const), g, ms: fc.constantFrom(0, 1, 30, 50, 51, 700) }),
    fc.record({ kind: fc.constant("terms" as const), g, term: fc.integer({ min: 1, max: 2 }), applied: fc.integer({ min: 1, max: 2 }), ackTerm: fc.integer({ min: 0, max: 2 }) }),
    fc.record({ kind: fc.constant("transfer" as const), g, on: fc.boolean() }),
    fc.record({ kind: fc.constant("push" as const), g, begin: fc.boolean() }),
    fc.record({ kind: fc.constant("read" as const), g, warm: fc.boolean() }),
    fc.record({ kind: fc.constant("lose" as const), g }),
  );
  const hasArb = fc.array(fc.record({ ownTerm: fc.boolean(), ackTerm: fc.boolean(), transfer: fc.boolean() }), { minLength: G, maxLength: G });

  async function apply(w: World, s: Step): Promise<void> {
    const e = s.kind === "advance" || s.kind === "regress" ? undefined : w.engines[s.g]!;
    switch (s.kind) {
      case "advance": w.clock.advance(BigInt(s.ms) * MS); break;
      case "regress": w.clock.advance(-BigInt(s.ms) * MS); w.core.now(); break; // a fault: the floor rises
      case "ack": e!.ackNs = s.agoMs < 0 ? (s.agoMs === -1 ? 0n : w.clock.ns + 1n) : w.clock.ns - BigInt(s.agoMs) * MS; break;
      case "role": e!.role = s.leader ? "leader" : "follower"; break;
      case "duration": e!.durationNs = BigInt(s.ms) * MS; break;
      case "terms": e!.term = BigInt(s.term); e!.appliedTermValue = BigInt(s.applied); e!.ackTermValue = BigInt(s.ackTerm); break;
      case "transfer": e!.transferring = s.on; break;
      case "push": if (s.begin) w.sharded.reader(s.g).beginTransfer(); else w.sharded.reader(s.g).endTransfer(); break;
      case "read": e!.readError = s.warm ? undefined : new Error("read index timed out"); await w.sharded.leaseReadGroup(s.g).catch(() => {}); break;
      case "lose": e!.loseLeadership(); e!.role = "leader"; break;
    }
  }

  test("over random histories: the same indexes served, the same reader state after", async () => {
    await fc.assert(
      fc.asyncProperty(hasArb, fc.array(step, { maxLength: 30 }), fc.integer({ min: 0, max: 5 }), async (has, steps, readsAfter) => {
        const a = await world(G, (i) => has[i]);
        const b = await world(G, (i) => has[i]);
        for (const [i, e] of a.engines.entries()) e.ackNs = a.clock.ns; // start from fresh proofs
        for (const [i, e] of b.engines.entries()) e.ackNs = b.clock.ns;
        for (const s of steps) {
          await apply(a, s);
          await apply(b, s);
        }
        expect(readerState(a)).toEqual(readerState(b));
        // A few rounds: the batch (A) and the loop (B) at the same instant, then time moves.
        let sameGenerations = true;
        for (let round = 0; round <= readsAfter; round++) {
          const hitsBefore = b.hits;
          // Behind the last instant handed out, every reading is refused and is one more
          // regression (each invalidates every lease): the batch takes one, the loop one per
          // group, so the generations differ from then on by design; everything else must not.
          if (a.clock.ns < a.core.exports.clockLastInstant()) sameGenerations = false;
          const got = batch(a);
          const want = b.engines.map((_, i) => b.sharded.reader(i).localRead() ?? -1n);
          expect(got.out).toEqual(want);
          expect(got.served).toBe(want.filter((x) => x >= 0n).length);
          expect(a.hits).toBe(b.hits);
          expect(b.hits - hitsBefore).toBe(got.served);
          expect(readerState(a, sameGenerations)).toEqual(readerState(b, sameGenerations));
          a.clock.advance(100n * MS);
          b.clock.advance(100n * MS);
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe("every guard's closed path in a batch (the other group still serves)", () => {
  /** Group 0 is the control (a fresh leader, serves); group 1 is the one under test. */
  async function pair(freezeBudgetNs?: bigint) {
    const w = await world(2, () => ({ ownTerm: true, ackTerm: true, transfer: true }), freezeBudgetNs);
    for (const e of w.engines) {
      e.ackNs = w.clock.ns;
      e.readError = new Error("read index timed out"); // no linearizable read warms a caller lease
    }
    w.clock.advance(1n * MS);
    return w;
  }

  test("control: both groups serve at their applied index", async () => {
    const w = await pair();
    w.engines[1]!.applied = 77n;
    expect(batch(w)).toEqual({ served: 2, out: [10n, 77n] });
    expect(w.hits).toBe(2);
  });

  test("R1: the engine reports a transfer: suspect, not served", async () => {
    const w = await pair();
    w.engines[1]!.transferring = true;
    expect(batch(w)).toEqual({ served: 1, out: [10n, -1n] });
    expect(w.sharded.reader(1).suspect).toBe(true);
  });

  test("R1: a transfer pushed with beginTransfer(): not served", async () => {
    const w = await pair();
    w.sharded.reader(1).beginTransfer();
    expect(batch(w).out).toEqual([10n, -1n]);
  });

  test("R2: after the transfer ends, an ack sent before the end never serves; one sent after does", async () => {
    const w = await pair();
    const e = w.engines[1]!;
    e.transferring = true;
    expect(batch(w).out).toEqual([10n, -1n]);
    w.clock.advance(1n * MS);
    e.ackNs = w.clock.ns; // sent during the transfer
    w.clock.advance(1n * MS);
    e.transferring = false; // ends: re-armed at the batch's sample
    expect(batch(w).out).toEqual([10n, -1n]);
    w.clock.advance(1n * MS);
    expect(batch(w).out).toEqual([10n, -1n]); // still: the ack is before the re-arm instant
    e.ackNs = w.clock.ns; // a proof after the end
    w.clock.advance(1n * MS);
    expect(batch(w).out).toEqual([10n, 10n]);
  });

  test("clock-fault floor: an ack sampled before a regression never serves after it", async () => {
    const w = await pair();
    expect(batch(w).out).toEqual([10n, 10n]); // a reading at this instant: the last one handed out
    const ackBeforeNs = w.clock.ns - 1n * MS;
    w.clock.advance(-5n * MS);
    expect(w.core.now()).toBe(0n); // the regression: the floor rises to the last instant handed out
    w.clock.advance(10n * MS);
    w.engines[0]!.ackNs = w.clock.ns; // the control proves again after the fault
    w.engines[1]!.ackNs = ackBeforeNs; // young enough, but from before the fault
    w.clock.advance(1n * MS);
    expect(batch(w).out).toEqual([10n, -1n]);
  });

  test("R3: a closed group: ReaderClosedError, nothing served (a closed sharded reader likewise)", async () => {
    const w = await pair();
    w.sharded.reader(1).close();
    const out = new BigInt64Array(2).fill(7n);
    expect(() => w.sharded.localReadGroups([0, 1], out)).toThrow(ReaderClosedError);
    expect([...out]).toEqual([7n, 7n]);
    expect(w.hits).toBe(0);
    expect(batch(w, [0]).out).toEqual([10n]); // the other group still serves
    w.sharded.close();
    expect(() => w.sharded.localReadGroups([0], out)).toThrow(ReaderClosedError);
  });

  test("R4: not the leader: not served", async () => {
    const w = await pair();
    w.engines[1]!.role = "follower";
    expect(batch(w).out).toEqual([10n, -1n]);
  });

  test("R4: a leader loss signalled after the group was asked, before the sample: withdrawn", async () => {
    const w = await pair();
    // The batch asks group 1, then group 0's... no: asks in the order given. Ask 1 first, then 0,
    // whose answer makes group 1's engine lose leadership (its listener fires) and come back as
    // leader (a new term that has proved nothing yet, but its old answers said "leader, fresh ack").
    w.engines[0]!.meanwhile = () => {
      w.engines[1]!.loseLeadership();
      w.engines[1]!.role = "leader";
    };
    expect(batch(w, [1, 0]).out).toEqual([-1n, 10n]);
    expect(w.hits).toBe(1);
  });

  test("R5: a lease duration at or below the frozen-clock budget disables lease reads", async () => {
    const w = await pair(50n * MS);
    w.engines[0]!.durationNs = 700n * MS;
    w.engines[1]!.durationNs = 50n * MS; // = the budget: 0 left
    expect(batch(w).out).toEqual([10n, -1n]);
    w.engines[1]!.durationNs = 52n * MS; // 2 ms left, the ack is 1 ms old: serves
    expect(batch(w).out).toEqual([10n, 10n]);
    w.clock.advance(1n * MS); // 2 ms old: R5's 2 ms are over
    w.engines[0]!.ackNs = w.clock.ns;
    expect(batch(w).out).toEqual([10n, -1n]);
  });

  test("own-term guard: a leader that has not applied an entry of its term: not served", async () => {
    const w = await pair();
    w.engines[1]!.term = 2n;
    w.engines[1]!.ackTermValue = 2n;
    w.engines[1]!.appliedTermValue = 1n;
    expect(batch(w).out).toEqual([10n, -1n]);
  });

  test("ack-term guard: an ack proved in another term: not served", async () => {
    const w = await pair();
    w.engines[1]!.term = 2n;
    w.engines[1]!.appliedTermValue = 2n;
    w.engines[1]!.ackTermValue = 1n;
    expect(batch(w).out).toEqual([10n, -1n]);
  });

  test("an expired ack, and an ack from the future: not served", async () => {
    const w = await pair();
    w.engines[1]!.ackNs = w.clock.ns - 700n * MS;
    expect(batch(w).out).toEqual([10n, -1n]);
    w.engines[1]!.ackNs = w.clock.ns + 1n;
    expect(batch(w).out).toEqual([10n, -1n]);
  });
});

describe("ask every engine, then sample; re-entrancy", () => {
  test("an end of transfer reported while the batch asks is dated at the batch's sample: the ack sent during the transfer never serves", async () => {
    const w = await world(2);
    const e = w.engines[1]!;
    e.readError = new Error("read index timed out");
    w.engines[0]!.ackNs = w.clock.ns;
    e.transferring = true;
    batch(w); // the batch sees the transfer (R1)
    expect(w.sharded.reader(1).suspect).toBe(true);
    w.clock.advance(10n * MS);
    let ackSentNs = 0n;
    let endNs = 0n;
    // While the batch asks group 1 (before its sample): an ack is sent during the transfer, then
    // the transfer ends, then the ack's reply is published.
    e.meanwhile = () => {
      w.clock.advance(5n * MS);
      ackSentNs = w.clock.ns;
      w.clock.advance(5n * MS);
      endNs = w.clock.ns;
      e.transferring = false;
      e.ackNs = ackSentNs;
    };
    w.engines[0]!.ackNs = w.clock.ns;
    expect(batch(w).out[1]).toBe(-1n);
    expect(w.core.exports.readerRearmAfterNs(w.sharded.reader(1).lease.slot) >= endNs).toBe(true);
    w.clock.advance(10n * MS);
    w.engines[0]!.ackNs = w.clock.ns;
    expect(ackSentNs < endNs).toBe(true);
    expect(batch(w).out, "a batch served an ack the engine sent during its transfer (R2)").toEqual([10n, -1n]);
  });

  test("an engine answer reads a group already asked (round3-sharded-reentrant): that group is withdrawn and keeps the transfer it saw", async () => {
    const w = await world(2);
    const [e0, e1] = w.engines as [GuardEngine, GuardEngine];
    e1.readError = new Error("read index timed out");
    e0.ackNs = w.clock.ns;
    e1.ackNs = w.clock.ns;
    w.clock.advance(1n * MS);
    // Asked in the order [1, 0]: group 1 answers "no transfer, fresh ack"; then group 0's answer
    // starts group 1's transfer and reads group 1 (suspect, R1), sending an ack meanwhile.
    let ackDuringNs = 0n;
    e0.meanwhile = () => {
      e1.transferring = true;
      w.clock.advance(1n * MS);
      ackDuringNs = w.clock.ns;
      e1.ackNs = ackDuringNs;
      expect(w.sharded.reader(1).localRead()).toBeUndefined();
    };
    const r = batch(w, [1, 0]);
    expect(r.out[0], "group 1 served on answers older than the transfer its reader had noted").toBe(-1n);
    expect(r.out[1]).toBe(10n);
    expect(w.sharded.reader(1).suspect, "the older 'no transfer' answers cleared the transfer").toBe(true);
    // The transfer ends; the ack sent during it never serves.
    w.clock.advance(1n * MS);
    e1.transferring = false;
    w.clock.advance(1n * MS);
    expect(batch(w, [1]).out).toEqual([-1n]);
    expect(ackDuringNs > 0n).toBe(true);
  });

  test("a dispatch from an engine answer on a group already asked (round4): withdrawn", async () => {
    const w = await world(2);
    const [e0, e1] = w.engines as [GuardEngine, GuardEngine];
    e0.ackNs = w.clock.ns;
    e1.ackNs = w.clock.ns;
    w.clock.advance(1n * MS);
    let write: Promise<unknown> | undefined;
    e0.meanwhile = () => {
      e1.transferring = true;
      write = w.sharded.dispatch(1, async () => ({ commitIndex: 0n })).catch(() => {});
    };
    expect(batch(w, [1, 0]).out).toEqual([-1n, 10n]);
    expect(w.sharded.reader(1).suspect, "the older 'no transfer' answers cleared the transfer the dispatch noted").toBe(true);
    await write;
    expect(w.sharded.reader(1).suspect).toBe(true);
  });

  test("an engine answer disposes the lease of a group already asked: withdrawn, its freed slot never decided", async () => {
    const w = await world(2);
    for (const e of w.engines) e.ackNs = w.clock.ns;
    w.clock.advance(1n * MS);
    w.engines[0]!.meanwhile = () => w.sharded.reader(1).lease.dispose();
    expect(batch(w, [1, 0])).toEqual({ served: 1, out: [-1n, 10n] });
  });

  test("a repeated id is decided at its last entry only", async () => {
    const w = await world(2);
    for (const e of w.engines) e.ackNs = w.clock.ns;
    w.clock.advance(1n * MS);
    expect(batch(w, [1, 0, 1])).toEqual({ served: 2, out: [-1n, 10n, 10n] });
    expect(w.hits).toBe(2);
  });

  test("a nested batch from the observer has entries of its own; the outer result stands", async () => {
    const w = await world(3);
    for (const e of w.engines) e.ackNs = w.clock.ns;
    w.engines[2]!.applied = 33n;
    w.clock.advance(1n * MS);
    const nested: bigint[][] = [];
    let depth = 0;
    const sharded = w.core.createShardedLeaseReader({
      groups: new Map(w.engines.map((e, g) => [g, e])),
      route: () => 0,
      observer: {
        onHit: () => {
          if (depth++ > 0) return;
          const out = new BigInt64Array(2);
          sharded.localReadGroups([2, 1], out);
          nested.push([...out]);
        },
      },
    });
    const out = new BigInt64Array(3);
    expect(sharded.localReadGroups([0, 1, 2], out)).toBe(3);
    expect([...out]).toEqual([10n, 10n, 33n]);
    expect(nested).toEqual([[33n, 10n]]);
  });

  test("more groups than one crossing decides (RUN_CAPACITY = 256): all decided on one sample", async () => {
    const w = await world(600, (g) => (g % 3 === 0 ? { ackTerm: true } : {}));
    for (const [g, e] of w.engines.entries()) {
      e.ackNs = w.clock.ns;
      e.applied = BigInt(g);
      if (g % 7 === 0) e.role = "follower";
      if (g % 3 === 0 && g % 2 === 0) e.ackTermValue = 0n;
    }
    w.clock.advance(1n * MS);
    let samples = 0;
    const now = w.clock.now.bind(w.clock);
    w.clock.now = () => (samples++, now());
    const r = batch(w);
    expect(samples).toBe(1);
    const want = w.engines.map((e, g) => (g % 7 === 0 || (g % 3 === 0 && g % 2 === 0) ? -1n : BigInt(g)));
    expect(r.out).toEqual(want);
    expect(r.served).toBe(want.filter((x) => x >= 0n).length);
  });
});

describe("bad input: a typed error, nothing asked, nothing served, out unchanged", () => {
  async function fresh() {
    const w = await world(3);
    for (const e of w.engines) e.ackNs = w.clock.ns;
    w.clock.advance(1n * MS);
    return w;
  }
  const cases: [string, (w: World, out: BigInt64Array) => unknown, new (...args: never[]) => Error, string][] = [
    ["groupIds null", (w, out) => w.sharded.localReadGroups(null as never, out), InvalidOptionError, "ERR_LEASE_INVALID_OPTION"],
    ["groupIds a number", (w, out) => w.sharded.localReadGroups(3 as never, out), InvalidOptionError, "ERR_LEASE_INVALID_OPTION"],
    ["groupIds with a bad length", (w, out) => w.sharded.localReadGroups({ length: -1 } as never, out), InvalidOptionError, "ERR_LEASE_INVALID_OPTION"],
    ["an unknown group", (w, out) => w.sharded.localReadGroups([0, 1, 9], out), UnknownGroupError, "ERR_LEASE_UNKNOWN_GROUP"],
    ["a negative id", (w, out) => w.sharded.localReadGroups([0, -1], out), UnknownGroupError, "ERR_LEASE_UNKNOWN_GROUP"],
    ["a fractional id", (w, out) => w.sharded.localReadGroups([0, 1.5], out), UnknownGroupError, "ERR_LEASE_UNKNOWN_GROUP"],
    ["NaN", (w, out) => w.sharded.localReadGroups([0, Number.NaN], out), UnknownGroupError, "ERR_LEASE_UNKNOWN_GROUP"],
    ["a string id", (w, out) => w.sharded.localReadGroups([0, "1"] as never, out), UnknownGroupError, "ERR_LEASE_UNKNOWN_GROUP"],
    ["a bigint id", (w, out) => w.sharded.localReadGroups([0, 1n] as never, out), UnknownGroupError, "ERR_LEASE_UNKNOWN_GROUP"],
    ["out a plain array", (w) => w.sharded.localReadGroups([0], [0n] as never), InvalidOptionError, "ERR_LEASE_INVALID_OPTION"],
    ["out a BigUint64Array", (w) => w.sharded.localReadGroups([0], new BigUint64Array(1) as never), InvalidOptionError, "ERR_LEASE_INVALID_OPTION"],
    ["out too short", (w, out) => w.sharded.localReadGroups([0, 1, 2, 0], out), InvalidOptionError, "ERR_LEASE_INVALID_OPTION"],
    // `instanceof` is answered by the prototype chain; the kind is the array's own (attack batch-out-length).
    ["out an Int32Array with BigInt64Array's prototype", (w) => w.sharded.localReadGroups([0], Object.setPrototypeOf(new Int32Array(2), BigInt64Array.prototype) as never), InvalidOptionError, "ERR_LEASE_INVALID_OPTION"],
    ["out a plain object with BigInt64Array's prototype", (w) => w.sharded.localReadGroups([0], Object.create(BigInt64Array.prototype) as never), InvalidOptionError, "ERR_LEASE_INVALID_OPTION"],
  ];
  for (const [name, call, type, code] of cases) {
    test(name, async () => {
      const w = await fresh();
      const before = readerState(w);
      const out = new BigInt64Array(3).fill(7n);
      let err: unknown;
      try {
        call(w, out);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(type);
      expect((err as { code: string }).code).toBe(code);
      expect((err as Error).name).toBe(type.name);
      expect([...out]).toEqual([7n, 7n, 7n]);
      expect(w.hits).toBe(0);
      expect(w.engines.map((e) => e.asks)).toEqual([0, 0, 0]);
      expect(readerState(w)).toEqual(before);
      expect(batch(w).out).toEqual([10n, 10n, 10n]); // and the reader still works
    });
  }

  test("a bad engine answer: its typed error, nothing served, out unchanged, nothing decided", async () => {
    const w = await fresh();
    const before = readerState(w);
    w.engines[2]!.ackNs = -1n;
    const out = new BigInt64Array(3).fill(7n);
    expect(() => w.sharded.localReadGroups([0, 1, 2], out)).toThrow(InvalidInstantError);
    expect([...out]).toEqual([7n, 7n, 7n]);
    expect(w.hits).toBe(0);
    expect(readerState(w)).toEqual(before);
  });

  test("an applied index beyond i64 (the out array cannot hold it): InvalidEngineAnswerError, nothing served, out unchanged", async () => {
    const w = await fresh();
    w.engines[1]!.applied = 1n << 63n;
    const out = new BigInt64Array(3).fill(7n);
    expect(() => w.sharded.localReadGroups([0, 1, 2], out)).toThrow(InvalidEngineAnswerError);
    expect([...out]).toEqual([7n, 7n, 7n]);
    expect(w.hits).toBe(0);
    w.engines[1]!.applied = -1n;
    expect(() => w.sharded.localReadGroups([0, 1, 2], out)).toThrow(InvalidEngineAnswerError);
    expect([...out]).toEqual([7n, 7n, 7n]);
  });

  // The out array's extent is checked before anything is asked, but engine answers are caller
  // code: one may shrink its resizable buffer or detach it (transfer) before the batch writes.
  for (const [name, make] of [
    ["shrunk (a resizable ArrayBuffer)", () => {
      const buffer = new ArrayBuffer(24, { maxByteLength: 24 });
      return { out: new BigInt64Array(buffer), move: () => buffer.resize(8) };
    }],
    ["detached (its buffer transferred)", () => {
      const buffer = new ArrayBuffer(24);
      return { out: new BigInt64Array(buffer), move: () => void structuredClone(buffer, { transfer: [buffer] }) };
    }],
  ] as const) {
    for (const leading of [true, false]) {
      test(`out ${name} by an engine answer, ${leading ? "groups served" : "nothing served"}: InvalidOptionError, no hit reported`, async () => {
        const w = await fresh();
        if (!leading) for (const e of w.engines) e.role = "follower";
        const { out, move } = make();
        w.engines[1]!.meanwhile = move;
        let err: unknown;
        try {
          w.sharded.localReadGroups([0, 1, 2], out);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(InvalidOptionError);
        expect((err as { code: string }).code).toBe("ERR_LEASE_INVALID_OPTION");
        expect(w.hits).toBe(0);
        if (leading) expect(batch(w).out).toEqual([10n, 10n, 10n]); // and the reader still works
      });
    }
  }

  test("a lease the caller disposed: DisposedError before anything is decided", async () => {
    const w = await fresh();
    w.sharded.reader(1).lease.dispose();
    const out = new BigInt64Array(3).fill(7n);
    expect(() => w.sharded.localReadGroups([0, 1, 2], out)).toThrow(expect.objectContaining({ code: "ERR_LEASE_DISPOSED" }));
    expect([...out]).toEqual([7n, 7n, 7n]);
    expect(w.hits).toBe(0);
  });

  test("an empty batch: 0, nothing asked", async () => {
    const w = await fresh();
    expect(w.sharded.localReadGroups([], new BigInt64Array(0))).toBe(0);
    expect(w.engines.map((e) => e.asks)).toEqual([0, 0, 0]);
  });
});
