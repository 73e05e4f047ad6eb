// The shared-lease protocol (docs/shared-lease.md) model-checked with spin: the design must
// verify exhaustively with no error, and every seeded bug must produce its counterexample on
// the invariant it breaks. spin and cc are required (CI installs spin): a missing tool fails.
import { describe, expect, test } from "vitest";
// @ts-expect-error -- plain ESM without types
import { CONFIGS, runChecks, spinAvailable } from "../spec/check.mjs";

type Config = { name: string; expect: string };
type Outcome = { config: Config; result?: { errors: number; statesStored: number; complete: boolean; violated: string | null }; failure: string | null };

describe("spin: spec/shared-lease.pml", () => {
  test("spin and a C compiler are installed", () => {
    expect(spinAvailable()).toBe(true);
  });

  test("the design verifies and every seeded bug is caught", async () => {
    const outcomes = (await runChecks(CONFIGS)) as Outcome[];
    const table = outcomes.map(({ config, result, failure }) => ({
      name: config.name,
      expect: config.expect,
      errors: result?.errors,
      states: result?.statesStored,
      violated: result?.violated,
      failure,
    }));
    console.table(table);
    expect(outcomes.length).toBeGreaterThanOrEqual(5);
    expect(outcomes.filter((o) => o.config.expect === "pass")).toHaveLength(1);
    for (const o of outcomes) expect(o.failure, o.config.name).toBeNull();
    const design = outcomes.find((o) => o.config.expect === "pass")!;
    expect(design.result!.complete).toBe(true);
    expect(design.result!.errors).toBe(0);
    for (const o of outcomes.filter((x) => x.config.expect !== "pass")) {
      expect(o.result!.errors, o.config.name).toBeGreaterThanOrEqual(1);
      expect(o.result!.violated).toBe(o.config.expect);
    }
  }, 240_000);
});
