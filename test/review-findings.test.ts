// Regression tests for the adversarial review's core, reader, tracker and shared-table findings
// (2, 4, 7, 8, 9, 10): each one failed on the code the review read and pins the fix.
// The etcd engine's findings have their own tests beside the engine's.
import { Worker } from "node:worker_threads";
import { describe, expect, test } from "vitest";
import {
  InvalidQuorumError,
  LeadershipLostError,
  LeadershipTransferInProgressError,
  NotLeaderError,
  SharedTableClockError,
  attachSharedLeaseTable,
  createLeaseCore,
  createSharedLeaseTable,
  isLeadershipLossError,
  type EngineState,
  type LeaseEngine,
} from "lease-core";
import { ShimClock } from "./support/fakes.js";

const MS = 1_000_000n;
const S = 1_000n * MS;
const T0 = 10_000n * S;

/** An engine that keeps its own ack instant (as the etcd engine's anchor does). */
class HoldingEngine implements LeaseEngine {
  role: EngineState = "leader";
  ackNs = 0n;
  durationNs = 700n * MS;
  reads = 0;
  readError: unknown;
  duringRead: (() => void) | undefined;
  readonly listeners = new Set<() => void>();
  state(): EngineState {
    return this.role;
  }
  appliedIndex(): bigint {
    return 7n;
  }
  async linearizableRead(): Promise<bigint> {
    this.reads++;
    await Promise.resolve();
    this.duringRead?.();
    if (this.readError !== undefined) throw this.readError;
    return 9n;
  }
  leaseDurationNs(): bigint {
    return this.durationNs;
  }
  lastQuorumAck(): bigint {
    return this.ackNs;
  }
  onLeaderLoss(callback: () => void): () => void {
    this.listeners.add(callback);
    return () => this.listeners.delete(callback);
  }
}

