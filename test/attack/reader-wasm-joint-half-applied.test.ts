// Attack on the joint tracker's recordAck when one voter set's tracker is full (host/core/trackers.ts
// JointQuorumAckTracker.recordAck over two QuorumAckTrackers; the published instant is the
// core's, assembly/quorum.ts jointPublished). QuorumAckTracker.recordAck promises
// "@throws TooManyPeersError when a new peer would exceed MAX_PEERS (nothing recorded)"; the
// joint tracker records the peer in the incoming set first and only then tries the outgoing set,
// which throws: the call fails with the ack half applied, and the joint instant moves on a call
// that reported failure. setConfig accepts such a configuration (it only checks that each set's
// need fits MAX_PEERS). Standard: an error leaves state unchanged, never a half-applied change.
import { describe, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { ManualClock, MS } from "../support/fakes.js";

describe("attack: JointQuorumAckTracker.recordAck throwing TooManyPeersError after recording in one set", () => {
  test("the joint instant does not move on a call that threw", async () => {
    const clock = new ManualClock();
    const core = await createLeaseCore({ clock });
    const outgoing = Array.from({ length: 66 }, (_, i) => i + 1); // C_old: 66 voters, the leader (1) among them: need 33
    const joint = core.createJointQuorumAckTracker({ selfId: 1, voters: [1, 66], outgoingVoters: outgoing }); // C_new {1, 66}: need 1
    for (let peer = 2; peer <= 65; peer++) joint.recordAck(peer, clock.ns - 5n * MS); // C_old's tracker now holds 64 peers
    expect(joint.quorumAck(), "C_new has no ack yet").toBe(0n);

    let thrown: unknown;
    try {
      joint.recordAck(66, clock.ns - 1n * MS); // a voter of both sets: C_new first, then C_old (full)
    } catch (err) {
      thrown = err;
    }
    expect((thrown as Error | undefined)?.name).toBe("TooManyPeersError");
    expect(joint.quorumAck(), "the joint instant moved on a call that threw (C_new recorded, C_old refused)").toBe(0n);
  });
});
