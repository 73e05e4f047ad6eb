// Attack on the fixes of review findings 8 and 9 (assembly/quorum.ts Q6): docs/guards.md says
// "A `q` other than the tracker's passed to `recordAck` does the same first" (forgets every ack,
// republishes at once). It does not when the ack itself is refused: a zero sample, a reply sent
// before the last clock fault, or a reply from another term return before the new q is applied,
// so the instant the OLD voter set proved stays published. Each test FAILS on main (7e3fbd2).
//
// The case that matters is finding 9's: a single voter (q = 0) publishes its own samples; the
// cluster grows to three voters, and the first reply the leader gets under the new
// configuration is refused. The tracker still says q = 0 and still publishes the leader's own
// sample, which a reader serves from although two followers that never acked can elect a leader.
// Last test: the plain tracker's recordSelfAck publishes under any q (the joint tracker's is
// ignored while a voter set needs follower acks).
import { describe, expect, test } from "vitest";
import { createLeaseCore, type ClockSource, type EngineState, type LeaseEngine, type QuorumAckTracker } from "lease-core";

const MS = 1_000_000n;

class SteppingClock implements ClockSource {
  rawNs = 10_000_000n * MS;
  now(): bigint {
    return this.rawNs;
  }
}

/** An engine that publishes its tracker's instant, as guards.md describes. */
class TrackerEngine implements LeaseEngine {
  reads = 0;
  constructor(readonly tracker: QuorumAckTracker) {}
  state(): EngineState {
    return "leader";
  }
  appliedIndex(): bigint {
    return 1n;
  }
  async linearizableRead(): Promise<bigint> {
    this.reads++;
    return 1n;
  }
  leaseDurationNs(): bigint {
    return 700n * MS;
  }
  lastQuorumAck(): bigint {
    return this.tracker.quorumAck();
  }
  onLeaderLoss(): () => void {
    return () => {};
  }
}

describe("attack: a new q passed to recordAck is not applied when the ack is refused", () => {
  test("single voter grows to three; the first reply is from an older term: the leader's own sample still serves", async () => {
    const clock = new SteppingClock();
    const core = await createLeaseCore({ clock });
    const tracker = core.createQuorumAckTracker();
    tracker.setTerm(5n);
    const engine = new TrackerEngine(tracker);
    const reader = core.createLeaseReader(engine, { onWarning: () => {} });
    tracker.setQuorum(0); // one voter: its own quorum (recordAck with q = 0 records nothing)
    tracker.recordSelfAck(core.now());
    clock.rawNs += 10n * MS;
    // The configuration grows to three voters (q = 1). The engine tells the tracker through
    // recordAck's q (guards.md: "does the same first"); the first reply carries term 4.
    expect(tracker.recordAck(2, 1, core.now(), 4n)).toBe(false);
    reader.lease.invalidate(); // only the tracker's instant can serve
    await reader.leaseRead();
    // Expected: q = 1, nothing published (no follower of the three-voter set acked), the read
    // goes linearizable. On main: q = 0, the single voter's sample published, served locally.
    expect({ q: tracker.followerQuorum(), published: tracker.quorumAck(), linearizableReads: engine.reads }).toEqual({ q: 1, published: 0n, linearizableReads: 1 });
  });

  test("the same with a late reply sent before a clock fault", async () => {
    const clock = new SteppingClock();
    const core = await createLeaseCore({ clock });
    const tracker = core.createQuorumAckTracker();
    const sentBeforeFaultNs = core.now(); // a heartbeat to the (then learner) peer 2
    clock.rawNs += 5n * MS;
    core.now();
    clock.rawNs -= 2n * MS;
    expect(core.now()).toBe(0n); // a regression
    clock.rawNs += 10n * MS;
    tracker.setQuorum(0);
    tracker.recordSelfAck(core.now());
    // Three voters now; the first reply is the late one, refused (Q5).
    expect(tracker.recordAck(2, 1, sentBeforeFaultNs)).toBe(false);
    expect({ q: tracker.followerQuorum(), published: tracker.quorumAck() }).toEqual({ q: 1, published: 0n });
  });

  test("the same with a zero sample (ignored): a 3-voter instant stays published after growing to 5", async () => {
    const clock = new SteppingClock();
    const core = await createLeaseCore({ clock });
    const tracker = core.createQuorumAckTracker();
    expect(tracker.recordAck(2, 1, core.now())).toBe(true); // three voters: one follower ack is a quorum
    expect(tracker.quorumAck()).toBeGreaterThan(0n);
    tracker.recordAck(3, 2, 0n); // five voters (q = 2); the first reply carries no sample
    expect({ q: tracker.followerQuorum(), published: tracker.quorumAck() }).toEqual({ q: 2, published: 0n });
  });
  test("recordSelfAck publishes the leader's own sample while the tracker's q needs followers (the joint tracker ignores it)", async () => {
    const clock = new SteppingClock();
    const core = await createLeaseCore({ clock });
    const tracker = core.createQuorumAckTracker();
    const joint = core.createJointQuorumAckTracker({ selfId: 1, voters: [1, 2, 3] });
    tracker.setQuorum(1); // three voters: the engine applied the change
    // A tick that still believes it is the only voter (it read the voter set before an await).
    const sampleNs = core.now();
    tracker.recordSelfAck(sampleNs);
    joint.recordSelfAck(sampleNs);
    expect(joint.quorumAck()).toBe(0n); // the joint tracker: no follower acked, nothing published
    expect(tracker.quorumAck(), "the plain tracker publishes a self-ack under q = 1").toBe(0n);
  });
});
