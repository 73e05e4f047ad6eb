// The safety margins the core derives (docs/contract.md §5): the configuration's, and the one of
// a lease timed on another node's TTL (the etcd engine's formula, docs/etcd.md §3), through the
// public API: exact values against BigInt arithmetic, saturation, and typed errors on bad input.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { ManualClock } from "./support/fakes.js";

const MS = 1_000_000n;
const I64_MAX = (1n << 63n) - 1n;

describe("core.ttlSafetyMarginNs: electionTimeout + ceil(2 * TTL * driftPpm / 1e6) + 1 ms", () => {
  test("exact for any inputs that fit, rounded up, and saturating to i64 max past it", async () => {
    const core = await createLeaseCore({ clock: new ManualClock() });
    const positive = fc.bigInt({ min: 1n, max: I64_MAX });
    fc.assert(
      fc.property(positive, positive, fc.bigInt({ min: 0n, max: 1_000_000n }), (electionTimeoutNs, ttlNs, driftPpm) => {
        const exact = electionTimeoutNs + (2n * ttlNs * driftPpm + 999_999n) / 1_000_000n + MS;
        expect(core.ttlSafetyMarginNs(electionTimeoutNs, ttlNs, driftPpm)).toBe(exact > I64_MAX ? I64_MAX : exact);
      }),
      { numRuns: 5_000 },
    );
    // The etcd engine's defaults: 1 s election timeout, 10 s TTL, 500 ppm: 1 s + 10 ms + 1 ms.
    expect(core.ttlSafetyMarginNs(1_000n * MS, 10_000n * MS, 500n)).toBe(1_011n * MS);
    expect(core.ttlSafetyMarginNs(1_000n * MS, 1n, 1n)).toBe(1_001n * MS + 1n); // any drift rounds up to 1 ns
  });

  test("bad input is a typed error, never a trap or a wrapped i64", async () => {
    const core = await createLeaseCore({ clock: new ManualClock() });
    const bad: [unknown, unknown, unknown, string][] = [
      [0n, 10n, 1n, "InvalidDurationError"],
      [1n, 0n, 1n, "InvalidDurationError"],
      [-1n, 10n, 1n, "InvalidDurationError"],
      [1n, I64_MAX + 1n, 1n, "InvalidDurationError"],
      [1000, 10n, 1n, "InvalidDurationError"],
      [Number.NaN, 10n, 1n, "InvalidDurationError"],
      [1n, 10n, 500, "InvalidDurationError"],
      [1n, 10n, -1n, "DriftNegativeError"],
      [1n, 10n, 1_000_001n, "DriftTooLargeError"],
    ];
    for (const [e, t, d, name] of bad) {
      let thrown: unknown;
      try {
        core.ttlSafetyMarginNs(e as bigint, t as bigint, d as bigint);
      } catch (err) {
        thrown = err;
      }
      expect((thrown as Error | undefined)?.name, `${String(e)}, ${String(t)}, ${String(d)}`).toBe(name);
      expect((thrown as { code?: unknown }).code).toMatch(/^ERR_LEASE_/);
    }
  });
});
