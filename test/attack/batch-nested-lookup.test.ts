// Attack on ShardedLeaseReader.localReadGroups (host/core/sharded-reader.ts): a nested batch
// started while the OUTER batch is still looking up its ids shares the outer's readers scratch.
//
// Inputs: three groups; group 0 is a FOLLOWER (its localRead() serves nothing), groups 1 and 2
// are leaders with a fresh quorum ack, group 1 at applied index 111, group 2 at 222.
// `groupIds` is an ArrayLike<number> (the declared parameter type) whose element getter for
// index 1 runs caller code: a batch over [1] on the same sharded reader (e.g. a metrics probe
// or a second request handler sharing it). The outer call is [0, 2].
//
// What the contract expects (the method's own doc, docs/contract.md §4.1 R4): "every group is
// decided by the core exactly as its reader(g).localRead() would be"; a group that is not the
// leader is never served: out[0] = -1n; out[1] = 222n; served 1. A re-entrant call "gets
// entries of its own".
//
// What happened: the id loop runs with #batchDepth still 0 (it is incremented only AFTER the
// lookup), so the nested call is an "outer" call too and writes its readers into the same
// `#batchReaders` array: readers[0] of the outer batch becomes group 1's reader. The outer
// batch then decides group 1 in the slot of group 0 and reports out[0] = 111n: the follower
// group 0 is "served" (at another group's applied index), never having been asked.
import { expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { FakeEngine, ManualClock, MS } from "../support/fakes.js";

async function setup() {
  const clock = new ManualClock();
  const core = await createLeaseCore({ clock });
  clock.advance(1000n * MS);
  const engines = [new FakeEngine(), new FakeEngine(), new FakeEngine()];
  engines[0]!.role = "follower";
  engines[1]!.applied = 111n;
  engines[2]!.applied = 222n;
  for (const e of engines) e.ackNs = clock.ns;
  clock.advance(1n * MS);
  let hits = 0;
  const sharded = core.createShardedLeaseReader({
    groups: new Map(engines.map((e, g) => [g, e])),
    route: () => 0,
    observer: { onHit: () => void hits++ },
  });
  return { sharded, engines, hits: () => hits };
}

test("control: the same batch without the nested call serves group 2 only; group 0 (a follower) localRead() serves nothing", async () => {
  const { sharded } = await setup();
  expect(sharded.reader(0).localRead()).toBeUndefined();
  const out = new BigInt64Array(2).fill(7n);
  expect(sharded.localReadGroups([0, 2], out)).toBe(1);
  expect([...out]).toEqual([-1n, 222n]);
});

test("a nested batch from the groupIds element getter: the follower group 0 is never served", async () => {
  const { sharded, engines } = await setup();
  const nestedOut = new BigInt64Array(1);
  let nestedServed = -1;
  const groupIds: ArrayLike<number> = {
    length: 2,
    get 0() {
      return 0;
    },
    get 1() {
      nestedServed = sharded.localReadGroups([1], nestedOut);
      return 2;
    },
  };
  const out = new BigInt64Array(2).fill(7n);
  const served = sharded.localReadGroups(groupIds, out);
  expect(nestedServed).toBe(1);
  expect(nestedOut[0]).toBe(111n);
  expect(engines[0]!.role).toBe("follower");
  expect(out[0], "group 0 is a follower: localRead() serves nothing, the batch must report -1n").toBe(-1n);
  expect(out[1]).toBe(222n);
  expect(served).toBe(1);
});
