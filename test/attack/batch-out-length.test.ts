// Attack on ShardedLeaseReader.localReadGroups' input check of `outIndexes`
// (host/core/sharded-reader.ts): the length check reads `outIndexes.length`, an ordinary
// property lookup that an own property (Object.defineProperty) or a subclass getter answers,
// while the final `outIndexes.set(...)` writes into the array's REAL extent.
//
// Inputs: three groups, all leaders with a fresh ack; `out` is a BigInt64Array of ONE element
// whose `length` property reads 3 (an own property); groupIds = [0, 1, 2].
//
// What the contract expects (the method's doc: "InvalidOptionError when ... `outIndexes` not a
// BigInt64Array at least as long ... On every throw nothing is served, no observer is called
// and outIndexes is unchanged"; the standards: bad input gets a typed, named error and leaves
// state unchanged, never a half-applied change; sharded-batch.test.ts "bad input: a typed
// error, nothing asked"): InvalidOptionError (ERR_LEASE_*), no engine asked, out unchanged.
//
// What happened: the check passes, every engine is asked and every group decided by the core
// (its transfer state moved on that sample), then `outIndexes.set` throws a bare RangeError
// ("offset is out of bounds"): an untyped error after a half-applied batch.
import { expect, test } from "vitest";
import { InvalidOptionError, createLeaseCore } from "lease-core";
import { FakeEngine, ManualClock, MS } from "../support/fakes.js";

class CountingEngine extends FakeEngine {
  asks = 0;
  override state() {
    this.asks++;
    return super.state();
  }
}

async function setup() {
  const clock = new ManualClock();
  const core = await createLeaseCore({ clock });
  clock.advance(1000n * MS);
  const engines = [new CountingEngine(), new CountingEngine(), new CountingEngine()];
  for (const e of engines) e.ackNs = clock.ns;
  clock.advance(1n * MS);
  let hits = 0;
  const sharded = core.createShardedLeaseReader({ groups: new Map(engines.map((e, g) => [g, e])), route: () => 0, observer: { onHit: () => void hits++ } });
  return { engines, sharded, hits: () => hits };
}

test("control: a plain out array one element short is refused with InvalidOptionError, nothing asked", async () => {
  const { engines, sharded } = await setup();
  const out = new BigInt64Array(2).fill(7n);
  expect(() => sharded.localReadGroups([0, 1, 2], out)).toThrow(InvalidOptionError);
  expect(engines.map((e) => e.asks)).toEqual([0, 0, 0]);
  expect([...out]).toEqual([7n, 7n]);
});

test("an out array whose `length` property over-states its extent: InvalidOptionError, nothing asked, out unchanged", async () => {
  const { engines, sharded, hits } = await setup();
  const out = new BigInt64Array(1).fill(7n);
  Object.defineProperty(out, "length", { value: 3 });
  let thrown: unknown;
  try {
    sharded.localReadGroups([0, 1, 2], out);
  } catch (err) {
    thrown = err;
  }
  expect(new BigInt64Array(out.buffer)[0]).toBe(7n);
  expect(hits()).toBe(0);
  expect(thrown, "a typed, named error").toBeInstanceOf(InvalidOptionError);
  expect(engines.map((e) => e.asks), "no engine asked before the input is known good").toEqual([0, 0, 0]);
});
