// leaseRead / dispatch (contract §4) and the sharded reader, as scenarios on a manual clock and
// a scriptable engine. Each scenario names the contract line it pins.
import { describe, expect, test, vi } from "vitest";
import {
  createLeaseCore,
  InvalidCommitResultError,
  InvalidEngineAnswerError,
  InvalidOptionError,
  LeadershipLostError,
  LeadershipTransferInProgressError,
  NotLeaderError,
  PartialLeaseCapabilityError,
  ReaderClosedError,
  UnknownGroupError,
  UnroutableKeyError,
  type LeaseCore,
} from "lease-core";
import { FakeEngine, ManualClock, MS, T0, countingObserver, plainEngine } from "./support/fakes.js";

async function setup() {
  const clock = new ManualClock();
  const core = await createLeaseCore({ clock });
  const engine = new FakeEngine();
  const counts = countingObserver();
  const warnings: string[] = [];
  const reader = core.createLeaseReader(engine, { observer: counts.observer, onWarning: (m) => warnings.push(m) });
  return { clock, core, engine, counts, reader, warnings };
}

describe("leaseRead (contract §6 scenarios 6-9)", () => {
  test("6a: a fresh engine ack serves locally, with no linearizable read, and leaves the caller lease cold", async () => {
    const { clock, engine, reader, counts } = await setup();
    engine.ackNs = clock.ns - 100n * MS;
    await expect(reader.leaseRead()).resolves.toBe(engine.applied);
    expect(engine.reads).toBe(0);
    expect(reader.lease.expiry()).toBe(0n);
    expect(counts.hits.get("valid")).toBe(1);
  });

  test("6b: an engine ack an hour old costs exactly one linearizable read", async () => {
    const { clock, engine, reader } = await setup();
    engine.ackNs = clock.ns - 3_600_000n * MS;
    await expect(reader.leaseRead()).resolves.toBe(engine.readIndex);
    expect(engine.reads).toBe(1);
  });

  test("6c: an engine ack from the future never serves (ack <= now)", async () => {
    const { clock, engine, reader, counts } = await setup();
    engine.ackNs = clock.ns + 1n;
    await reader.leaseRead();
    expect(engine.reads).toBe(1);
    expect(counts.misses.get("expired")).toBe(1);
  });

  test("7: 100 reads in one lease window cost one linearizable read: 1 miss, 99 hits", async () => {
    const { clock, engine, reader, counts } = await setup();
    for (let i = 0; i < 100; i++) {
      await reader.leaseRead();
      clock.advance(1n * MS);
    }
    expect(engine.reads).toBe(1);
    expect(counts.total(counts.misses)).toBe(1);
    expect(counts.misses.get("expired")).toBe(1);
    expect(counts.hits.get("valid")).toBe(99);
  });

  test("7b: the lease is warmed from the sample taken before the read, not after it", async () => {
    const { clock, engine, reader } = await setup();
    const startNs = clock.ns;
    engine.duringRead = () => clock.advance(300n * MS); // a slow quorum round
    await reader.leaseRead();
    expect(reader.lease.expiry()).toBe(startNs + engine.durationNs);
  });

  test("7c: once the window passes, the next read is linearizable again", async () => {
    const { clock, engine, reader, counts } = await setup();
    await reader.leaseRead();
    clock.advance(engine.durationNs - 1n);
    await reader.leaseRead();
    expect(engine.reads).toBe(1);
    clock.advance(1n);
    await reader.leaseRead();
    expect(engine.reads).toBe(2);
    expect(counts.misses.get("expired")).toBe(2);
  });

  test("8: leaseDuration 0: every read is linearizable, the lease is never warmed, and it is said once", async () => {
    const { engine, reader, counts, warnings } = await setup();
    engine.durationNs = 0n;
    engine.ackNs = 0n;
    for (let i = 0; i < 5; i++) await reader.leaseRead();
    expect(engine.reads).toBe(5);
    expect(reader.lease.expiry()).toBe(0n);
    expect(counts.misses.get("disabled")).toBe(5);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/disabled/);
  });

  test("8b: an engine without the lease capability reads linearizably, and says so once", async () => {
    const clock = new ManualClock();
    const core = await createLeaseCore({ clock });
    const engine = new FakeEngine();
    const warnings: string[] = [];
    const reader = core.createLeaseReader(plainEngine(engine), { onWarning: (m) => warnings.push(m) });
    expect(reader.leaseCapable).toBe(false);
    await reader.leaseRead();
    await reader.leaseRead();
    expect(engine.reads).toBe(2);
    expect(reader.lease.expiry()).toBe(0n);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/no lease capability/);
  });

  test("9: the leader-loss callback invalidates; after close() it does not; close() twice is fine", async () => {
    const { engine, reader } = await setup();
    await reader.leaseRead();
    expect(reader.lease.valid()).toBe(true);
    const generation = reader.lease.generation();
    engine.loseLeadership();
    expect(reader.lease.valid()).toBe(false);
    expect(reader.lease.generation()).toBe(generation + 1n);
    engine.role = "leader";
    reader.close(); // voids the lease itself (a closed reader's lease must not outlive it)
    expect(engine.listeners.size).toBe(0);
    expect(reader.lease.generation()).toBe(generation + 2n);
    engine.loseLeadership();
    expect(reader.lease.generation()).toBe(generation + 2n);
    expect(() => reader.close()).not.toThrow();
    await expect(reader.leaseRead()).rejects.toBeInstanceOf(ReaderClosedError);
    await expect(reader.dispatch(async () => ({ commitIndex: 1n }))).rejects.toBeInstanceOf(ReaderClosedError);
  });
});

