// Attack on the joint-quorum publication that moved into wasm (assembly/quorum.ts
// jointPublished, read by JointQuorumAckTracker.quorumAck()): an ack instant the host accepts
// (checkInstant: a bigint in [0, 2^63-1]) makes the core trap instead of answering.
//
// jointPublished stands i64.MAX_VALUE in for "this set needs no follower" and then asserts that
// the minimum is not i64.MAX_VALUE; an ack sent at 2^63-1 in the only set that needs followers
// makes the real minimum equal that sentinel, and the assert aborts (CoreInvariantError,
// ERR_LEASE_INVARIANT: "a host bug", docs/abi.md). The JS code it replaced answered (0n). An
// engine whose lastQuorumAck() reads quorumAck() then rejects every lease read with an
// invariant error. docs/contract.md §3 (joint configurations take the older of the halves'
// instants); the standards: bad input is a typed error or an answer, never a wasm trap.
import { describe, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { ManualClock } from "../support/fakes.js";

const I64_MAX = (1n << 63n) - 1n;

/** quorumAck(), or the error it threw. */
function answer(read: () => bigint): bigint | Error {
  try {
    return read();
  } catch (err) {
    return err as Error;
  }
}

describe("attack: JointQuorumAckTracker.quorumAck() with an ack at 2^63-1", () => {
  test("one voter set that needs followers: the joint instant is that set's, as a plain tracker publishes it", async () => {
    const core = await createLeaseCore({ clock: new ManualClock() });
    // The same acks in a plain tracker (q = 1 for voters {1, 2, 3}): it publishes 2^63-1.
    const plain = core.createQuorumAckTracker();
    expect(plain.recordAck(2, 1, I64_MAX)).toBe(true);
    expect(plain.quorumAck()).toBe(I64_MAX);

    // Not joint: {1 (self), 2, 3}; the outgoing set is empty and needs nothing.
    const joint = core.createJointQuorumAckTracker({ selfId: 1, voters: [1, 2, 3] });
    expect(joint.recordAck(2, I64_MAX), "the host accepted the instant").toBe(true);
    const got = answer(() => joint.quorumAck());
    expect(got instanceof Error ? `${got.name}: ${got.message}` : got, "the core trapped on an instant the host accepted").toBe(I64_MAX);
  });

  test("joint {1,2,3} -> {1,2,3,4,5}: both sets acked at 2^63-1, the older of the two is 2^63-1, not a trap", async () => {
    const core = await createLeaseCore({ clock: new ManualClock() });
    const joint = core.createJointQuorumAckTracker({ selfId: 1, voters: [1, 2, 3, 4, 5], outgoingVoters: [1, 2, 3] });
    expect(joint.recordAck(2, I64_MAX)).toBe(true);
    expect(joint.recordAck(3, I64_MAX)).toBe(true);
    const got = answer(() => joint.quorumAck());
    expect(got instanceof Error ? `${got.name}: ${got.message}` : got).toBe(I64_MAX);
  });

  test("the trap reaches a lease read: an engine publishing the joint instant rejects every read with an invariant error", async () => {
    const clock = new ManualClock();
    const core = await createLeaseCore({ clock });
    const joint = core.createJointQuorumAckTracker({ selfId: 1, voters: [1, 2, 3] });
    joint.recordAck(2, I64_MAX); // e.g. a follower echoing a corrupt or hostile sentAt
    let reads = 0;
    const reader = core.createLeaseReader({
      state: () => "leader",
      appliedIndex: () => 7n,
      linearizableRead: async () => {
        reads++;
        return 9n;
      },
      leaseDurationNs: () => 700_000_000n,
      lastQuorumAck: () => joint.quorumAck(),
      onLeaderLoss: () => () => {},
    });
    // An ack from the future proves nothing (ack <= now): the read must go linearizable (9n).
    const result = await reader.leaseRead().then(
      (index) => index,
      (err: Error) => `${err.name}: ${err.message}`,
    );
    expect(result).toBe(9n);
    expect(reads).toBe(1);
  });
});
