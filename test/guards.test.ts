// The [beyond] guards of contract §3-§4 (docs/guards.md), as scenarios on a manual clock and a
// scriptable engine. Each names its guard, its reason code and the incident it exists for.
// The simulator (test/sim) then proves them against faults; these pin the API.
import { describe, expect, test } from "vitest";
import {
  createLeaseCore,
  InvalidTermError,
  InvalidVoterConfigError,
  REASONS,
  type LeaseEngine,
} from "lease-core";
import { FakeEngine, ManualClock, MS, countingObserver } from "./support/fakes.js";

/** A FakeEngine that also reports terms and transfers (the optional guard methods). */
class GuardEngine extends FakeEngine {
  term = 5n;
  appliedTermValue = 5n;
  ackTermValue = 5n;
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

async function setup(engine: LeaseEngine & FakeEngine = new GuardEngine()) {
  const clock = new ManualClock();
  const core = await createLeaseCore({ clock });
  const counts = countingObserver();
  const reader = core.createLeaseReader(engine, { observer: counts.observer, onWarning: () => {} });
  return { clock, core, engine, counts, reader };
}

describe("own-term guard (reason term-mismatch)", () => {
  test("a leader that has not applied an entry of its term serves no lease read, even with a fresh ack", async () => {
    const engine = new GuardEngine();
    const { clock, reader, counts } = await setup(engine);
    engine.ackNs = clock.ns - 1n * MS;
    engine.appliedTermValue = 4n; // a new leader: its no-op is not applied yet
    await reader.leaseRead();
    expect(engine.reads).toBe(1);
    expect(counts.misses.get("term-mismatch")).toBe(1);
    engine.appliedTermValue = 5n; // applied an entry of its own term
    await expect(reader.leaseRead()).resolves.toBe(engine.applied);
    expect(engine.reads).toBe(1);
    expect(counts.hits.get("valid")).toBe(1);
  });

  test("the guard is off for an engine that does not report appliedTerm (foundation behaviour)", async () => {
    const { reader, engine } = await setup(new FakeEngine());
    expect(reader.guards()).toEqual({ ownTerm: false, ackTerm: false, transfer: false });
    await reader.leaseRead();
    await reader.leaseRead();
    expect(engine.reads).toBe(1);
  });
});

describe("ack-term guard (reason term-mismatch)", () => {
  test("an engine ack proved in another term does not serve; the reason says why", async () => {
    const engine = new GuardEngine();
    const { clock, reader, counts } = await setup(engine);
    engine.ackNs = clock.ns - 1n * MS;
    engine.ackTermValue = 4n;
    await reader.leaseRead();
    expect(engine.reads).toBe(1);
    expect(counts.misses.get("term-mismatch")).toBe(1);
  });

  test("the tracker refuses and counts an ack for another term; a new term forgets every ack", async () => {
    const { core } = await setup();
    const tracker = core.createQuorumAckTracker();
    expect(tracker.term()).toBe(0n);
    expect(tracker.setTerm(7n)).toBe(true);
    expect(tracker.setTerm(7n)).toBe(false);
    expect(tracker.recordAck(1, 1, 100n, 7n)).toBe(true);
    expect(tracker.quorumAck()).toBe(100n);
    expect(tracker.recordAck(2, 1, 200n, 8n)).toBe(false); // a reply with a higher term is never an ack
    expect(tracker.recordAck(2, 1, 300n, 6n)).toBe(false);
    expect(tracker.quorumAck()).toBe(100n);
    expect(tracker.refusedAcks()).toBe(2n);
    expect(tracker.ackOf(2)).toBe(0n);
    expect(tracker.setTerm(8n)).toBe(true);
    expect(tracker.quorumAck()).toBe(0n);
    expect(tracker.peerCount()).toBe(0);
    expect(tracker.recordAck(2, 1, 400n)).toBe(true); // no term given: the foundation's behaviour
    expect(tracker.quorumAck()).toBe(400n);
    expect(() => tracker.recordAck(1, 1, 1n, -1n)).toThrow(InvalidTermError);
    expect(() => tracker.setTerm(1 as never)).toThrow(InvalidTermError);
  });
});

describe("transfer guard (reason suspect)", () => {
  test("beginTransfer: no lease read, and neither a read nor a commit extends, until a proof taken after endTransfer", async () => {
    const engine = new GuardEngine();
    const { clock, reader, counts } = await setup(engine);
    await reader.leaseRead(); // warm the caller lease
    engine.ackNs = clock.ns - 1n * MS;
    reader.beginTransfer();
    expect(reader.suspect).toBe(true);
    expect(reader.lease.valid()).toBe(false);
    await reader.leaseRead();
    expect(counts.misses.get("suspect")).toBe(1);
    expect(reader.lease.expiry()).toBe(0n); // a read during the transfer proves nothing after it
    await reader.dispatch(async () => ({ commitIndex: 9n }));
    expect(reader.lease.expiry()).toBe(0n);
    clock.advance(5n * MS);
    reader.endTransfer(); // the transfer failed: that alone re-arms nothing
    const endNs = clock.ns;
    await reader.leaseRead();
    expect(engine.reads).toBe(3); // the old ack is older than the end of the transfer
    expect(reader.lease.valid()).toBe(true); // that linearizable read, after the end, is a fresh proof
    reader.lease.invalidate(); // now test the engine's ack alone
    engine.ackNs = endNs; // not later than the end
    await reader.leaseRead();
    expect(engine.reads).toBe(4);
    reader.lease.invalidate();
    clock.advance(1n * MS);
    engine.ackNs = endNs + 1n; // a quorum proof sent after the transfer ended
    await reader.leaseRead();
    expect(engine.reads).toBe(4);
    expect(reader.guards().transfer).toBe(true);
  });

  // Two defences keep a read or commit begun during a transfer from warming the lease after it:
  // the generation bump at the end (its extend carries a generation from before the end), and
  // the decision taken at its start (suspect: no extend). Either suffices where both apply, so
  // each has a test where it alone stands.
  test("defence 1, the generation bump at the end: a generation taken during the transfer extends nothing after it", async () => {
    const { clock, reader } = await setup(new GuardEngine());
    reader.beginTransfer();
    const during = reader.lease.generation();
    reader.endTransfer();
    expect(reader.lease.generation()).toBe(during + 1n);
    expect(reader.lease.extend(clock.ns + 10n * MS, during)).toBe(false);
    expect(reader.lease.expiry()).toBe(0n);
    // Control: the current generation does extend.
    expect(reader.lease.extend(clock.ns + 10n * MS, reader.lease.generation())).toBe(true);
  });

  test("defence 2, a read's decision at its start: begun during a polled transfer that ends before it completes, it warms nothing (no decision sees the end, so no generation bump helps)", async () => {
    const engine = new GuardEngine();
    const { reader } = await setup(engine);
    engine.transferring = true;
    engine.duringRead = () => {
      engine.transferring = false; // the transfer aborts while the read is in flight
    };
    const before = reader.lease.generation();
    await reader.leaseRead();
    expect(engine.reads).toBe(1);
    // The start of the transfer was seen (one bump), its end was not (no decision since).
    expect(reader.lease.generation()).toBe(before + 1n);
    expect(reader.lease.expiry()).toBe(0n);
  });

  test("defence 2, a commit's suspicion at its start: begun during a polled transfer that ends before it commits, it extends nothing", async () => {
    const engine = new GuardEngine();
    const { reader } = await setup(engine);
    engine.transferring = true;
    const before = reader.lease.generation();
    await reader.dispatch(async () => {
      engine.transferring = false;
      return { commitIndex: 3n };
    });
    // dispatch records the engine's answers as a read does: the start it saw before the commit
    // and the end it saw after each invalidate (R4); the end, seen with no reading, is taken at
    // the next sample (R2): suspect until then.
    expect(reader.lease.generation()).toBe(before + 2n);
    expect(reader.suspect).toBe(true);
    expect(reader.lease.expiry()).toBe(0n);
    // Control: the same commit with no transfer extends.
    await reader.dispatch(async () => ({ commitIndex: 4n }));
    expect(reader.lease.expiry()).not.toBe(0n);
  });

  test("the engine's transferInProgress() (polled) makes the lease suspect the same way", async () => {
    const engine = new GuardEngine();
    const { clock, reader, counts } = await setup(engine);
    engine.ackNs = clock.ns - 1n * MS;
    engine.transferring = true;
    await reader.leaseRead();
    expect(counts.misses.get("suspect")).toBe(1);
    engine.transferring = false;
    clock.advance(1n * MS);
    await reader.leaseRead(); // the end is seen at this sample: the old ack no longer serves
    expect(engine.reads).toBe(2);
    engine.ackNs = clock.ns + 0n;
    clock.advance(1n * MS);
    engine.ackNs = clock.ns - 1n;
    await reader.leaseRead();
    expect(engine.reads).toBe(2);
  });

  test("losing leadership ends a transfer: a later leadership is not stuck suspect", async () => {
    const engine = new GuardEngine();
    const { clock, reader } = await setup(engine);
    reader.beginTransfer();
    engine.loseLeadership();
    expect(reader.suspect).toBe(false);
    engine.role = "leader";
    clock.advance(1n * MS);
    engine.ackNs = clock.ns - 1n;
    await reader.leaseRead();
    expect(engine.reads).toBe(0);
  });
});

describe("forwarded or non-local commits never extend", () => {
  test.each([
    [{ commitIndex: 4n, local: false }],
    [{ commitIndex: 4n, forwarded: true }],
  ])("%o", async (result) => {
    const { reader } = await setup();
    await reader.dispatch(async () => result);
    expect(reader.lease.expiry()).toBe(0n);
  });
  test("a local commit (local: true) extends", async () => {
    const { reader } = await setup();
    await reader.dispatch(async () => ({ commitIndex: 4n, local: true }));
    expect(reader.lease.expiry()).not.toBe(0n);
  });
});

describe("pause-safe read: leaseReadThen", () => {
  test("inside the lease: fn runs once, on the applied index, and the lease is checked after it", async () => {
    const engine = new GuardEngine();
    const { clock, reader, counts } = await setup(engine);
    engine.ackNs = clock.ns;
    const seen: bigint[] = [];
    await expect(reader.leaseReadThen((i) => { seen.push(i); return "v"; })).resolves.toBe("v");
    expect(seen).toEqual([engine.applied]);
    expect(engine.reads).toBe(0);
    expect(counts.hits.get("valid")).toBe(1);
  });

  test("a pause inside fn past the lease: the read is redone after a linearizable read (TiKV #10011)", async () => {
    const engine = new GuardEngine();
    const { clock, reader, counts } = await setup(engine);
    engine.ackNs = clock.ns;
    const seen: bigint[] = [];
    const result = await reader.leaseReadThen(async (i) => {
      seen.push(i);
      if (seen.length === 1) clock.advance(engine.durationNs); // GC, SIGSTOP, swap...
      return `read at ${i}`;
    });
    expect(seen).toEqual([engine.applied, engine.readIndex]);
    expect(result).toBe(`read at ${engine.readIndex}`);
    expect(engine.reads).toBe(1);
    expect(counts.misses.get("expired")).toBe(1);
  });

  test("leadership lost and regained during fn (generation changed): not served, redone", async () => {
    const engine = new GuardEngine();
    const { clock, reader } = await setup(engine);
    engine.ackNs = clock.ns;
    let calls = 0;
    await reader.leaseReadThen(() => {
      if (calls++ === 0) {
        engine.loseLeadership();
        engine.role = "leader";
      }
    });
    expect(calls).toBe(2);
    expect(engine.reads).toBe(1);
  });

  test("the term moved during fn: reason term-mismatch, redone", async () => {
    const engine = new GuardEngine();
    const { clock, reader, counts } = await setup(engine);
    engine.ackNs = clock.ns;
    let calls = 0;
    await reader.leaseReadThen(() => {
      if (calls++ === 0) {
        engine.term = 6n;
        engine.appliedTermValue = 6n;
        engine.ackTermValue = 6n;
      }
    });
    expect(calls).toBe(2);
    expect(counts.misses.get("term-mismatch")).toBe(1);
  });

  test("without a lease, fn runs once after the linearizable read; its error propagates", async () => {
    const { engine, reader } = await setup();
    await expect(reader.leaseReadThen((i) => i)).resolves.toBe(engine.readIndex);
    const boom = new Error("boom");
    await expect(reader.leaseReadThen(() => { throw boom; })).rejects.toBe(boom);
    await expect(reader.leaseReadThen(5 as never)).rejects.toThrow(/fn/);
  });
});

describe("joint configurations: the quorum instant is the minimum over both voter sets", () => {
  test("joint {1,2,3} + {1,4,5} led by 1: each set needs one follower ack; the older of the two publishes", async () => {
    const { core } = await setup();
    const t = core.createJointQuorumAckTracker({ selfId: 1, voters: [1, 4, 5], outgoingVoters: [1, 2, 3] });
    expect(t.joint).toBe(true);
    t.recordAck(2, 100n);
    expect(t.quorumAck()).toBe(0n); // the incoming set has no ack yet
    t.recordAck(4, 300n);
    expect(t.quorumAck()).toBe(100n);
    t.recordAck(3, 200n);
    expect(t.quorumAck()).toBe(200n);
    expect(t.recordAck(9, 999n)).toBe(false); // a learner never counts
    expect(t.quorumAck()).toBe(200n);
    t.setConfig({ selfId: 1, voters: [1, 4, 5] }); // a configuration change forgets every ack
    expect(t.quorumAck()).toBe(0n);
    t.recordAck(5, 400n);
    expect(t.quorumAck()).toBe(400n);
  });

  test("a leader outside a voter set needs a majority of it from followers", async () => {
    const { core } = await setup();
    const t = core.createJointQuorumAckTracker({ selfId: 1, voters: [2, 3, 4], outgoingVoters: [1, 2, 3] });
    t.recordAck(2, 100n);
    expect(t.quorumAck()).toBe(0n); // {2,3,4} needs two of them
    t.recordAck(3, 200n);
    expect(t.quorumAck()).toBe(100n);
  });

  test("terms apply to both sets; a single voter publishes its own samples", async () => {
    const { core } = await setup();
    const t = core.createJointQuorumAckTracker({ selfId: 1, voters: [1, 2, 3], outgoingVoters: [1, 2] });
    t.setTerm(3n);
    expect(t.recordAck(2, 100n, 2n)).toBe(false);
    expect(t.refusedAcks()).toBe(2n); // refused in both sets
    expect(t.recordAck(2, 100n, 3n)).toBe(true);
    expect(t.quorumAck()).toBe(100n);
    const solo = core.createJointQuorumAckTracker({ selfId: 1, voters: [1] });
    solo.recordSelfAck(50n);
    expect(solo.quorumAck()).toBe(50n);
    expect(() => core.createJointQuorumAckTracker({ selfId: 1, voters: [] })).toThrow(InvalidVoterConfigError);
    expect(() => core.createJointQuorumAckTracker({ selfId: 1, voters: [2, 2] })).toThrow(InvalidVoterConfigError);
    t.dispose();
    solo.dispose();
  });
});

describe("which guards apply (for doctor)", () => {
  test("reported per engine", async () => {
    const { reader } = await setup();
    expect(reader.guards()).toEqual({ ownTerm: true, ackTerm: true, transfer: true });
    expect(REASONS).toContain("suspect");
  });
});