describe("leaseRead: misses, errors and the generation guard", () => {
  test.each([
    ["NotLeaderError", new NotLeaderError(), true],
    ["LeadershipLostError", new LeadershipLostError(), true],
    ["LeadershipTransferInProgressError", new LeadershipTransferInProgressError(), true],
    ["an engine error carrying a leadership-loss code", Object.assign(new Error("raft: not leader"), { code: "ERR_LEASE_NOT_LEADER" }), true],
    ["a timeout", new Error("timeout"), false],
  ])("a linearizable read failing with %s invalidates the lease: %s", async (_name, error, invalidates) => {
    const { clock, engine, reader } = await setup();
    await reader.leaseRead();
    clock.advance(engine.durationNs); // expired: the next read goes to the engine
    const generation = reader.lease.generation();
    const expiry = reader.lease.expiry();
    engine.readError = error;
    await expect(reader.leaseRead()).rejects.toBe(error);
    expect(reader.lease.generation()).toBe(invalidates ? generation + 1n : generation);
    expect(reader.lease.expiry()).toBe(invalidates ? 0n : expiry);
  });

  test("an invalidation during the linearizable read voids the extend that follows (no resurrection)", async () => {
    const { engine, reader } = await setup();
    engine.duringRead = () => reader.lease.invalidate();
    await reader.leaseRead();
    expect(reader.lease.expiry()).toBe(0n);
    expect(reader.lease.valid()).toBe(false);
  });

  test("a follower's read is linearizable with reason not-leader and never warms its lease", async () => {
    const { engine, reader, counts } = await setup();
    engine.role = "follower";
    engine.ackNs = 0n;
    await reader.leaseRead();
    expect(counts.misses.get("not-leader")).toBe(1);
    expect(reader.lease.expiry()).toBe(0n);
  });

  test("a warm caller lease does not serve once the engine says it is not leader", async () => {
    const { engine, reader, counts } = await setup();
    await reader.leaseRead();
    engine.role = "candidate";
    await reader.leaseRead();
    expect(engine.reads).toBe(2);
    expect(counts.misses.get("not-leader")).toBe(1);
  });

  test("leadership lost during the read: no extend", async () => {
    const { engine, reader } = await setup();
    engine.duringRead = () => (engine.role = "follower");
    await reader.leaseRead();
    expect(reader.lease.expiry()).toBe(0n);
  });

  test("a clock with no reading: reason clock-unknown, linearizable, and no lease from 0 + duration", async () => {
    const { clock, engine, reader, counts } = await setup();
    clock.ns = 0n;
    engine.ackNs = 1n;
    await expect(reader.leaseRead()).resolves.toBe(engine.readIndex);
    expect(counts.misses.get("clock-unknown")).toBe(1);
    expect(reader.lease.expiry()).toBe(0n);
  });

  test("a suspend invalidates a warm lease; the next read says suspend-detected", async () => {
    const { clock, engine, reader, counts } = await setup();
    await reader.leaseRead();
    clock.offsetNs += 30_000n * MS; // the machine slept 30 s: the raw clock did not move
    clock.advance(1n * MS);
    await reader.leaseRead();
    expect(counts.misses.get("suspend-detected")).toBe(1);
    expect(engine.reads).toBe(2);
  });

  test("a clock regression refuses the reading and invalidates the warm lease", async () => {
    const { clock, core, engine, reader, counts } = await setup();
    await reader.leaseRead();
    clock.ns -= 1n * MS;
    await reader.leaseRead();
    expect(counts.misses.get("clock-unknown")).toBe(1);
    expect(core.clockEvents().regressions).toBe(1n);
    expect(engine.reads).toBe(2);
  });

  test("an aborted signal rejects before anything happens", async () => {
    const { engine, reader } = await setup();
    const controller = new AbortController();
    controller.abort(new Error("stop"));
    await expect(reader.leaseRead(controller.signal)).rejects.toThrow("stop");
    expect(engine.reads).toBe(0);
  });

  test("the signal reaches the engine's linearizable read", async () => {
    const { engine, reader } = await setup();
    const spy = vi.spyOn(engine, "linearizableRead");
    const controller = new AbortController();
    await reader.leaseRead(controller.signal);
    expect(spy).toHaveBeenCalledWith(controller.signal);
  });

  test.each([
    ["appliedIndex returns a number", (e: FakeEngine) => { e.ackNs = T0; (e as unknown as { applied: unknown }).applied = 5; }, InvalidEngineAnswerError],
    ["linearizableRead resolves to a string", (e: FakeEngine) => { (e as unknown as { readIndex: unknown }).readIndex = "7"; }, InvalidEngineAnswerError],
    ["leaseDurationNs returns a number", (e: FakeEngine) => { (e as unknown as { durationNs: unknown }).durationNs = 700; }, Error],
    ["lastQuorumAck returns a negative", (e: FakeEngine) => { e.ackNs = -1n; }, Error],
  ])("an engine answer of the wrong type is a typed error: %s", async (_name, spoil, type) => {
    const { engine, reader } = await setup();
    spoil(engine);
    const err = await reader.leaseRead().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(type);
    expect((err as { code?: string }).code).toMatch(/^ERR_LEASE_/);
    expect(reader.lease.expiry()).toBe(0n);
  });

  test("an engine with part of the lease capability is refused at construction", async () => {
    const core = await createLeaseCore({ clock: new ManualClock() });
    const engine = new FakeEngine();
    const partial = { ...plainEngine(engine), leaseDurationNs: () => 1n };
    expect(() => core.createLeaseReader(partial)).toThrow(PartialLeaseCapabilityError);
    expect(() => core.createLeaseReader({} as never)).toThrow(InvalidOptionError);
  });
});

