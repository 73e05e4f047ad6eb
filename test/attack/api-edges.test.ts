// Attacks on the edges of the new APIs (review findings 7-10, shared-table attach): what the
// README, docs/guards.md and docs/safety.md promise against what the build does. Each test
// FAILS on main (7e3fbd2).
import { describe, expect, test } from "vitest";
import {
  SharedTableError,
  LeaseCoreError,
  attachSharedLeaseTable,
  createLeaseCore,
  createSharedLeaseTable,
  followerQuorum,
  type EngineState,
  type LeaseEngine,
} from "lease-core";

const MS = 1_000_000n;

describe("attack: setQuorum on a voter-set change that keeps the size", () => {
  test("README: setQuorum(followerQuorum(newVoters)) 'forgets every ack'; a same-size swap keeps the removed voter's ack", async () => {
    const core = await createLeaseCore();
    const tracker = core.createQuorumAckTracker();
    // Voters {1 (leader), 2, 3}: q = 1. Voter 3 acks.
    expect(tracker.recordAck(3, followerQuorum(3), core.now())).toBe(true);
    const proved = tracker.quorumAck();
    expect(proved).toBeGreaterThan(0n);
    // The configuration {1, 2, 3} -> {1, 2, 4} is applied; the engine does what the README's
    // line and docs/guards.md ("call tracker.setQuorum(followerQuorum(newVoters)) ... it forgets
    // every ack and republishes at once") say. Voters 2 and 4 can now elect a leader without
    // 1; only voter 3, no longer a voter, acked.
    tracker.setQuorum(followerQuorum(3));
    expect(tracker.quorumAck(), "the removed voter's ack still proves the lease").toBe(0n);
  });
});

describe("attack: bad input to attachSharedLeaseTable / createSharedLeaseTable", () => {
  const typed = async (fn: () => Promise<unknown>) => {
    const err = await fn().then(
      () => undefined,
      (e: unknown) => e,
    );
    return err instanceof LeaseCoreError ? `typed ${(err as { code: string }).code}` : `untyped ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`;
  };

  test("a core that is not a LeaseCore gets a typed error, not a TypeError", async () => {
    const core = await createLeaseCore();
    const table = await createSharedLeaseTable(core, { capacity: 1 });
    const results = {
      "attach({}, memory)": await typed(() => attachSharedLeaseTable({} as never, table.memory)),
      "attach(null, memory)": await typed(() => attachSharedLeaseTable(null as never, table.memory)),
      "attach(table, memory)": await typed(() => attachSharedLeaseTable(table as never, table.memory)),
      "create(null)": await typed(() => createSharedLeaseTable(null as never, { capacity: 1 })),
    };
    for (const [call, result] of Object.entries(results)) expect(result, call).toMatch(/^typed ERR_LEASE_/);
  });

  test("a shared memory too small for the shared module is a SharedTableError, not a LinkError", async () => {
    const core = await createLeaseCore();
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const err = await attachSharedLeaseTable(core, memory).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SharedTableError);
  });
});

describe("attack: a closed reader answers reads", () => {
  test("a group reader closed on its own still serves through leaseReadAllGroups (close(): 'refuses further reads')", async () => {
    const core = await createLeaseCore();
    let linearizable = 0;
    let ackNs = 0n;
    const engine: LeaseEngine = {
      state: (): EngineState => "leader",
      appliedIndex: () => 5n,
      linearizableRead: async () => {
        linearizable++;
        return 6n;
      },
      leaseDurationNs: () => 700n * MS,
      lastQuorumAck: () => ackNs,
      onLeaderLoss: () => () => {},
    };
    const sharded = core.createShardedLeaseReader({ groups: new Map([[1, engine]]), route: () => 1 });
    ackNs = core.now();
    sharded.reader(1).close();
    await expect(sharded.leaseReadGroup(1)).rejects.toMatchObject({ name: "ReaderClosedError" });
    const answer = await sharded.leaseReadAllGroups().then(
      (fences) => `served ${[...fences].join(";")} (linearizable reads: ${linearizable})`,
      (e: { name: string }) => e.name,
    );
    expect(answer).toBe("ReaderClosedError");
  });
});

describe("attack: isLeadershipLossError on a hostile cause chain", () => {
  test("a throwing `code` getter in the chain makes the reader throw it instead of the engine's error", async () => {
    const core = await createLeaseCore();
    const cause = {
      get code(): string {
        throw new Error("getter");
      },
    };
    const engineError = new Error("readIndex failed", { cause });
    const engine: LeaseEngine = {
      state: (): EngineState => "leader",
      appliedIndex: () => 1n,
      linearizableRead: async () => {
        throw engineError;
      },
      leaseDurationNs: () => 700n * MS,
      lastQuorumAck: () => 0n,
      onLeaderLoss: () => () => {},
    };
    const reader = core.createLeaseReader(engine);
    // errors.ts: "a throwing `cause` getter says nothing about leadership"; a throwing `code`
    // getter should say nothing either, and the caller should get the engine's error.
    const err = await reader.leaseRead().catch((e: unknown) => e);
    // (compared as strings: the test runner cannot print an object whose getter throws)
    expect(err === engineError ? "the engine's error" : `another error: ${(err as Error).message}`).toBe("the engine's error");
  });
});

describe("attack: a refused joint configuration leaks its trackers", () => {
  test("createJointQuorumAckTracker with a bad config, repeated, exhausts the core's trackers", async () => {
    const core = await createLeaseCore();
    // The new check (setConfig: a set needing more follower acks than a tracker holds) and the
    // old ones (an empty voter set) throw from the constructor after both trackers were taken.
    for (let i = 0; i < 40; i++) {
      expect(() => core.createJointQuorumAckTracker({ selfId: 0, voters: Array.from({ length: 131 }, (_, v) => v) })).toThrow(/needs 65 follower acks/);
    }
    // Bad input must leave state unchanged: a good tracker can still be created (on main:
    // CapacityError "no free quorum-ack tracker: all -1 are in use", until a GC runs).
    expect(() => core.createQuorumAckTracker()).not.toThrow();
  });
});