describe("finding 2: every core on one shared table reads the same clock with the same zero", () => {
  test("a core created after a suspend agrees with one created before it", async () => {
    const clock = new ShimClock();
    const a = await createLeaseCore({ clock }); // thread A, before the suspend
    const table = await createSharedLeaseTable(a, { capacity: 2 });
    clock.rawNs += 5n * S;
    clock.suspend(3_600n * S); // one hour asleep: raw stood still
    clock.rawNs += 1n * MS;
    const b = await createLeaseCore({ clock }); // worker B, lazily started after the resume
    const tb = await attachSharedLeaseTable(b, table.memory);
    // A sees the suspend (its table is invalidated), then extends a 700 ms lease on its own sample.
    const lease = table.lease(0);
    expect(lease.valid()).toBe(false);
    const fromNs = a.now();
    expect(lease.extend(fromNs + 700n * MS, lease.generation())).toBe(true);
    const views = () => [table.lease(0).valid(), tb.lease(0).valid()];
    clock.rawNs += 600n * MS;
    expect(views()).toEqual([true, true]);
    clock.rawNs += 200n * MS; // 800 ms after the extend
    expect(views()).toEqual([false, false]);
    clock.rawNs += 50n * 60n * S; // and 50 minutes later
    expect(views()).toEqual([false, false]);
    // Both threads report the expiry on their own clock: the same instant of real time.
    expect(tb.lease(0).expiry() - b.now()).toBe(table.lease(0).expiry() - a.now());
  });

  test("an expiry written by the later core means the same instant to the earlier one", async () => {
    const clock = new ShimClock();
    const a = await createLeaseCore({ clock });
    const table = await createSharedLeaseTable(a, { capacity: 1 });
    clock.suspend(10n * S);
    clock.rawNs += 1n * MS;
    const b = await createLeaseCore({ clock });
    const tb = await attachSharedLeaseTable(b, table.memory);
    expect(table.lease(0).valid()).toBe(false); // A sees the suspend (and invalidates the table) before B writes
    expect(tb.lease(0).extend(b.now() + 300n * MS, tb.lease(0).generation())).toBe(true);
    clock.rawNs += 299n * MS;
    expect([table.lease(0).valid(), tb.lease(0).valid()]).toEqual([true, true]);
    clock.rawNs += 1n * MS;
    expect([table.lease(0).valid(), tb.lease(0).valid()]).toEqual([false, false]);
  });

  test("two custom clocks cannot be proven to agree: the attach fails with a typed error", async () => {
    const creator = await createLeaseCore({ clock: new ShimClock() });
    const table = await createSharedLeaseTable(creator, { capacity: 1 });
    const other = await createLeaseCore({ clock: new ShimClock() }); // identical, but another clock
    const err = await attachSharedLeaseTable(other, table.memory).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SharedTableClockError);
    expect(err).toMatchObject({ name: "SharedTableClockError", code: "ERR_LEASE_SHARED_TABLE_CLOCK" });
  });

  test("a worker_threads core on the default clock attaches and agrees; one on a custom clock is refused", async () => {
    const core = await createLeaseCore();
    const table = await createSharedLeaseTable(core, { capacity: 1 });
    const lease = table.lease(0);
    lease.extend(core.now() + 60_000n * MS, 0n);
    const code = `
      const { parentPort, workerData } = require("node:worker_threads");
      import("lease-core").then(async ({ createLeaseCore, attachSharedLeaseTable }) => {
        const core = await createLeaseCore();
        const t = await attachSharedLeaseTable(core, workerData.memory);
        const leftNs = t.lease(0).expiry() - core.now();
        const custom = await createLeaseCore({ clock: { now: () => core.now() } });
        const refused = await attachSharedLeaseTable(custom, workerData.memory).then(() => "attached", (e) => e.code);
        parentPort.postMessage([String(leftNs), t.lease(0).valid(), refused]);
      });`;
    const worker = new Worker(code, { eval: true, workerData: { memory: table.memory } });
    const [leftNs, valid, refused] = await new Promise<[string, boolean, string]>((resolve, reject) => worker.once("message", resolve).once("error", reject));
    await worker.terminate();
    const mineNs = lease.expiry() - core.now();
    expect(valid).toBe(true);
    // The worker's view of the time left is the main thread's, less the time that passed between the two reads.
    expect(BigInt(leftNs)).toBeLessThanOrEqual(60_000n * MS);
    expect(BigInt(leftNs)).toBeGreaterThanOrEqual(mineNs);
    expect(refused).toBe("ERR_LEASE_SHARED_TABLE_CLOCK");
  });

  test("a regression seen on one thread's clock is seen by a thread whose core never read before it", async () => {
    const clock = new ShimClock();
    const a = await createLeaseCore({ clock });
    const table = await createSharedLeaseTable(a, { capacity: 1 });
    const lease = table.lease(0);
    expect(lease.extend(a.now() + 700n * MS, 0n)).toBe(true);
    clock.rawNs += 500n * MS;
    expect(lease.valid()).toBe(true);
    clock.rawNs -= 400n * MS; // the clock steps back
    const b = await createLeaseCore({ clock }); // B's core has no history to see it by
    const tb = await attachSharedLeaseTable(b, table.memory);
    clock.rawNs += 300n * MS; // 800 ms of real time after the extend; the clock reads 400 ms after it
    expect(tb.lease(0).valid()).toBe(false);
    expect(lease.valid()).toBe(false);
  });
});