describe("dispatch", () => {
  test("not leader: NotLeaderError, commit never called, lease untouched", async () => {
    const { engine, reader } = await setup();
    await reader.leaseRead();
    const [expiry, generation] = [reader.lease.expiry(), reader.lease.generation()];
    engine.role = "follower";
    const commit = vi.fn(async () => ({ commitIndex: 5n }));
    await expect(reader.dispatch(commit)).rejects.toBeInstanceOf(NotLeaderError);
    expect(commit).not.toHaveBeenCalled();
    expect([reader.lease.expiry(), reader.lease.generation()]).toEqual([expiry, generation]);
  });

  test("a local commit extends from the sample taken before committing", async () => {
    const { clock, engine, reader } = await setup();
    const startNs = clock.ns;
    const result = await reader.dispatch(async () => {
      clock.advance(200n * MS);
      return { commitIndex: 11n };
    });
    expect(result.commitIndex).toBe(11n);
    expect(reader.lease.expiry()).toBe(startNs + engine.durationNs);
  });

  test.each([
    ["commitIndex 0 (no real commit)", { commitIndex: 0n }],
    ["forwarded to another leader", { commitIndex: 9n, forwarded: true }],
  ])("no extend: %s", async (_name, value) => {
    const { reader } = await setup();
    await reader.dispatch(async () => value);
    expect(reader.lease.expiry()).toBe(0n);
  });

  test("leadership lost while committing: no extend", async () => {
    const { engine, reader } = await setup();
    await reader.dispatch(async () => {
      engine.role = "follower";
      return { commitIndex: 3n };
    });
    expect(reader.lease.expiry()).toBe(0n);
  });

  test("an invalidation during the commit voids the extend (generation guard)", async () => {
    const { reader } = await setup();
    await reader.dispatch(async () => {
      reader.lease.invalidate();
      return { commitIndex: 3n };
    });
    expect(reader.lease.expiry()).toBe(0n);
  });

  test("a leadership-loss error from commit invalidates; another error leaves the lease", async () => {
    const { reader } = await setup();
    await reader.leaseRead();
    const generation = reader.lease.generation();
    const timeout = new Error("timeout");
    await expect(reader.dispatch(async () => { throw timeout; })).rejects.toBe(timeout);
    expect(reader.lease.generation()).toBe(generation);
    expect(reader.lease.valid()).toBe(true);
    await expect(reader.dispatch(async () => { throw new LeadershipLostError(); })).rejects.toBeInstanceOf(LeadershipLostError);
    expect(reader.lease.generation()).toBe(generation + 1n);
    expect(reader.lease.valid()).toBe(false);
  });

  test.each([
    ["no commitIndex", {}],
    ["a number commitIndex", { commitIndex: 3 }],
    ["a negative commitIndex", { commitIndex: -1n }],
    ["undefined", undefined],
  ])("a commit result with %s is a typed error and extends nothing", async (_name, value) => {
    const { reader } = await setup();
    await expect(reader.dispatch(async () => value as never)).rejects.toBeInstanceOf(InvalidCommitResultError);
    expect(reader.lease.expiry()).toBe(0n);
  });
});

