// The conformance vectors (vectors/core.json) through the Node host, one test per case. Every
// other runtime runs the same file through the same runner (host/cli/vectors.ts).
import { describe, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { runVectors, type VectorCase } from "../host/cli/vectors.js";
import cases from "../vectors/core.json" with { type: "json" };

describe("conformance vectors on Node", () => {
  test.each((cases as VectorCase[]).map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    const report = await runVectors((clock) => createLeaseCore({ clock }), [c]);
    expect(report.failures).toEqual([]);
    expect(report.passed).toBe(1);
  });

  test("the runner reports a wrong expectation instead of passing it", async () => {
    const broken: VectorCase = {
      name: "deliberately wrong",
      intent: "valid at the expiry instant must be false; expecting true must fail",
      steps: [
        { op: "lease", name: "a" },
        { op: "extend", lease: "a", until: "t+50ms", gen: "current", expect: true },
        { op: "valid", lease: "a", now: "t+50ms", expect: true },
      ],
    };
    const report = await runVectors((clock) => createLeaseCore({ clock }), [broken]);
    expect(report.failed).toBe(1);
    expect(report.failures[0]!.step).toBe(2);
  });

  test("the runner fails a step that expects an error the call does not throw", async () => {
    const broken: VectorCase = {
      name: "error expected",
      intent: "a valid extend must not satisfy expectError",
      steps: [
        { op: "lease", name: "a" },
        { op: "extend", lease: "a", until: "t+50ms", gen: "current", expectError: "InvalidInstantError" },
      ],
    };
    const report = await runVectors((clock) => createLeaseCore({ clock }), [broken]);
    expect(report.failed).toBe(1);
  });
});
