// A minimal Raft adapter: how to put lease-core in front of a replication engine of your own.
//
// `ToyRaft` below stands in for your engine: a 3-voter group in one process, node 1 leading,
// with a log, a commit index, ReadIndex, heartbeats and a step-down. The adapter is the
// `engine` object: the six methods of `LeaseEngine` (README "Using it"), with
// - `lastQuorumAck` from a `QuorumAckTracker`: every ack is recorded with the SEND time of the
//   message the follower answered (sampled before it leaves), never the time the answer
//   arrived, so network delay can only shorten the lease (contract §3);
// - `leaseDurationNs` from `core.leaseDurationFor`, which checks the timings (contract §5);
// - `onLeaderLoss` wired to the engine's step-down.
// It then shows a read served by ReadIndex, then locally; a write through `dispatch`; the
// pause-safe `leaseReadThen`; the lease running out while the leader is cut off; and a
// step-down voiding the lease at once.
// Every claim it prints is asserted: it exits non-zero if one does not hold.
//
// Run: node examples/raft-adapter.mjs   (after `npm run build`; CI: test/examples.test.ts)
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { NotLeaderError, createLeaseCore, followerQuorum } from "lease-core";

const MS = 1_000_000n;

/** A toy Raft group: only what the adapter needs. Messages are function calls that take 2 ms. */
class ToyRaft {
  constructor(core) {
    this.core = core;
    this.selfId = 1;
    this.voters = [1, 2, 3];
    this.reachable = new Set([2, 3]); // followers the leader can talk to
    this.role = "leader";
    this.term = 1n;
    this.log = [];
    this.commitIndex = 0n;
    this.appliedIndex = 0n;
    this.kv = new Map(); // the state machine
    this.readIndexRounds = 0;
    this.tracker = core.createQuorumAckTracker();
    this.tracker.setTerm(this.term); // acks of another term never count
    this.stepDownListeners = new Set();
  }

  /** One round to every follower (a heartbeat or an append); true when a quorum answered. */
  async broadcast() {
    const sentAtNs = this.core.now(); // sampled BEFORE sending: the ack is anchored here
    await sleep(2); // the network: the answers arrive later, the anchor stays at the send
    const q = followerQuorum(this.voters.length); // 3 voters: 1 follower ack + the leader
    let acks = 0;
    for (const peer of this.voters) {
      if (peer === this.selfId || !this.reachable.has(peer)) continue;
      this.tracker.recordAck(peer, q, sentAtNs, this.term); // the reply echoes sentAtNs and its term
      acks++;
    }
    return acks >= q;
  }

  /** ReadIndex (Raft thesis §6.4): confirm leadership with a round, then read at the commit index. */
  async readIndex() {
    if (this.role !== "leader") throw new NotLeaderError();
    this.readIndexRounds++;
    const index = this.commitIndex;
    if (!(await this.broadcast())) throw new Error("ReadIndex: no quorum answered");
    return index;
  }

  async propose(key, value) {
    if (this.role !== "leader") throw new NotLeaderError();
    this.log.push({ key, value });
    const index = BigInt(this.log.length);
    if (!(await this.broadcast())) throw new Error("propose: no quorum answered");
    this.commitIndex = this.appliedIndex = index;
    this.kv.set(key, value); // applied
    return { commitIndex: index };
  }

  stepDown() {
    this.role = "follower";
    this.tracker.reset();
    for (const listener of this.stepDownListeners) listener();
  }

  onStepDown(listener) {
    this.stepDownListeners.add(listener);
    return () => this.stepDownListeners.delete(listener);
  }
}

const core = await createLeaseCore();
const raft = new ToyRaft(core);

// Your engine's timings; leaseDurationFor throws a named error if the margin does not cover
// drift and a tick, or without check-quorum. Here: 1000 ms - 300 ms = a 700 ms lease.
const leaseDurationNs = core.leaseDurationFor({
  electionTimeoutNs: 1000n * MS, tickNs: 10n * MS, safetyMarginNs: 300n * MS, driftPpmMax: 50n, checkQuorum: true,
});
assert.equal(leaseDurationNs, 700n * MS);