describe("sharded reader (contract §6 scenario 10)", () => {
  async function sharded(core?: LeaseCore) {
    const clock = new ManualClock();
    core ??= await createLeaseCore({ clock });
    const g1 = new FakeEngine();
    const g2 = new FakeEngine();
    g1.readIndex = 100n;
    g2.readIndex = 200n;
    const route = (key: string | Uint8Array) => {
      const s = typeof key === "string" ? key : new TextDecoder().decode(key);
      return s.startsWith("a") ? 1 : s.startsWith("b") ? 2 : s.startsWith("z") ? 99 : undefined;
    };
    const reader = core.createShardedLeaseReader({ groups: new Map([[1, g1], [2, g2]]), route, onWarning: () => {} });
    return { clock, core, g1, g2, reader };
  }

  test("10: warm group 1 only: its key is local; a group-2 key costs one read on group 2 alone", async () => {
    const { g1, g2, reader } = await sharded();
    await reader.leaseReadGroup(1);
    expect([g1.reads, g2.reads]).toEqual([1, 0]);
    await expect(reader.leaseReadForKey("apple")).resolves.toBe(g1.applied);
    expect(g1.reads).toBe(1);
    await expect(reader.leaseReadForKey(new TextEncoder().encode("banana"))).resolves.toBe(200n);
    expect([g1.reads, g2.reads]).toEqual([1, 1]);
  });

  test("10b: an error in group 2 never touches group 1", async () => {
    const { g1, g2, reader } = await sharded();
    await reader.leaseReadGroup(1);
    const lease1 = reader.reader(1).lease;
    const generation1 = lease1.generation();
    g2.readError = new LeadershipLostError();
    await expect(reader.leaseReadGroup(2)).rejects.toBeInstanceOf(LeadershipLostError);
    g2.loseLeadership();
    expect(lease1.generation()).toBe(generation1);
    expect(lease1.valid()).toBe(true);
    expect(reader.reader(2).lease.generation()).toBe(2n);
    expect(g1.reads).toBe(1);
  });

  test("unroutable keys and unknown groups are errors, never a default", async () => {
    const { reader } = await sharded();
    await expect(reader.leaseReadForKey("quince")).rejects.toBeInstanceOf(UnroutableKeyError);
    await expect(reader.leaseReadForKey("zebra")).rejects.toBeInstanceOf(UnroutableKeyError);
    await expect(reader.leaseReadForKey(42 as never)).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(reader.leaseReadGroup(3)).rejects.toBeInstanceOf(UnknownGroupError);
    await expect(reader.dispatch(3, async () => ({ commitIndex: 1n }))).rejects.toBeInstanceOf(UnknownGroupError);
    await expect(reader.leaseReadAllGroups(["apple", "quince"])).rejects.toBeInstanceOf(UnroutableKeyError);
  });

  test("all groups: fenced on one sample; the touched groups only; fails closed on the first that cannot be fenced", async () => {
    const { clock, g1, g2, reader } = await sharded();
    await reader.leaseReadGroup(1);
    const fences = await reader.leaseReadAllGroups();
    expect([...fences]).toEqual([[1, g1.applied], [2, 200n]]);
    expect([g1.reads, g2.reads]).toEqual([1, 1]);

    const onlyA = await reader.leaseReadAllGroups(["apple", "avocado"]);
    expect([...onlyA.keys()]).toEqual([1]);

    clock.advance(g1.durationNs); // both leases expire: every group needs its engine again
    g1.role = "follower";
    g1.readError = new NotLeaderError("group 1 lost");
    g2.readError = new Error("group 2 down");
    await expect(reader.leaseReadAllGroups()).rejects.toThrow("group 1 lost");
    g1.role = "leader";
    g1.readError = undefined;
    await expect(reader.leaseReadAllGroups()).rejects.toThrow("group 2 down");
  });

  test("dispatch per group extends only that group's lease; close() closes every group", async () => {
    const { g1, g2, reader } = await sharded();
    await reader.dispatch(2, async () => ({ commitIndex: 4n }));
    expect(reader.reader(2).lease.expiry()).not.toBe(0n);
    expect(reader.reader(1).lease.expiry()).toBe(0n);
    reader.close();
    reader.close();
    expect(g1.listeners.size + g2.listeners.size).toBe(0);
    await expect(reader.leaseReadGroup(1)).rejects.toBeInstanceOf(ReaderClosedError);
    await expect(reader.leaseReadAllGroups()).rejects.toBeInstanceOf(ReaderClosedError);
  });

  test("bad options are typed errors", async () => {
    const core = await createLeaseCore({ clock: new ManualClock() });
    expect(() => core.createShardedLeaseReader({ groups: {} as never, route: () => 1 })).toThrow(InvalidOptionError);
    expect(() => core.createShardedLeaseReader({ groups: new Map(), route: 5 as never })).toThrow(InvalidOptionError);
  });
});

