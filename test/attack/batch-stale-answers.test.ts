// Attack on ShardedLeaseReader.localReadGroups' "ask every engine, then take one sample"
// (host/core/sharded-reader.ts): the answers of the groups asked first are decided on a sample
// taken after ARBITRARY caller code ran (every later group's engine answers), and the batch
// withdraws an entry only when its READER moved (a read, a push, a dispatch, a leader-loss
// callback, a close, a release). An engine whose own answers changed in between, with no call
// into lease-core (nothing to call: `transferInProgress()` is the POLLED form of the transfer
// guard, and the lease duration has no push at all), is decided on the answers from before.
//
// Inputs: groups 0 and 1 on one node (multi-raft: one process drives every group, so group 1's
// answer can start work of group 0). Group 0 is the leader with an ack 40 ms old, duration
// 700 ms, no transfer. While group 1 is asked (its lastQuorumAck), (a) group 0's engine starts a
// leadership transfer (transferInProgress() now true: TimeoutNow may leave at once, TiKV #8034),
// or (b) group 0's engine shortens its lease duration to 30 ms. The clock does not move.
//
// What the contract expects (the method's doc: "every group is decided by the core exactly as
// its reader(g).localRead() would be ... on ONE clock sample, taken after every engine was
// asked"; docs/contract.md §4.1 R1: "from a sample at which the engine reports a transfer ...
// every decision is REASON_SUSPECT"; the dispatch / linearizable-read extends take the SHORTER
// duration of before and after, attack round3-dispatch-duration): at the batch's sample the
// engine already reports the transfer / the shorter lease, so group 0 is not served, as
// reader(0).localRead() at that very instant (same clock reading) does not serve it.
//
// What happened: group 0 is served (out[0] = its applied index) on the answers it gave before
// the transfer started / before its lease was shortened; localRead() at the same instant
// returns undefined (suspect / expired).
import { expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { FakeEngine, ManualClock, MS } from "../support/fakes.js";

class PolledEngine extends FakeEngine {
  transferring = false;
  meanwhile: (() => void) | undefined;
  transferInProgress(): boolean {
    return this.transferring;
  }
  override lastQuorumAck(): bigint {
    const run = this.meanwhile;
    this.meanwhile = undefined;
    run?.();
    return this.ackNs;
  }
}

async function setup() {
  const clock = new ManualClock();
  const core = await createLeaseCore({ clock });
  clock.advance(1000n * MS);
  const engines = [new PolledEngine(), new PolledEngine()];
  engines[0]!.applied = 100n;
  engines[1]!.applied = 200n;
  for (const e of engines) e.ackNs = clock.ns;
  clock.advance(40n * MS);
  const sharded = core.createShardedLeaseReader({ groups: new Map(engines.map((e, g) => [g, e])), route: () => 0 });
  return { clock, engines, sharded };
}

test("control: with the change made before the batch, group 0 is not served (suspect / expired)", async () => {
  for (const change of ["transfer", "duration"] as const) {
    const { engines, sharded } = await setup();
    if (change === "transfer") engines[0]!.transferring = true;
    else engines[0]!.durationNs = 30n * MS;
    const out = new BigInt64Array(2).fill(7n);
    expect(sharded.localReadGroups([0, 1], out), change).toBe(1);
    expect([...out], change).toEqual([-1n, 200n]);
  }
});

test("R1: group 0's engine starts a transfer while group 1 is asked: group 0 is not served at the batch's sample", async () => {
  const { clock, engines, sharded } = await setup();
  engines[1]!.meanwhile = () => {
    engines[0]!.transferring = true;
  };
  const sampleNs = clock.ns;
  const out = new BigInt64Array(2).fill(7n);
  const served = sharded.localReadGroups([0, 1], out);
  expect(clock.ns).toBe(sampleNs);
  expect(sharded.reader(0).localRead(), "localRead() at the same instant: suspect").toBeUndefined();
  expect(out[0], "group 0 served on its 'no transfer' answer, after its engine reported the transfer").toBe(-1n);
  expect(served).toBe(1);
});

test("group 0's engine shortens its lease (30 ms, ack 40 ms old) while group 1 is asked: group 0 is not served", async () => {
  const { clock, engines, sharded } = await setup();
  engines[1]!.meanwhile = () => {
    engines[0]!.durationNs = 30n * MS;
  };
  const sampleNs = clock.ns;
  const out = new BigInt64Array(2).fill(7n);
  const served = sharded.localReadGroups([0, 1], out);
  expect(clock.ns).toBe(sampleNs);
  expect(sharded.reader(0).localRead(), "localRead() at the same instant: expired").toBeUndefined();
  expect(out[0], "group 0 served on the 700 ms lease it had before the engine shortened it to 30 ms").toBe(-1n);
  expect(served).toBe(1);
});