describe("finding 4: no ack sampled before a clock fault proves a lease after it", () => {
  test("an engine's own ack from before a step back never serves once the clock passes the last good instant", async () => {
    const clock = new ShimClock();
    const core = await createLeaseCore({ clock });
    const engine = new HoldingEngine();
    engine.durationNs = 1_697n * MS;
    const reader = core.createLeaseReader(engine, { onWarning: () => {} });
    engine.ackNs = core.now(); // proved at true time 0
    clock.rawNs += 100n * MS;
    expect(await reader.leaseRead()).toBe(7n); // fresh: local
    expect(engine.reads).toBe(0);
    const lastGood = core.now();
    clock.rawNs -= 1_500n * MS; // a 1.5 s step back
    expect(core.now()).toBe(0n);
    expect(core.lastClockFaultNs()).toBe(lastGood);
    // True proof ages 1.7, 2.0, 2.5 and 3.1 s: each read goes linearizable.
    for (const trueAgeMs of [1_700n, 2_000n, 2_500n, 3_100n]) {
      clock.rawNs = T0 + trueAgeMs * MS - 1_500n * MS;
      expect(core.now()).toBeGreaterThan(0n);
      reader.lease.invalidate(); // only the engine's ack could serve
      const before = engine.reads;
      await reader.leaseRead();
      expect(engine.reads, `true age ${trueAgeMs} ms`).toBe(before + 1);
    }
    // A fresh ack after the fault serves again.
    engine.ackNs = core.now();
    reader.lease.invalidate();
    const before = engine.reads;
    await reader.leaseRead();
    expect(engine.reads).toBe(before);
  });

  test("after a suspend the fault instant is the last instant before it; a later ack serves", async () => {
    const clock = new ShimClock();
    const core = await createLeaseCore({ clock });
    expect(core.lastClockFaultNs()).toBe(0n);
    const engine = new HoldingEngine();
    engine.durationNs = 10n * S; // long enough that the 2 s the suspend ages it would not retire it
    const reader = core.createLeaseReader(engine, { onWarning: () => {} });
    engine.ackNs = core.now();
    clock.rawNs += 10n * MS;
    const lastGood = core.now();
    clock.suspend(2n * S);
    clock.rawNs += 1n * MS;
    const after = core.now();
    expect(after).toBeGreaterThan(lastGood);
    expect(core.lastClockFaultNs()).toBe(lastGood);
    engine.ackNs = lastGood; // an ack the engine sampled just before the suspend
    const before = engine.reads;
    await reader.leaseRead();
    expect(engine.reads).toBe(before + 1);
    engine.ackNs = after;
    reader.lease.invalidate(); // only the engine's ack could serve
    await reader.leaseRead();
    expect(engine.reads).toBe(before + 1);
  });

  test("a tracker refuses an ack whose send time predates a clock fault (a late reply)", async () => {
    const clock = new ShimClock();
    const core = await createLeaseCore({ clock });
    const tracker = core.createQuorumAckTracker();
    const sentAtNs = core.now(); // heartbeat sent
    clock.rawNs += 5n * MS;
    core.now();
    clock.rawNs -= 2n * MS; // regression: resets the trackers
    expect(core.now()).toBe(0n);
    clock.rawNs += 10n * MS;
    expect(core.now()).toBeGreaterThan(0n);
    // The reply to the heartbeat sent before the fault arrives now.
    expect(tracker.recordAck(2, 1, sentAtNs)).toBe(false);
    expect(tracker.quorumAck()).toBe(0n);
    tracker.recordSelfAck(sentAtNs);
    expect(tracker.quorumAck()).toBe(0n);
    const fresh = core.now();
    expect(tracker.recordAck(2, 1, fresh)).toBe(true);
    expect(tracker.quorumAck()).toBe(fresh);
  });

  test("a joint tracker's own sample from before a fault is not published after it", async () => {
    const clock = new ShimClock();
    const core = await createLeaseCore({ clock });
    const joint = core.createJointQuorumAckTracker({ selfId: 1, voters: [1] }); // one voter: its own quorum
    const sampleNs = core.now();
    joint.recordSelfAck(sampleNs);
    expect(joint.quorumAck()).toBe(sampleNs);
    clock.rawNs -= 3n * MS; // a step back: the engine's next tick has not come yet
    expect(core.now()).toBe(0n);
    expect(joint.quorumAck()).toBe(0n);
    clock.rawNs += 10n * MS;
    joint.recordSelfAck(sampleNs); // a tick that reuses the old sample
    expect(joint.quorumAck()).toBe(0n);
    const fresh = core.now();
    joint.recordSelfAck(fresh);
    expect(joint.quorumAck()).toBe(fresh);
  });
});