describe("localRead: leaseRead's synchronous fast path (issue #14)", () => {
  test("a hit returns the applied index and counts the hit; one fill and one decision, no linearizable read", async () => {
    const { clock, engine, reader, counts } = await setup();
    engine.ackNs = clock.ns - 100n * MS;
    expect(reader.localRead()).toBe(engine.applied);
    expect(engine.reads).toBe(0);
    expect(counts.hits.get("valid")).toBe(1);
    expect(counts.total(counts.misses)).toBe(0);
  });

  test("a miss returns undefined, counts nothing and starts no read; leaseRead then decides and counts it", async () => {
    const { clock, engine, reader, counts } = await setup();
    engine.ackNs = clock.ns - 3_600_000n * MS;
    expect(reader.localRead()).toBeUndefined();
    expect(engine.reads).toBe(0);
    expect(counts.total(counts.hits) + counts.total(counts.misses)).toBe(0);
    expect(reader.lease.expiry()).toBe(0n);
    await reader.leaseRead();
    expect(counts.misses.get("expired")).toBe(1);
    expect(engine.reads).toBe(1);
    expect(reader.localRead()).toBe(engine.applied); // the linearizable read warmed the lease
  });

  test("suspect, not leader, closed: never served; bad engine answers are typed errors", async () => {
    const { clock, engine, reader } = await setup();
    engine.ackNs = clock.ns - 100n * MS;
    reader.beginTransfer();
    expect(reader.localRead()).toBeUndefined();
    reader.endTransfer();
    engine.role = "follower";
    expect(reader.localRead()).toBeUndefined();
    engine.role = "leader";
    engine.durationNs = -1n;
    expect(() => reader.localRead()).toThrow(expect.objectContaining({ name: "InvalidDurationError" }));
    engine.durationNs = 700n * MS;
    (engine as { ackNs: unknown }).ackNs = 1;
    expect(() => reader.localRead()).toThrow(expect.objectContaining({ name: "InvalidInstantError" }));
    engine.ackNs = clock.ns; // the transfer ended at this instant: an ack at it proves nothing (R2)
    expect(reader.localRead()).toBeUndefined();
    clock.advance(1n * MS);
    engine.ackNs = clock.ns;
    expect(reader.localRead()).toBe(engine.applied);
    reader.close();
    expect(() => reader.localRead()).toThrow(ReaderClosedError);
  });
});

describe("a reader's state lives in its lease's slot (assembly/reader.ts)", () => {
  test("once the caller disposed the lease, the reader reports nothing of the reader that reuses the slot, and serves nothing", async () => {
    const { core, reader } = await setup();
    const slot = reader.lease.slot;
    reader.lease.dispose();
    const other = core.createLeaseReader(new FakeEngine());
    expect(other.lease.slot).toBe(slot);
    other.beginTransfer();
    expect(other.suspect).toBe(true);
    expect(reader.suspect).toBe(false);
    expect(reader.guards().transfer).toBe(false);
    await expect(reader.leaseRead()).rejects.toThrow(expect.objectContaining({ name: "DisposedError" }));
    expect(() => reader.localRead()).toThrow(expect.objectContaining({ name: "DisposedError" }));
    expect(other.suspect).toBe(true);
  });
});
