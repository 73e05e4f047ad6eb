// Attack on ShardedLeaseReader.localReadGroups' report phase (host/core/sharded-reader.ts):
// after the core decided every entry on the one sample, the batch calls each SERVED group's
// engine.appliedIndex() in turn (caller code), then writes `outIndexes` and tells the observer.
// Nothing re-checks the entries after that caller code: a group whose reader was pushed into a
// transfer, lost its leadership or was closed by ANOTHER group's appliedIndex() is still
// reported served.
//
// Inputs: groups 0 and 1 on one node, both leaders with a fresh ack, both served at the sample.
// Group 0's appliedIndex() (the first served entry's) (a) pushes reader(1).beginTransfer() (the
// node starts moving group 1's leadership away; TimeoutNow may leave as soon as it returns),
// (b) delivers group 1's leader-loss callback, or (c) closes reader(1).
//
// What the contract expects: docs/contract.md §4.1 R1 / reader.beginTransfer(): "from now on no
// read is served by the lease"; R4: a leader loss invalidates; R3: a closed reader serves
// nothing. The method's doc already withdraws a group "whose reader was asked or moved again"
// before the sample; a move between the sample and the batch's return (before a single index
// is handed to the caller or an onHit reported) must not leave the group served: out[1] = -1n,
// as reader(1).localRead() called at that point does not serve it.
//
// What happened: out[1] = group 1's applied index and onHit("valid") is reported for it, after
// the transfer was pushed / the leader loss delivered / the reader closed.
import { expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { FakeEngine, ManualClock, MS } from "../support/fakes.js";

class IndexHookEngine extends FakeEngine {
  /** Runs once inside appliedIndex (caller code of the report phase). */
  meanwhile: (() => void) | undefined;
  override appliedIndex(): bigint {
    const run = this.meanwhile;
    this.meanwhile = undefined;
    run?.();
    return this.applied;
  }
}

async function setup() {
  const clock = new ManualClock();
  const core = await createLeaseCore({ clock });
  clock.advance(1000n * MS);
  const engines = [new IndexHookEngine(), new IndexHookEngine()];
  engines[0]!.applied = 100n;
  engines[1]!.applied = 200n;
  for (const e of engines) e.ackNs = clock.ns;
  clock.advance(1n * MS);
  let hits = 0;
  const sharded = core.createShardedLeaseReader({ groups: new Map(engines.map((e, g) => [g, e])), route: () => 0, observer: { onHit: () => void hits++ } });
  return { engines, sharded, hits: () => hits };
}

test("control: nothing happens in the report phase: both groups served", async () => {
  const { sharded, hits } = await setup();
  const out = new BigInt64Array(2);
  expect(sharded.localReadGroups([0, 1], out)).toBe(2);
  expect([...out]).toEqual([100n, 200n]);
  expect(hits()).toBe(2);
});

for (const [name, move] of [
  ["R1: reader(1).beginTransfer()", (s: Awaited<ReturnType<typeof setup>>) => s.sharded.reader(1).beginTransfer()],
  ["R4: group 1's leader-loss callback", (s: Awaited<ReturnType<typeof setup>>) => {
    s.engines[1]!.role = "follower";
    for (const cb of s.engines[1]!.listeners) cb();
  }],
  ["R3: reader(1).close()", (s: Awaited<ReturnType<typeof setup>>) => s.sharded.reader(1).close()],
] as const) {
  test(`${name} from group 0's appliedIndex(), after the sample: group 1 is not reported served`, async () => {
    const s = await setup();
    let localAfter: unknown = "not called";
    s.engines[0]!.meanwhile = () => {
      move(s);
      try {
        localAfter = s.sharded.reader(1).localRead();
      } catch (err) {
        localAfter = (err as Error).name;
      }
    };
    const out = new BigInt64Array(2).fill(7n);
    const served = s.sharded.localReadGroups([0, 1], out);
    expect(localAfter, "reader(1).localRead() right after the move").not.toBe(200n);
    expect(out[1], "group 1 reported served after the move").toBe(-1n);
    expect(served).toBe(1);
    expect(s.hits()).toBe(1);
  });
}