describe("finding 7: a closed reader's lease is never extended", () => {
  test("a linearizable read in flight at close() does not extend it", async () => {
    const core = await createLeaseCore({ clock: new ShimClock() });
    const engine = new HoldingEngine();
    const reader = core.createLeaseReader(engine);
    engine.duringRead = () => reader.close();
    await reader.leaseRead();
    expect(reader.lease.expiry()).toBe(0n);
    expect(reader.lease.valid()).toBe(false);
  });

  test("a dispatch in flight at close() does not extend it, and close() voids a live lease", async () => {
    const core = await createLeaseCore({ clock: new ShimClock() });
    const engine = new HoldingEngine();
    const reader = core.createLeaseReader(engine);
    await reader.leaseRead(); // warms the lease
    expect(reader.lease.valid()).toBe(true);
    const pending = reader.dispatch(async () => {
      await Promise.resolve();
      return { commitIndex: 5n };
    });
    reader.close();
    await pending;
    expect(reader.lease.valid()).toBe(false);
    // Leadership loss no longer reaches a closed reader: nothing may be left to outlive it.
    engine.role = "follower";
    for (const l of engine.listeners) l();
    expect(reader.lease.valid()).toBe(false);
  });
});

describe("finding 8: setQuorum republishes at once", () => {
  test("growing the voter set never leaves the old quorum instant published", async () => {
    const clock = new ShimClock();
    const core = await createLeaseCore({ clock });
    const tracker = core.createQuorumAckTracker();
    const t1 = core.now();
    tracker.recordAck(2, 1, t1); // 3 voters: one follower ack is a quorum
    expect(tracker.quorumAck()).toBe(t1);
    tracker.setQuorum(2); // 5 voters now
    expect(tracker.quorumAck()).toBe(0n);
    clock.rawNs += 1n * MS;
    const t2 = core.now();
    tracker.recordAck(3, 2, t2);
    tracker.recordAck(4, 2, t2);
    expect(tracker.quorumAck()).toBe(t2);
  });

  test("a bad quorum is a typed error and changes nothing", async () => {
    const core = await createLeaseCore({ clock: new ShimClock() });
    const tracker = core.createQuorumAckTracker();
    const t1 = core.now();
    tracker.recordAck(2, 1, t1);
    for (const bad of [-1, 1.5, NaN, 65, "2", 2n, undefined]) {
      expect(() => tracker.setQuorum(bad as number)).toThrow(InvalidQuorumError);
      expect(tracker.quorumAck()).toBe(t1);
      expect(tracker.ackOf(2)).toBe(t1);
    }
  });

  test("the joint tracker's setConfig republishes at once through both voter sets", async () => {
    const core = await createLeaseCore({ clock: new ShimClock() });
    const joint = core.createJointQuorumAckTracker({ selfId: 1, voters: [1, 2, 3] });
    const t1 = core.now();
    joint.recordAck(2, t1);
    expect(joint.quorumAck()).toBe(t1);
    joint.setConfig({ selfId: 1, voters: [1, 2, 3, 4, 5] });
    expect(joint.quorumAck()).toBe(0n);
    joint.recordAck(2, t1);
    expect(joint.quorumAck()).toBe(0n); // one ack of two
  });
});

describe("finding 9: an ack recorded while the follower quorum is 0 never counts", () => {
  test("single voter, then five: the q = 0 ack is not the published instant", async () => {
    const clock = new ShimClock();
    const core = await createLeaseCore({ clock });
    const tracker = core.createQuorumAckTracker();
    const old = core.now();
    tracker.recordAck(2, 0, old); // one voter: q = 0
    expect(tracker.ackOf(2)).toBe(0n);
    clock.rawNs += 10n * S;
    const fresh = core.now();
    tracker.recordAck(3, 2, fresh); // five voters, one fresh follower ack
    expect(tracker.quorumAck()).toBe(0n);
  });

  test("a change of quorum forgets every ack, as the joint tracker's configuration change does", async () => {
    const clock = new ShimClock();
    const core = await createLeaseCore({ clock });
    const tracker = core.createQuorumAckTracker();
    const old = core.now();
    tracker.recordAck(2, 1, old); // three voters
    clock.rawNs += 10n * S;
    const fresh = core.now();
    tracker.recordAck(3, 2, fresh); // five voters now, told through recordAck
    expect(tracker.ackOf(2)).toBe(0n);
    expect(tracker.quorumAck()).toBe(0n);
    tracker.recordAck(4, 2, fresh);
    expect(tracker.quorumAck()).toBe(fresh);
  });
});

