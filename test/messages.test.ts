// The messages a new user meets first, as a user would trip on them: each refusal is typed,
// names the argument and shows the refused value as it was (not "an object", not
// "undefined undefined"); an engine answer outside the contract is refused by name instead of
// silently meaning "not the leader"; misspelt options are refused, never ignored.
import { EventEmitter } from "node:events";
import { beforeAll, describe, expect, test } from "vitest";
import { createLeaseCore, followerQuorum, type LeaseCore, type LeaseEngine } from "lease-core";

let core: LeaseCore;
beforeAll(async () => {
  core = await createLeaseCore();
});

/** A leader engine with the lease capability; `over` replaces any part. */
function engine(over: Record<string, unknown> = {}): LeaseEngine {
  return {
    state: () => "leader",
    appliedIndex: () => 1n,
    linearizableRead: async () => 1n,
    leaseDurationNs: () => 700_000_000n,
    lastQuorumAck: () => 0n,
    onLeaderLoss: () => () => {},
    ...over,
  } as LeaseEngine;
}

/** What `fn` threw (sync or async), for message assertions. */
async function thrown(fn: () => unknown): Promise<Error & { code?: string }> {
  try {
    await fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error("nothing was thrown");
}

describe("messages", () => {
  test("followerQuorum(0) states the range it accepts, [1, …], and the value", async () => {
    const err = await thrown(() => followerQuorum(0));
    expect(err).toMatchObject({ name: "InvalidQuorumError", code: "ERR_LEASE_INVALID_QUORUM" });
    expect(err.message).toBe("voters must be an integer in [1, 2147483647], got the number 0");
    expect(followerQuorum(1)).toBe(0);
  });

  test("a missing argument reads 'got undefined', never 'undefined undefined'", async () => {
    const lease = core.createLease();
    const err = await thrown(() => lease.extend(undefined as unknown as bigint, lease.generation()));
    expect(err.name).toBe("InvalidInstantError");
    expect(err.message).toMatch(/got undefined$/);
    expect(err.message).not.toContain("undefined undefined");
    lease.dispose();
  });

  test("dispatch resolving { commitIndex: 1 } names the number inside", async () => {
    const reader = core.createLeaseReader(engine());
    const err = await thrown(() => reader.dispatch(async () => ({ commitIndex: 1 as unknown as bigint })));
    expect(err).toMatchObject({ name: "InvalidCommitResultError", code: "ERR_LEASE_INVALID_COMMIT_RESULT" });
    expect(err.message).toContain("got { commitIndex: the number 1 }");
    reader.close();
  });

  test('state: () => "LEADER" is refused by name, not read as "not the leader"', async () => {
    const reader = core.createLeaseReader(engine({ state: () => "LEADER" }));
    const err = await thrown(() => reader.leaseRead());
    expect(err).toMatchObject({ name: "InvalidEngineAnswerError", code: "ERR_LEASE_INVALID_ENGINE_ANSWER" });
    expect(err.message).toBe('engine.state() must return "leader", "follower", "candidate", "shutdown" or "unknown", got "LEADER"');
    const write = await thrown(() => reader.dispatch(async () => ({ commitIndex: 1n })));
    expect(write.name).toBe("InvalidEngineAnswerError");
    reader.close();
  });

  test("an onLeaderLoss that returns no deregister function (nothing, or an EventEmitter) is refused", async () => {
    const none = await thrown(() => core.createLeaseReader(engine({ onLeaderLoss: () => undefined })));
    expect(none).toMatchObject({ name: "InvalidEngineAnswerError", code: "ERR_LEASE_INVALID_ENGINE_ANSWER" });
    expect(none.message).toBe("engine.onLeaderLoss() must return a function that deregisters the callback (e.g. () => emitter.off(event, cb)), got undefined");
    const raft = new EventEmitter();
    const emitter = await thrown(() => core.createLeaseReader(engine({ onLeaderLoss: (cb: () => void) => raft.on("stepdown", cb) })));
    expect(emitter.message).toMatch(/got an EventEmitter$/);
    // The refused reader's callback, still registered with the engine, does nothing.
    expect(() => raft.emit("stepdown")).not.toThrow();
  });

  test("unknown options are refused, never ignored", async () => {
    const coreErr = await thrown(() => createLeaseCore({ clockpolicy: "raw" } as never));
    expect(coreErr).toMatchObject({ name: "InvalidOptionError", code: "ERR_LEASE_INVALID_OPTION" });
    expect(coreErr.message).toBe('option clockpolicy must be one of the options of createLeaseCore (maxLeases, maxTrackers, clock, clockPolicy), got "raw"');
    const readerErr = await thrown(() => core.createLeaseReader(engine(), { observe: {} } as never));
    expect(readerErr).toMatchObject({ name: "InvalidOptionError" });
    expect(readerErr.message).toBe("option observe must be one of the reader's options (observer, onWarning), got {}");
    const badWarning = await thrown(() => core.createLeaseReader(engine(), { onWarning: "log" } as never));
    expect(badWarning.message).toBe('option onWarning must be a function, got "log"');
  });
});
