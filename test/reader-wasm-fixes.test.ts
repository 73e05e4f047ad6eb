// Regression tests for the fixes to the attacker's findings on the wasm reader that no attack
// test pinned (the attack tests themselves stay in test/attack/reader-wasm-*.test.ts): the
// public engineLeaseAckValid's state check, the extend after a linearizable read using the
// engine's lease duration as it stands after the read, and a local read reporting its hit only
// once the applied index was read.
import { describe, expect, test } from "vitest";
import { createLeaseCore, engineLeaseAckValid, InvalidDurationError, InvalidEngineAnswerError, InvalidOptionError } from "lease-core";
import { FakeEngine, ManualClock, MS, countingObserver } from "./support/fakes.js";

describe("engineLeaseAckValid: a state that is not an EngineState is a typed error (as core.engineAckValid)", () => {
  for (const state of [true, 1, "LEADER", undefined] as unknown[]) {
    test(`state ${typeof state} ${String(state)}`, () => {
      expect(() => engineLeaseAckValid(state as string, 5n, 6n, 10n)).toThrow(InvalidOptionError);
    });
  }
  test("control: every EngineState answers", () => {
    expect(engineLeaseAckValid("leader", 5n, 6n, 10n)).toBe(true);
    for (const state of ["follower", "candidate", "shutdown", "unknown"]) expect(engineLeaseAckValid(state, 5n, 6n, 10n)).toBe(false);
  });
});

describe("the extend after a linearizable read uses the engine's lease duration after the read", () => {
  test("an engine that shortened its lease during the read: the lease extends by the shorter duration, not the one from before", async () => {
    const clock = new ManualClock();
    const core = await createLeaseCore({ clock });
    const engine = new FakeEngine(); // 700 ms
    const reader = core.createLeaseReader(engine);
    const sampleNs = clock.ns;
    engine.duringRead = () => {
      engine.durationNs = 100n * MS; // e.g. a configuration change shortened the election timeout
    };
    await reader.leaseRead();
    expect(reader.lease.expiry()).toBe(sampleNs + 100n * MS);
  });

  test("an engine that lengthened its lease during the read: the proof taken before it still extends by the shorter one", async () => {
    const clock = new ManualClock();
    const core = await createLeaseCore({ clock });
    const engine = new FakeEngine();
    const reader = core.createLeaseReader(engine);
    const sampleNs = clock.ns;
    engine.duringRead = () => {
      engine.durationNs = 900n * MS;
    };
    await reader.leaseRead();
    expect(reader.lease.expiry()).toBe(sampleNs + 700n * MS);
  });

  test("an engine that disabled lease reads during the read (0): no extend; a bad answer after the read rejects, no extend", async () => {
    const clock = new ManualClock();
    const core = await createLeaseCore({ clock });
    const engine = new FakeEngine();
    const reader = core.createLeaseReader(engine);
    engine.duringRead = () => {
      engine.durationNs = 0n;
    };
    await reader.leaseRead();
    expect(reader.lease.expiry()).toBe(0n);
    engine.durationNs = 700n * MS;
    engine.duringRead = () => {
      engine.durationNs = 5 as unknown as bigint;
    };
    await expect(reader.leaseRead()).rejects.toThrow(InvalidDurationError); // as #ask checks the same answer
    expect(reader.lease.expiry()).toBe(0n);
  });
});

describe("a local read reports its hit only once the applied index was read", () => {
  /** A FakeEngine whose appliedIndex() answers a wrong type (a Number). */
  class BadIndexEngine extends FakeEngine {
    override appliedIndex(): bigint {
      return 10 as unknown as bigint;
    }
  }
  for (const path of ["localRead", "leaseRead", "leaseReadAllGroups"] as const) {
    test(`${path}: appliedIndex() failing counts no hit`, async () => {
      const clock = new ManualClock();
      const core = await createLeaseCore({ clock });
      const engine = new BadIndexEngine();
      engine.ackNs = clock.ns - 1n * MS; // a fresh ack: the decision serves locally
      const counts = countingObserver();
      clock.advance(1n * MS);
      let failed: unknown;
      if (path === "localRead") {
        const reader = core.createLeaseReader(engine, { observer: counts.observer });
        try {
          reader.localRead();
        } catch (err) {
          failed = err;
        }
      } else if (path === "leaseRead") {
        const reader = core.createLeaseReader(engine, { observer: counts.observer });
        failed = await reader.leaseRead().then(() => undefined, (err: unknown) => err);
      } else {
        const sharded = core.createShardedLeaseReader({ groups: new Map([[1, engine]]), route: () => 1, observer: counts.observer });
        failed = await sharded.leaseReadAllGroups().then(() => undefined, (err: unknown) => err);
      }
      expect(failed).toBeInstanceOf(InvalidEngineAnswerError);
      expect(counts.total(counts.hits), "a hit counted for a read that failed").toBe(0);
    });
  }
});