describe("finding 10: a wrapped leadership-loss error invalidates the lease", () => {
  test.each([
    ["NotLeaderError", () => new NotLeaderError()],
    ["LeadershipLostError", () => new LeadershipLostError()],
    ["LeadershipTransferInProgressError", () => new LeadershipTransferInProgressError()],
    ["code ERR_LEASE_NOT_LEADER", () => Object.assign(new Error("x"), { code: "ERR_LEASE_NOT_LEADER" })],
    ["code ERR_LEASE_LEADERSHIP_LOST", () => Object.assign(new Error("x"), { code: "ERR_LEASE_LEADERSHIP_LOST" })],
    ["code ERR_LEASE_LEADERSHIP_TRANSFER", () => Object.assign(new Error("x"), { code: "ERR_LEASE_LEADERSHIP_TRANSFER" })],
  ])("%s two causes deep", async (_name, make) => {
    const wrapped = new Error("readIndex failed", { cause: new Error("rpc", { cause: make() }) });
    expect(isLeadershipLossError(wrapped)).toBe(true);
    const core = await createLeaseCore({ clock: new ShimClock() });
    const engine = new HoldingEngine();
    const reader = core.createLeaseReader(engine);
    await reader.leaseRead();
    expect(reader.lease.valid()).toBe(true);
    await expect(reader.dispatch(() => Promise.reject(wrapped))).rejects.toBe(wrapped);
    expect(reader.lease.valid()).toBe(false);
  });

  test("a cause chain that loops, or runs deeper than the bound, is not a leadership loss", () => {
    const a = new Error("a");
    const b = new Error("b", { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(isLeadershipLossError(a)).toBe(false);
    let deep: unknown = new NotLeaderError();
    for (let i = 0; i < 64; i++) deep = new Error(`wrap ${i}`, { cause: deep });
    expect(isLeadershipLossError(deep)).toBe(false);
    expect(isLeadershipLossError(new Error("other", { cause: new Error("io") }))).toBe(false);
  });
});

describe("finding 4 across threads: a step back the table saw retires this thread's engine acks", () => {
  test("a thread whose core read nothing past the step gets the fault from the table", async () => {
    const clock = new ShimClock();
    const x = await createLeaseCore({ clock });
    const table = await createSharedLeaseTable(x, { capacity: 1 });
    const engine = new HoldingEngine();
    const reader = x.createLeaseReader(engine, { onWarning: () => {} });
    engine.ackNs = x.now(); // X's engine proves its lease at true time 0, then X goes quiet
    const y = await createLeaseCore({ clock });
    const ty = await attachSharedLeaseTable(y, table.memory);
    clock.rawNs += 600n * MS;
    ty.countValid(); // Y reads the clock 600 ms on (and publishes it as the table's high-water mark)
    clock.rawNs -= 500n * MS; // the clock steps back 500 ms; X's core never read past the point it lands on
    clock.rawNs += 300n * MS; // true age of X's ack: 900 ms; the clock says 400 ms
    expect(table.countValid()).toBe(0); // X's table sees the step back through the mark
    expect(x.lastClockFaultNs()).toBeGreaterThanOrEqual(engine.ackNs);
    reader.lease.invalidate();
    const before = engine.reads;
    await reader.leaseRead();
    expect(engine.reads).toBe(before + 1); // not served by the 900 ms old ack
  });
});
