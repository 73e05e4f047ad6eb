// Attack on ShardedLeaseReader.localReadGroups' withdrawal check (host/core/sharded-reader.ts,
// LeaseReader [askInto] / [asksOf] in host/core/reader.ts).
//
// An entry is withdrawn when `stamps[i] !== readers[i][asksOf]()`. Two sentinels share the
// value -1: [askInto] stamps -1 when the engine's answers re-entered the reader during its own
// ask (another ask, a dispatch, a push), and [asksOf] returns -1 once the caller disposed the
// reader's lease. When BOTH happen in one engine answer (group 0's lastQuorumAck pushes
// beginTransfer() on its own reader, then disposes the reader's lease), -1 === -1: the entry is
// NOT withdrawn, and the core decides the slot [askInto] captured before the ask, a slot that is
// now free, or already another lease's.
//
// Inputs: groups 0 and 1, both leaders with a fresh ack. During group 0's ask: beginTransfer()
// on reader 0, reader(0).lease.dispose(), and (second test) a new reader X created on the core,
// which gets the freed slot back (the lease table's free list is a stack).
//
// What the contract expects (the method's doc; sharded-batch.test.ts "an engine answer disposes
// the lease of a group already asked: withdrawn, its freed slot never decided"): a group whose
// reader moved or whose lease was released after its ask is withdrawn: out[0] = -1n, never a
// decision on a freed slot; reader(0).localRead() at that instant throws DisposedError, and the
// transfer pushed on it is in progress: nothing of group 0 may serve (R1, and the disposed lease).
//
// What happened: (1) slot not reused: the wasm assert in decideRun fires (isOpenReader) and the
// batch throws CoreInvariantError (a host bug surfacing as a core invariant); (2) slot reused by
// reader X: group 0's answers are decided on X's slot and out[0] = group 0's applied index:
// group 0 is SERVED, during a transfer pushed on it, with its lease disposed.
import { expect, test } from "vitest";
import { DisposedError, createLeaseCore } from "lease-core";
import { FakeEngine, ManualClock, MS } from "../support/fakes.js";

class HookEngine extends FakeEngine {
  /** Runs once inside lastQuorumAck (an engine answer calling back into lease-core). */
  meanwhile: (() => void) | undefined;
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
  const engines = [new HookEngine(), new HookEngine()];
  engines[0]!.applied = 100n;
  engines[1]!.applied = 200n;
  for (const e of engines) e.ackNs = clock.ns;
  clock.advance(1n * MS);
  const sharded = core.createShardedLeaseReader({ groups: new Map(engines.map((e, g) => [g, e])), route: () => 0 });
  return { core, clock, engines, sharded };
}

test("control: the lease disposed in the answer WITHOUT a push on the reader: withdrawn", async () => {
  const { engines, sharded } = await setup();
  engines[0]!.meanwhile = () => sharded.reader(0).lease.dispose();
  const out = new BigInt64Array(2).fill(7n);
  expect(sharded.localReadGroups([0, 1], out)).toBe(1);
  expect([...out]).toEqual([-1n, 200n]);
});

test("pushed then disposed in group 0's own answer, slot left free: withdrawn, no core invariant fires", async () => {
  const { engines, sharded } = await setup();
  engines[0]!.meanwhile = () => {
    sharded.reader(0).beginTransfer();
    sharded.reader(0).lease.dispose();
  };
  const out = new BigInt64Array(2).fill(7n);
  let served: number | undefined;
  let thrown: unknown;
  try {
    served = sharded.localReadGroups([0, 1], out);
  } catch (err) {
    thrown = err;
  }
  expect(thrown, "a freed slot reached the core's decideRun").toBeUndefined();
  expect(served).toBe(1);
  expect([...out]).toEqual([-1n, 200n]);
});

test("pushed then disposed in group 0's own answer, slot reused by another reader: group 0 is never served", async () => {
  const { core, engines, sharded } = await setup();
  const other = new FakeEngine();
  other.role = "follower";
  let x: ReturnType<typeof core.createLeaseReader> | undefined;
  let freedSlot = -1;
  engines[0]!.meanwhile = () => {
    sharded.reader(0).beginTransfer(); // a transfer starts on group 0: nothing of it may serve (R1)
    freedSlot = sharded.reader(0).lease.slot;
    sharded.reader(0).lease.dispose();
    x = core.createLeaseReader(other);
  };
  const out = new BigInt64Array(2).fill(7n);
  const served = sharded.localReadGroups([0, 1], out);
  expect(x!.lease.slot, "precondition: the freed slot was handed to reader X").toBe(freedSlot);
  expect(() => sharded.reader(0).localRead(), "reader 0 itself serves nothing at this instant").toThrow(DisposedError);
  expect(out[0], "group 0 (transfer pushed, lease disposed) was served on reader X's slot").toBe(-1n);
  expect(served).toBe(1);
  expect(out[1]).toBe(200n);
});