const engine = {
  state: () => raft.role,
  appliedIndex: () => raft.appliedIndex,
  linearizableRead: () => raft.readIndex(),
  leaseDurationNs: () => leaseDurationNs,
  lastQuorumAck: () => raft.tracker.quorumAck(),
  onLeaderLoss: (callback) => raft.onStepDown(callback),
};

let lastOutcome = "";
const reader = core.createLeaseReader(engine, {
  observer: { onHit: (reason) => (lastOutcome = `local (${reason})`), onMiss: (reason) => (lastOutcome = `ReadIndex (${reason})`) },
});

/** One lease read; returns how it was served and checks it against the ReadIndex count. */
async function read(label, expectLocal) {
  const rounds = raft.readIndexRounds;
  const fence = await reader.leaseRead();
  const local = raft.readIndexRounds === rounds;
  assert.equal(local, expectLocal, `${label}: expected ${expectLocal ? "local" : "ReadIndex"}, got ${lastOutcome}`);
  console.log(`${label}: served ${lastOutcome}, fence ${fence}`);
  return fence;
}

console.log(`clock ${core.clock.source}, lease ${leaseDurationNs / MS} ms`);

// 1. No quorum proof yet: the first read pays a ReadIndex round, which warms the lease.
await read("read 1", false);
// 2. Within the lease: served from local state, no round trip.
await read("read 2", true);

// 3. A write: dispatch samples the clock before proposing and extends the lease from that
//    sample once the entry commits locally.
const { commitIndex } = await reader.dispatch(() => raft.propose("x", "1"));
assert.equal(commitIndex, 1n);
console.log(`write x=1: committed at ${commitIndex}, lease valid ${reader.lease.valid()}`);
assert.equal(await read("read 3", true), 1n);

// The pause-safe form: the read runs first, and the lease is checked again on a clock sample
// taken after it, so a GC pause between the check and the read cannot serve stale data.
const x = await reader.leaseReadThen((index) => `${raft.kv.get("x")} at index ${index}`);
assert.equal(x, "1 at index 1");
console.log(`leaseReadThen: x = ${x}, served ${lastOutcome}`);
assert.equal(lastOutcome, "local (valid)");

// 4. The leader is cut off: no ack arrives, the lease runs out on its own clock, and the read
//    falls back to ReadIndex, which cannot reach a quorum. Nothing stale is served.
raft.reachable.clear();
await sleep(Number((leaseDurationNs + 10n * MS) / MS));
const cutOff = await reader.leaseRead().then(() => "served", (err) => err.message);
assert.equal(cutOff, "ReadIndex: no quorum answered");
assert.equal(lastOutcome, "ReadIndex (expired)");
console.log(`cut off for ${leaseDurationNs / MS + 10n} ms: lease expired, read refused (${cutOff})`);

// 5. Healed: one ReadIndex round proves leadership again, then reads are local.
raft.reachable = new Set([2, 3]);
await read("read 4", false);
await read("read 5", true);

// 6. A step-down voids the lease at once (onLeaderLoss), long before it would expire.
assert.equal(reader.lease.valid(), true);
raft.stepDown();
assert.equal(reader.lease.valid(), false);
const afterStepDown = await reader.leaseRead().then(() => "served", (err) => err.name);
assert.equal(afterStepDown, "NotLeaderError");
assert.equal(lastOutcome, "ReadIndex (not-leader)");
const logLength = raft.log.length;
const refusedWrite = await reader.dispatch(() => raft.propose("x", "2")).then(() => "committed", (err) => err.name);
assert.equal(refusedWrite, "NotLeaderError");
assert.equal(raft.log.length, logLength, "dispatch must not propose on a follower");
console.log(`step-down: lease valid ${reader.lease.valid()}, read ${afterStepDown}, write ${refusedWrite} (not proposed)`);

reader.close();
console.log("raft-adapter: ok");
