// Attack on dispatch's extend rule (docs/contract.md §4: extend only after a real commit
// "committed locally, not forwarded to another leader [beyond]"; assembly/reader.ts
// extendAfterCommit takes `local` from the host). host/core/reader.ts computes it as
// `result.forwarded !== true && result.local !== false`: commitIndex is type-checked
// (InvalidCommitResultError), the two flags are not, so a commit result that says "forwarded"
// or "not local" in another type than boolean (`forwarded: 1` or "true" from a decoded status,
// `local: 0` or "false") counts as a LOCAL commit and extends this node's lease from a write
// another leader committed, which proves nothing about this node's leadership. Contract
// standard: a wrong type is a typed, named error, never a silent default. Expected: dispatch
// rejects with InvalidCommitResultError, or at least the lease is not extended.
import { describe, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { FakeEngine, ManualClock } from "../support/fakes.js";

const RESULTS: [string, Record<string, unknown>][] = [
  ["forwarded: 1", { commitIndex: 5n, forwarded: 1 }],
  ['forwarded: "true"', { commitIndex: 5n, forwarded: "true" }],
  ["local: 0", { commitIndex: 5n, local: 0 }],
  ['local: "false"', { commitIndex: 5n, local: "false" }],
];

describe("attack: a forwarded / non-local commit flagged in another type than boolean", () => {
  test("control: forwarded: true and local: false (booleans) do not extend", async () => {
    for (const result of [{ commitIndex: 5n, forwarded: true }, { commitIndex: 5n, local: false }]) {
      const core = await createLeaseCore({ clock: new ManualClock() });
      const reader = core.createLeaseReader(new FakeEngine());
      await reader.dispatch(async () => result);
      expect(reader.lease.expiry()).toBe(0n);
    }
  });

  for (const [what, result] of RESULTS) {
    test(`${what}: the lease is not extended from a write this node did not commit`, async () => {
      const core = await createLeaseCore({ clock: new ManualClock() });
      const reader = core.createLeaseReader(new FakeEngine());
      const outcome = await reader.dispatch(async () => result as { commitIndex: bigint }).then(
        () => "resolved",
        (err: Error) => err.name,
      );
      expect(["resolved", "InvalidCommitResultError"]).toContain(outcome);
      expect(reader.lease.expiry(), "extended from a forwarded / non-local commit").toBe(0n);
    });
  }
});
